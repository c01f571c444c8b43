-- The metric conventions (docs/metrics.md, "Conventions"): each switch of nc.measure, nc.stats,
-- nc.measure_model, nc.measure_layers and `collapse measure --convention` against the independent
-- numpy reference of spec/fixtures/make_convention_fixtures.py on an imbalanced case (class sizes
-- 3, 6, 11, 24) where every switch changes its metric; defaults unchanged; bad names refused.
local collapse = require("collapse")
local fixture = require("support.fixture")
local nc = collapse.nc

local expect_error = require("support.expect").error

local DIR = fixture.root .. "/spec/fixtures/conventions/"

local function read_matrix(name)
  local rows = {}
  for line in io.lines(DIR .. name) do
    local row = {}
    for v in line:gmatch("%S+") do row[#row + 1] = tonumber(v) end
    if #row > 0 then rows[#rows + 1] = row end
  end
  return rows
end

local EXPECTED, SETTINGS = {}, {}
for line in io.lines(DIR .. "expected.txt") do
  local setting, metric, v = line:match("^(%S+) (%S+) (%S+)$")
  if not EXPECTED[setting] then
    EXPECTED[setting] = {}
    SETTINGS[#SETTINGS + 1] = setting
  end
  EXPECTED[setting][metric] = tonumber(v)
end

local X = collapse.tensor(read_matrix("features.txt"), "float64")
local Y = {}
for i, row in ipairs(read_matrix("labels.txt")) do Y[i] = math.tointeger(row[1]) end
local W = collapse.tensor(read_matrix("W.txt"), "float64")
local B = collapse.tensor(read_matrix("b.txt")[1], "float64")

-- The conventions table of a setting name: "default", "key=value" or "all".
local function conventions_of(setting)
  if setting == "default" then return nil end
  local t = {}
  if setting == "all" then
    for _, k in ipairs(nc.conventions.KEYS) do t[k[1]] = k[2][2] end
  else
    local k, v = setting:match("^(.-)=(.*)$")
    t[k] = v
  end
  return t
end

local function rel(a, b) return math.abs(a - b) / math.max(1e-3, math.abs(b)) end

local function check(m, setting, what)
  local n = 0
  for metric, v in pairs(EXPECTED[setting]) do
    assert.is_true(rel(m[metric], v) < 1e-12,
      ("%s, %s: %s = %.17g, numpy %.17g"):format(what, setting, metric, m[metric], v))
    n = n + 1
  end
  assert.equal(14, n)
end

describe("metric conventions against numpy (imbalanced, 1e-12)", function()
  it("the fixture's switches change their metrics (the case is one where they matter)", function()
    local d = EXPECTED.default
    assert.is_true(rel(EXPECTED["global_mean=samples"].nc1, d.nc1) > 1e-3)
    assert.is_true(rel(EXPECTED["nc1=trace"].nc1, d.nc1) > 1e-3)
    assert.is_true(rel(EXPECTED["cdnv_variance=unbiased"].cdnv, d.cdnv) > 1e-3)
    assert.is_true(rel(EXPECTED["equinorm_std=unbiased"].equinorm, d.equinorm) > 1e-3)
    assert.is_true(rel(EXPECTED["equiangular=signed"].equiangular, d.equiangular) > 1e-3)
    assert.is_true(rel(EXPECTED["self_duality=norm"].self_duality, d.self_duality) > 1e-3)
    assert.is_true(rel(EXPECTED["ncc_bias=without"].ncc_agreement, d.ncc_agreement) > 1e-3)
    assert.equal(9, #SETTINGS)
  end)

  for _, setting in ipairs(SETTINGS) do
    it("nc.measure, " .. setting, function()
      local m = nc.measure(X, Y, { classifier = W, bias = B, conventions = conventions_of(setting) })
      check(m, setting, "nc.measure")
    end)
  end

  it("defaults are bit for bit those of no conventions table", function()
    local a = nc.measure(X, Y, { classifier = W, bias = B })
    local explicit = {}
    for _, k in ipairs(nc.conventions.KEYS) do explicit[k[1]] = k[2][1] end
    local b = nc.measure(X, Y, { classifier = W, bias = B, conventions = explicit })
    for k, v in pairs(a) do
      if type(v) == "number" then assert.equal(v, b[k], k) end
    end
  end)

  it("streaming nc.stats in batches, through save/load between the passes, and merged shards", function()
    local dir = os.getenv("TMPDIR") or "/tmp"
    local path = ("%s/conv_%d.ncs"):format(dir, os.time())
    local yt = collapse.tensor(Y, "int32")
    for _, setting in ipairs({ "global_mean=samples", "ncc_bias=without", "all" }) do
      local conv = conventions_of(setting)
      local halves = {}
      for h = 1, 2 do
        local s = nc.stats(4, 7, { classifier = W, bias = B, conventions = conv })
        local lo, hi = h == 1 and 1 or 23, h == 1 and 22 or 44
        s:pass1(X:narrow(1, lo, hi - lo + 1):contiguous(), yt:narrow(1, lo, hi - lo + 1):contiguous())
        halves[h] = s
      end
      local merged = nc.merge_stats(halves)
      merged:end_pass1()
      merged:save(path)
      local loaded = nc.load_stats(path)
      os.remove(path)
      assert.equal(merged:conventions(), loaded:conventions())
      loaded:pass2(X, yt)
      check(loaded:result(), setting, "nc.stats")
    end
  end)

  it("nc.measure_model and nc.measure_layers take the conventions", function()
    local ds = collapse.data.Dataset{ x = X, y = collapse.tensor(Y, "int32"), classes = 4 }
    local lin = collapse.nn.Linear(7, 4, { dtype = "float64" })
    lin.weight:copy(W)
    lin.bias:copy(B)
    local model = collapse.nn.Sequential{ collapse.nn.Identity(), lin }
    for _, setting in ipairs({ "default", "global_mean=samples", "all" }) do
      local m = nc.measure_model(model, ds, { batch_size = 10, conventions = conventions_of(setting) })
      check(m, setting, "nc.measure_model")
      local layer = nc.measure_layers(model, ds, { layers = { 1 }, conventions = conventions_of(setting) })[1]
      assert.is_true(rel(layer.metrics.nc1, EXPECTED[setting].nc1) < 1e-12, "measure_layers nc1 " .. setting)
      assert.is_true(rel(layer.metrics.equiangular, EXPECTED[setting].equiangular) < 1e-12, setting)
    end
  end)

  it("collapse measure --convention key=value (repeatable) on the NPY copies", function()
    local measure = require("collapse.measure_cli")
    local quiet = function(f)
      local saved = _G.print
      _G.print = function() end -- luacheck: ignore (the table goes to stdout)
      local ok, r = pcall(f)
      _G.print = saved
      if not ok then error(r, 0) end
      return r
    end
    local files = { DIR .. "features.npy", DIR .. "labels.npy", "--classifier", DIR .. "W.npy", "--bias", DIR .. "b.npy" }
    for _, setting in ipairs({ "default", "global_mean=samples", "ncc_bias=without", "all" }) do
      local args = { table.unpack(files) }
      for k, v in pairs(conventions_of(setting) or {}) do
        args[#args + 1] = "--convention"
        args[#args + 1] = k .. "=" .. v
      end
      local out = quiet(function() return measure.run(args) end)
      check(out.metrics, setting, "collapse measure")
      if setting == "all" then assert.equal("samples", out.conventions.global_mean) end
    end
    expect_error("measure: unknown convention 'nc2'", measure.run, { files[1], files[2], "--convention", "nc2=x" })
    expect_error("measure: convention ncc_bias = 'maybe' is not one of 'with', 'without'", measure.run,
      { files[1], files[2], "--convention", "ncc_bias=maybe" })
    expect_error("measure: --convention expects key=value, got 'nc1'", measure.run,
      { files[1], files[2], "--convention", "nc1" })
  end)

  it("refuses unknown keys and values naming the valid ones, and late changes of pass-shaping ones", function()
    expect_error("nc.measure: unknown convention 'global' (expected one of global_mean, nc1, cdnv_variance, "
      .. "equinorm_std, equiangular, self_duality, ncc_bias)", nc.measure, X, Y, { conventions = { global = "samples" } })
    expect_error("nc.measure: convention nc1 = 'over_C' is not one of 'trace_over_C', 'trace'", nc.measure, X, Y,
      { conventions = { nc1 = "over_C" } })
    expect_error("nc.stats: conventions must be a table", nc.stats, 4, 7, { conventions = "samples" })
    local s = nc.stats(4, 7)
    s:pass1(X, collapse.tensor(Y, "int32"))
    s:end_pass1()
    expect_error("the global_mean convention shapes end_pass1", s.set_conventions, s,
      collapse.core.NC_CONV_MEAN_SAMPLES)
    s:set_conventions(collapse.core.NC_CONV_NC1_TRACE) -- result-time conventions may change
    s:pass2(X, collapse.tensor(Y, "int32"))
    expect_error("the ncc_bias convention is applied in pass 2", s.set_conventions, s,
      collapse.core.NC_CONV_NC1_TRACE | collapse.core.NC_CONV_NCC_NO_BIAS)
    assert.is_true(rel(s:result().nc1, EXPECTED["nc1=trace"].nc1) < 1e-12)
    local a, b = nc.stats(4, 7), nc.stats(4, 7, { conventions = { nc1 = "trace" } })
    expect_error("measured under different conventions", a.merge, a, b)
  end)
end)
