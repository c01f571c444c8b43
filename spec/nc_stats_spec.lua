-- Mergeable NC statistics (issue 14): save / load / merge, the two-phase shard protocol against one
-- pass on 60,000 x 512 float32 features, and the file checks (corrupt, truncated, foreign, version).
local collapse = require("collapse")
local nc = collapse.nc

local expect_error = require("support.expect").error

local tmpdir = require("support.tmp").dir

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function spit(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function rel(a, b) return math.abs(a - b) / math.max(1e-300, math.abs(b)) end

-- Every number and array of numbers in b must be matched by a to tol relative.
-- zlib's CRC-32 (the checksum of the stats file format), bit by bit: an independent implementation.
local function crc32(str)
  local crc = 0xFFFFFFFF
  for i = 1, #str do
    crc = crc ~ str:byte(i)
    for _ = 1, 8 do crc = (crc & 1) ~= 0 and ((crc >> 1) ~ 0xEDB88320) or (crc >> 1) end
  end
  return crc ~ 0xFFFFFFFF
end

local function same_metrics(a, b, tol, what)
  local n = 0
  for k, v in pairs(b) do
    if type(v) == "number" then
      assert.is_true(a[k] == v or rel(a[k], v) < tol, ("%s %s: %.17g vs %.17g"):format(what, k, a[k], v))
      n = n + 1
    elseif type(v) == "table" then
      for i, x in ipairs(v) do
        assert.is_true(a[k][i] == x or rel(a[k][i], x) < tol, ("%s %s[%d]: %.17g vs %.17g"):format(what, k, i, a[k][i], x))
      end
    end
  end
  return n
end

describe("sharded NC statistics", function()
  local C, d, N = 10, 512, 60000
  local x, y, W, b, one_pass

  setup(function()
    local labels = {}
    for i = 1, N do labels[i] = (i * 7) % C + 1 end
    y = collapse.tensor(labels, "int32")
    local M = collapse.randn({ C, d }, { rng = collapse.rng(11) }) * 0.5 -- class offsets
    x = collapse.randn({ N, d }, { rng = collapse.rng(12) }) + M:rows(y) -- float32
    W = collapse.randn({ C, d }, { rng = collapse.rng(13), dtype = "float64" })
    b = collapse.randn({ C }, { rng = collapse.rng(14), dtype = "float64" })
    local s = nc.stats(C, d, { classifier = W, bias = b })
    s:pass1(x, y)
    s:end_pass1()
    s:pass2(x, y)
    one_pass = s:result(0.05)
  end)

  local function shards(k)
    local out, start = {}, 1
    for i = 1, k do
      local len = math.floor(N * i / k) - math.floor(N * (i - 1) / k)
      out[i] = { x = x:narrow(1, start, len), y = y:narrow(1, start, len) }
      start = start + len
    end
    return out
  end

  for _, k in ipairs({ 2, 3, 7 }) do
    it(("%d shards through files (pass 1, merge, end_pass1, pass 2 from the merged state, merge) = one pass to 1e-12"):format(k), function()
      local dir = tmpdir()
      local parts = shards(k)
      -- phase 1: every shard on its own, saved
      for i, p in ipairs(parts) do
        local s = nc.stats(C, d, { classifier = W, bias = b })
        s:pass1(p.x, p.y)
        s:save(("%s/p1_%d.ncs"):format(dir, i))
        s:free()
      end
      local loaded = {}
      for i = 1, k do loaded[i] = nc.load_stats(("%s/p1_%d.ncs"):format(dir, i)) end
      local merged = nc.merge_stats(loaded)
      merged:end_pass1()
      merged:save(dir .. "/merged.ncs")
      -- phase 2: every shard from the one merged state
      for i, p in ipairs(parts) do
        local s = nc.load_stats(dir .. "/merged.ncs")
        s:pass2(p.x, p.y)
        s:save(("%s/p2_%d.ncs"):format(dir, i))
      end
      loaded = {}
      for i = 1, k do loaded[i] = nc.load_stats(("%s/p2_%d.ncs"):format(dir, i)) end
      local r = nc.merge_stats(loaded):result(0.05)
      assert.equal(N, r.samples)
      assert.is_true(same_metrics(r, one_pass, 1e-12, k .. " shards") >= 25)
      os.execute("rm -rf '" .. dir .. "'")
    end)
  end

  it("merging in memory in any fixed order also matches, and the inputs are left unchanged", function()
    local parts = shards(3)
    local p1 = {}
    for i, p in ipairs(parts) do
      p1[i] = nc.stats(C, d, { classifier = W, bias = b })
      p1[i]:pass1(p.x, p.y)
    end
    local m = p1[3]:clone():merge(p1[1]):merge(p1[2])
    m:end_pass1()
    local p2 = {}
    for i, p in ipairs(parts) do
      p2[i] = m:clone()
      p2[i]:pass2(p.x, p.y)
    end
    local r = nc.merge_stats(p2):result(0.05)
    same_metrics(r, one_pass, 1e-12, "in memory")
    -- p2[1] was not modified by merge_stats: it alone holds a third of the samples
    expect_error("pass 2 saw 20000 samples but pass 1 saw 60000", p2[1].result, p2[1])
  end)
end)

describe("nc statistics files and merge errors", function()
  local function small(seed, n)
    local xs = collapse.randn({ n or 30, 4 }, { rng = collapse.rng(seed), dtype = "float64" })
    local labels = {}
    for i = 1, (n or 30) do labels[i] = (i - 1) % 3 + 1 end
    local s = nc.stats(3, 4)
    local ys = collapse.tensor(labels, "int32")
    s:pass1(xs, ys)
    return s, xs, ys
  end

  it("round-trips both states and writes atomically (no temporary left, old file replaced)", function()
    local dir = tmpdir()
    local s, xs, ys = small(1)
    local path = dir .. "/s.ncs"
    spit(path, "old")
    s:save(path)
    local t = nc.load_stats(path)
    s:end_pass1()
    t:end_pass1()
    s:pass2(xs, ys)
    t:save(path)
    local u = nc.load_stats(path)
    u:pass2(xs, ys)
    same_metrics(u:result(), s:result(), 0, "round trip") -- bit-identical
    local p = io.popen("ls -1 '" .. dir .. "'")
    assert.equal("s.ncs", p:read("a"):match("^%s*(.-)%s*$"))
    p:close()
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("refuses corrupt, truncated, foreign and future-version files with clear errors", function()
    local dir = tmpdir()
    local s = small(2)
    local path = dir .. "/s.ncs"
    s:save(path)
    local good = slurp(path)
    local bad = dir .. "/bad.ncs"
    spit(bad, good:sub(1, 40) .. string.char((good:byte(41) + 1) % 256) .. good:sub(42))
    expect_error("is corrupt (CRC-32 mismatch)", nc.load_stats, bad)
    spit(bad, good:sub(1, #good - 9))
    expect_error("is truncated", nc.load_stats, bad)
    spit(bad, good:sub(1, 10))
    expect_error("is truncated", nc.load_stats, bad)
    spit(bad, ("not a stats file at all, just text\n"):rep(3))
    expect_error("is not a collapse NC statistics file (bad magic", nc.load_stats, bad)
    spit(bad, good:sub(1, 8) .. string.char(3) .. good:sub(10))
    expect_error("has format version 3; this library reads versions 1 to 2", nc.load_stats, bad)
    spit(bad, good .. "x")
    expect_error("1 trailing bytes", nc.load_stats, bad)
    expect_error("nc_stats_load: cannot open", nc.load_stats, dir .. "/missing.ncs")
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("reads version-1 files (no conventions word: the defaults) and keeps the conventions in version 2", function()
    local dir = tmpdir()
    for _, conv in ipairs({ {}, { global_mean = "samples", ncc_bias = "without" } }) do
      local s, xs, ys = small(6)
      s:set_conventions(nc.conventions.bits("spec", conv))
      s:end_pass1()
      local path = dir .. "/v2.ncs"
      s:save(path)
      local v2 = slurp(path)
      assert.equal(2, v2:byte(9))
      local t = nc.load_stats(path)
      assert.equal(s:conventions(), t:conventions())
      if next(conv) == nil then
        -- the same state in version 1: header without the conventions word, length and CRC redone
        local payload = v2:sub(25, 24 + 32) .. v2:sub(24 + 37)
        local v1 = "CLPSNCST" .. string.pack("<I4I8I4", 1, #payload, crc32(payload)) .. payload
        spit(dir .. "/v1.ncs", v1)
        local old = nc.load_stats(dir .. "/v1.ncs")
        assert.equal(0, old:conventions())
        old:pass2(xs, ys)
        t:pass2(xs, ys)
        same_metrics(old:result(), t:result(), 0, "version 1 read")
      end
    end
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("refuses merges of other shapes, of mixed passes and of pass-2 states from different pass-1 states", function()
    local a, b = small(3), small(4)
    expect_error("cannot merge a state into itself", a.merge, a, a)
    expect_error("cannot be merged", a.merge, a, nc.stats(3, 5))
    expect_error("cannot be merged", a.merge, a, nc.stats(4, 4))
    local done = small(5)
    done:end_pass1()
    expect_error("cannot merge a pass-1 state with a pass-2 state", a.merge, a, done)
    a:end_pass1()
    b:end_pass1()
    expect_error("did not start from the same pass-1 state", a.merge, a, b)
    local w1 = nc.stats(3, 4, { classifier = collapse.ones({ 3, 4 }, "float64") })
    local w2 = nc.stats(3, 4, { classifier = collapse.zeros({ 3, 4 }, "float64") })
    expect_error("hold different classifiers", w1.merge, w1, w2)
    expect_error("nc.stats: classes must be an integer >= 2", nc.stats, 1, 4)
    expect_error("nc.stats: unknown option 'classifer'", nc.stats, 3, 4, { classifer = 1 })
    expect_error("nc.merge_stats: expected a non-empty array", nc.merge_stats, {})
  end)
end)
