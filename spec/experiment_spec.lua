-- collapse.experiment / collapse.sweep / report / the collapse command: specs validated with
-- field names, results written atomically and re-readable, sweeps resumable after a kill.
local collapse = require("collapse")
local json = require("collapse.json")
local fs = require("collapse.fs")
local models = require("collapse.models")
local fixture = require("support.fixture")

local expect_error = require("support.expect").error

local tmpdir = require("support.tmp").dir

local listdir = require("support.tmp").list

local DATA = collapse.data.conic{ n = 300, seed = 1 }

local function spec(extra)
  local s = {
    name = "tiny", seed = 1, data = { train = DATA }, epochs = 3, batch_size = 64, progress = false,
    optimizer = { "Adam", lr = 1e-3, weight_decay = 5e-4 },
    model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 16,
        batchnorm = cfg.batchnorm ~= false, rng = collapse.rng(cfg.seed) }
    end,
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

describe("collapse.experiment", function()
  it("names the field of a bad spec", function()
    expect_error("experiment: unknown field 'epoch'", collapse.experiment, spec{ epoch = 3 })
    expect_error("experiment: field 'epochs' must be integer, got string", collapse.experiment, spec{ epochs = "3" })
    expect_error("experiment: field 'batch_size' must be integer, got float", collapse.experiment, spec{ batch_size = 1.5 })
    expect_error("field 'optimizer' must name an optimiser", collapse.experiment, spec{ optimizer = { "Adamm" } })
    local s = spec()
    s.model = nil
    expect_error("experiment: field 'model' is required", collapse.experiment, s)
  end)

  it("runs, measures on schedule and writes a re-readable JSON result", function()
    local dir = tmpdir()
    local r = collapse.experiment(spec{ out = dir, measure_every = 2, epochs = 4 }):run()
    assert.equal(4, #r.history)
    assert.is_nil(r.history[1].intra_cos)
    assert.is_number(r.history[2].intra_cos)
    assert.is_number(r.final.intra_cos)
    assert.is_table(r.final.bound)
    assert.is_number(r.final.regularized_loss)
    local back = json.decode(fs.read(dir .. "/tiny.json"))
    assert.is_true(back.finished)
    assert.equal(r.final.intra_cos, back.final.intra_cos)
    assert.equal(4, #back.history)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe("collapse.sweep", function()
  it("runs grid x seeds, passes grid keys to model(cfg) and the optimiser, writes a CSV", function()
    local dir = tmpdir()
    local seen = {}
    local s = spec()
    local inner = s.model
    s.model = function(cfg)
      seen[#seen + 1] = cfg
      return inner(cfg)
    end
    local r = collapse.sweep{ experiment = s, grid = { weight_decay = { 1e-4, 1e-3 }, batchnorm = { true, false } },
      seeds = { 1, 2 }, out = dir, progress = false }
    assert.equal(8, #r.runs)
    assert.equal(8, #seen)
    for _, cfg in ipairs(seen) do
      assert.is_not_nil(cfg.weight_decay)
      assert.is_boolean(cfg.batchnorm)
      assert.is_true(cfg.seed == 1 or cfg.seed == 2)
    end
    for _, run in ipairs(r.runs) do assert.equal(run.grid.weight_decay, run.optimizer.options.weight_decay) end
    local lines = 0
    for _ in io.lines(dir .. "/sweep.csv") do lines = lines + 1 end
    assert.equal(9, lines)
    -- a rerun trains nothing; a partial file is redone
    seen = {}
    local f = io.open(dir .. "/runs/" .. listdir(dir .. "/runs")[1], "w")
    f:write('{"finished": tr')
    f:close()
    collapse.sweep{ experiment = s, grid = { weight_decay = { 1e-4, 1e-3 }, batchnorm = { true, false } },
      seeds = { 1, 2 }, out = dir, progress = false }
    assert.equal(1, #seen)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("killed mid-run and restarted, finishes only the missing runs; no file is half-written", function()
    local dir = tmpdir()
    local file = dir .. "/sweep_spec.lua"
    local f = io.open(file, "w")
    f:write(([[
local collapse = require("collapse")
local models = require("collapse.models")
return {
  out = %q, seeds = { 1, 2, 3 }, progress = false,
  grid = { weight_decay = { 1e-4, 1e-3 } },
  experiment = { data = { train = collapse.data.conic{ n = 2000, seed = 1 } }, epochs = 6, progress = false,
    optimizer = { "Adam", lr = 1e-3 },
    model = function(cfg) return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes,
      batchnorm = true, width = 128, rng = collapse.rng(cfg.seed) } end },
}]]):format(dir .. "/out"))
    f:close()
    local cli = fixture.root .. "/scripts/collapse"
    os.execute(("%s run %s > %s/log 2>&1 & echo $! > %s/pid"):format(cli, file, dir, dir))
    local pid = fs.read(dir .. "/pid"):match("%d+")
    -- wait until at least one run is finished, then kill -9
    -- results are the *.json files; a killed writer may leave its temporary (*.json.tmp.*), which
    -- is never read as a result and is removed by the next successful write of that file
    local function results()
      local out = {}
      for _, name in ipairs(listdir(dir .. "/out/runs")) do
        if name:match("%.json$") then out[#out + 1] = name end
      end
      return out
    end
    local finished = {}
    for _ = 1, 600 do
      finished = results()
      if #finished >= 1 then break end
      os.execute("sleep 0.05")
    end
    os.execute("kill -9 " .. pid .. " 2>/dev/null")
    os.execute("sleep 0.2")
    finished = results()
    assert.is_true(#finished >= 1 and #finished < 6, "finished before the kill: " .. #finished)
    for _, name in ipairs(finished) do
      local r = json.decode(fs.read(dir .. "/out/runs/" .. name)) -- complete: a result is never half-written
      assert.is_true(r.finished)
    end
    -- restart: only the missing runs are trained
    local spec_tbl = dofile(file)
    local trained = 0
    local inner = spec_tbl.experiment.model
    spec_tbl.experiment.model = function(cfg) trained = trained + 1; return inner(cfg) end
    local r = collapse.sweep(spec_tbl)
    assert.equal(6, #r.runs)
    assert.equal(6 - #finished, trained)
    assert.equal(6, #results())
    assert.same(results(), listdir(dir .. "/out/runs"), "a temporary survived the rerun")
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe("report and command line", function()
  it("writes an HTML report with rendered plots for a sweep", function()
    local dir = tmpdir()
    collapse.sweep{ experiment = spec{ measure_every = 1 }, grid = { weight_decay = { 1e-4, 1e-3 },
      batchnorm = { true, false } }, seeds = { 1, 2 }, out = dir, progress = false }
    local index = require("collapse.report").build(dir)
    local html = fs.read(index)
    assert.matches("<img src=\"intra_cos.png\"", html, 1, true)
    for img in html:gmatch('<img src="([^"]+)"') do
      assert.is_true(fs.exists(dir .. "/report/" .. img), "missing " .. img)
    end
    assert.is_true(fs.exists(dir .. "/report/intra_cos.gp"))
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("collapse bound prints the certified values", function()
    local p = io.popen(fixture.root .. "/scripts/collapse bound --lambda 1e-3 --classes 10 --loss 0.0257794483")
    local out = p:read("a")
    p:close()
    assert.matches("optimal loss L%*%s+0.025778448", out)
    assert.matches("intra%-class cosine >=%s+0.9996", out)
  end)

  it("collapse demo --quick runs the main job end to end", function()
    local dir = tmpdir()
    local p = io.popen(fixture.root .. "/scripts/collapse demo --quick --out " .. dir .. "/demo 2>&1")
    local out = p:read("a")
    p:close()
    assert.matches("BN has the higher average intra%-class cosine at %d of 2 weight decays", out)
    assert.matches("demo finished", out)
    assert.is_true(fs.exists(dir .. "/demo/conic/report/index.html"))
    assert.is_true(fs.exists(dir .. "/demo/conic/sweep.csv"))
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("collapse with a bad command explains itself", function()
    local p = io.popen(fixture.root .. "/scripts/collapse frobnicate 2>&1")
    local out = p:read("a")
    p:close()
    assert.matches("unknown command 'frobnicate'", out, 1, true)
  end)
end)
