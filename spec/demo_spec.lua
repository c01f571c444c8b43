-- collapse demo: its workers (one pool over both sweeps, the Fashion subset read from
-- <out>/cache) print the same tables and write the same run files as the sequential --jobs 1 run.
local json = require("collapse.json")
local fs = require("collapse.fs")
local fixture = require("support.fixture")
local tmp = require("support.tmp")

local CLI = fixture.root .. "/scripts/collapse"
local HAS_FASHION = fs.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

local sh = require("support.shell").run

-- The printed tables: every line from the first table title on, without the report paths
-- and the timing line (they name the folder and the seconds), and the sweep headers ([2/2] ...: printed
-- before the pool starts with workers, between the tables without).
local function tables(out)
  local lines, on = {}, false
  for l in out:gmatch("[^\n]+") do
    if l:match("^conic %(C = ") then on = true end
    if on and not l:match("^report: ") and not l:match("^demo finished in") and not l:match("^%[%d/2%] ") then
      lines[#lines + 1] = l
    end
  end
  return table.concat(lines, "\n")
end

-- A run file without its wall times (every "seconds" key, recursively).
local function run_file(path)
  local function strip(t)
    if type(t) ~= "table" then return t end
    t.seconds = nil
    for _, v in pairs(t) do strip(v) end
    return t
  end
  return json.encode(strip(json.decode(fs.read(path))), { indent = 1 })
end

describe("collapse demo --jobs 2", function()
  it("prints the tables of --jobs 1, in order, and writes the same run files and sweep tables", function()
    local d = tmp.dir()
    local seq, ok1 = sh(("%s demo --quick --jobs 1 --out %s/seq"):format(CLI, d))
    local par, ok2 = sh(("%s demo --quick --jobs 2 --out %s/par"):format(CLI, d))
    assert.is_true(ok1, seq)
    assert.is_true(ok2, par)
    assert.matches("2 worker processes", par, 1, true)
    assert.equal(tables(seq), tables(par))
    local conic_at = par:find("conic (C = 4", 1, true)
    assert.is_truthy(conic_at)
    if HAS_FASHION then assert.is_true(par:find("fashion_mnist (C = 10", 1, true) > conic_at) end
    for _, part in ipairs(HAS_FASHION and { "conic", "fashion_mnist" } or { "conic" }) do
      local names = tmp.list(d .. "/seq/" .. part .. "/runs")
      assert.equal(4, #names)
      assert.same(names, tmp.list(d .. "/par/" .. part .. "/runs"))
      for _, name in ipairs(names) do
        local rel = "/" .. part .. "/runs/" .. name
        assert.equal(run_file(d .. "/seq" .. rel), run_file(d .. "/par" .. rel), rel)
      end
      assert.equal(fs.read(d .. "/seq/" .. part .. "/sweep.csv"), fs.read(d .. "/par/" .. part .. "/sweep.csv"))
    end
    os.execute(("rm -rf '%s'"):format(d))
  end)

  it("a worker finding a corrupt Fashion cache rebuilds it and computes the same run", function()
    if not HAS_FASHION then return end -- needs Debian's dataset-fashion-mnist
    local d = tmp.dir()
    local _, ok = sh(("%s demo --quick --jobs 2 --out %s"):format(CLI, d))
    assert.is_true(ok)
    local cache = d .. "/cache/fashion_mnist-30.ckpt"
    local good = fs.read(cache)
    assert.is_truthy(good)
    local run = d .. "/fashion_mnist/runs/batchnorm=true_weight_decay=0.0005_seed=1.json"
    local before = run_file(run)
    os.remove(run)
    local mid = #good // 2
    fs.write_atomic(cache, good:sub(1, mid - 1) .. string.char((good:byte(mid) + 1) % 256) .. good:sub(mid + 1))
    -- as a worker runs it: one BLAS thread (the pool sets it; results depend on the thread count)
    local out, ok2 = sh(("OPENBLAS_NUM_THREADS=1 %s demo --quick --part fashion_mnist --task 1 --out %s"):format(CLI, d))
    assert.is_true(ok2, out)
    assert.equal(before, run_file(run))
    assert.equal(good, fs.read(cache)) -- rebuilt and rewritten: the same bytes as the first build
    os.execute(("rm -rf '%s'"):format(d))
  end)
end)
