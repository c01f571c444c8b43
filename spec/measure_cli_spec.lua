-- `collapse measure` (issue 13): metrics of features in files written by numpy against the numpy
-- reference (spec/fixtures/make_nc_fixtures.py; NPY copies by make_measure_fixtures.py), label
-- bases, shards, JSON, the errors, and a 60,000 x 512 float32 file streamed in bounded memory.
local collapse = require("collapse")
local json = require("collapse.json")
local fixture = require("support.fixture")
local measure = require("collapse.measure_cli")

local expect_error = require("support.expect").error

local NPY = fixture.root .. "/spec/fixtures/nc/npy/"
local CONV = fixture.root .. "/spec/fixtures/conventions/"
local KEYS = { "intra_cos", "intra_cos_min", "intra_cos_q", "inter_cos", "inter_cos_max", "inter_cos_q",
  "feature_norm", "nc1", "variability", "cdnv", "equinorm", "equiangular", "max_cos", "etf_error", "w_equinorm",
  "self_duality", "ncc_agreement", "accuracy", "loss" }

local function read_expected(case)
  local out = {}
  for line in io.lines(fixture.root .. "/spec/fixtures/nc/" .. case .. ".expected.txt") do
    local k, rest = line:match("^(%S+)%s+(.*)$")
    if k then
      local vals = {}
      for v in rest:gmatch("%S+") do vals[#vals + 1] = tonumber(v) end
      out[k] = #vals == 1 and vals[1] or vals
    end
  end
  return out
end

local function exists(p)
  local f = io.open(p)
  if f then f:close() end
  return f ~= nil
end

local tmpdir = require("support.tmp").dir

-- Runs the command in-process with its table printout silenced; returns its result table.
local function run(args)
  local saved = _G.print
  _G.print = function() end
  local ok, r = pcall(measure.run, args)
  _G.print = saved
  if not ok then error(r, 0) end
  return r
end

local function case_args(case, labels)
  local args = { NPY .. case .. ".features.npy", NPY .. case .. (labels or ".labels.npy"),
    "--classifier", NPY .. case .. ".W.npy" }
  if exists(NPY .. case .. ".b.npy") then
    args[#args + 1] = "--bias"
    args[#args + 1] = NPY .. case .. ".b.npy"
  end
  return args
end

local function check_case(case, m, exp)
  local n = 0
  for _, k in ipairs(KEYS) do
    if type(exp[k]) == "number" then
      local rel = math.abs(m[k] - exp[k]) / math.max(1, math.abs(exp[k]))
      assert.is_true(rel < 1e-12, ("%s %s: %.17g, numpy %.17g (rel %.3g)"):format(case, k, m[k], exp[k], rel))
      n = n + 1
    end
  end
  assert.is_true(n >= 18)
end

describe("collapse measure against numpy (float64 NPY written by numpy, 1e-12)", function()
  for _, case in ipairs({ "balanced", "imbalanced", "near_etf", "low_dim" }) do
    it(case, function()
      local exp = read_expected(case)
      local args = case_args(case)
      args[#args + 1] = "--q"
      args[#args + 1] = tostring(exp.q)
      args[#args + 1] = "--classes"
      args[#args + 1] = tostring(exp.classes)
      check_case(case, run(args).metrics, exp)
    end)
  end

  it("1-based labels with --label-base 1, and three shards, give the same numbers", function()
    local exp = read_expected("balanced")
    local args = case_args("balanced", ".labels1.npy")
    for _, a in ipairs({ "--label-base", "1", "--q", tostring(exp.q) }) do args[#args + 1] = a end
    check_case("balanced base 1", run(args).metrics, exp)
    -- three shards of 100 rows each
    local dir = tmpdir()
    local x = collapse.data.npy(NPY .. "balanced.features.npy")
    local y = collapse.data.npy(NPY .. "balanced.labels.npy")
    args = { "--classifier", NPY .. "balanced.W.npy", "--bias", NPY .. "balanced.b.npy", "--q", tostring(exp.q) }
    for i = 1, 3 do
      local f, l = ("%s/f%d.npy"):format(dir, i), ("%s/l%d.npy"):format(dir, i)
      collapse.data.save_npy(x:narrow(1, (i - 1) * 100 + 1, 100):contiguous(), f)
      collapse.data.save_npy(y:narrow(1, (i - 1) * 100 + 1, 100):contiguous(), l)
      for _, a in ipairs({ "--shard", f, l }) do args[#args + 1] = a end
    end
    check_case("balanced, 3 shards", run(args).metrics, exp)
    os.execute("rm -rf '" .. dir .. "'")
  end)

  it("reads CSV and writes --json atomically with every number", function()
    local dir = tmpdir()
    local x = collapse.data.npy(NPY .. "low_dim.features.npy")
    local y = collapse.data.npy(NPY .. "low_dim.labels.npy")
    local fx, fy = io.open(dir .. "/x.csv", "w"), io.open(dir .. "/y.csv", "w")
    for i = 1, x:size(1) do
      local row = {}
      for j = 1, x:size(2) do row[j] = ("%.17g"):format(x[i][j]) end
      fx:write(table.concat(row, ","), "\n")
      fy:write(("%d\n"):format(y[i]))
    end
    fx:close()
    fy:close()
    local exp = read_expected("low_dim")
    local r = run({ dir .. "/x.csv", dir .. "/y.csv", "--classifier", NPY .. "low_dim.W.npy", "--q", tostring(exp.q),
      "--json", dir .. "/out.json", "--lambda", "0.001", "--loss", "0.5" })
    check_case("low_dim csv", r.metrics, exp)
    local f = io.open(dir .. "/out.json")
    local back = json.decode(f:read("a"))
    f:close()
    assert.equal(r.metrics.nc1, back.metrics.nc1)
    assert.is_boolean(back.bound.guaranteed)
    assert.is_number(back.model_free.loss)
    local p = io.popen("ls -1 '" .. dir .. "'")
    assert.equal("out.json\nx.csv\ny.csv\n", p:read("a"))
    p:close()
    -- weight decay 0: the metrics, and the bound marked not applicable
    r = run({ dir .. "/x.csv", dir .. "/y.csv", "--lambda", "0", "--loss", "0.5" })
    assert.equal("not applicable (weight decay 0)", r.bound.reason)
    os.execute("rm -rf '" .. dir .. "'")
  end)
end)

describe("collapse measure on .npz archives (stored and deflated members, streamed by rows)", function()
  -- the imbalanced case of make_convention_fixtures.py, whose numpy reference is the default setting
  local exp = {}
  for line in io.lines(CONV .. "expected.txt") do
    local metric, v = line:match("^default (%S+) (%S+)$")
    if metric then exp[metric] = tonumber(v) end
  end
  local function same(m, what, tol)
    for k, v in pairs(exp) do
      assert.is_true(math.abs(m[k] - v) / math.max(1e-3, math.abs(v)) < tol, ("%s: %s = %.17g, numpy %.17g"):format(what, k, m[k], v))
    end
  end
  it("one archive with features, labels, classifier and bias members equals numpy (float64, 1e-12)", function()
    local r = run({ CONV .. "case.npz", "--classifier", CONV .. "case.npz", "--bias", CONV .. "case.npz" })
    same(r.metrics, "case.npz", 1e-12)
    local r2 = run({ CONV .. "case.npz:features", CONV .. "labels.npy", "--classifier", CONV .. "case.npz:classifier",
      "--bias", CONV .. "case.npz:bias" })
    same(r2.metrics, "member syntax", 1e-12)
  end)
  it("deflated members under other names (--features-key, --labels-key), float32 features", function()
    local r = run({ CONV .. "case_deflated.npz", "--features-key", "feats", "--labels-key", "y",
      "--classifier", CONV .. "case_deflated.npz:W", "--bias", CONV .. "case_deflated.npz:b" })
    local f32 = run({ CONV .. "case_deflated.npz:feats", CONV .. "labels.npy", "--classifier", CONV .. "W.npy",
      "--bias", CONV .. "b.npy" })
    for k, v in pairs(r.metrics) do
      if type(v) == "number" then assert.equal(f32.metrics[k], v, k) end
    end
    same(r.metrics, "deflated float32", 1e-5)
    assert.equal(44, r.metrics.samples)
  end)
end)

describe("collapse measure errors", function()
  local dir
  setup(function()
    dir = tmpdir()
    collapse.data.save_npy(collapse.tensor({ 0, 1, 2, 7, 1, 0 }, "int32"), dir .. "/bad7.npy")
    collapse.data.save_npy(collapse.tensor({ 0, 1, 1.5, 1, 0, 1 }, "float64"), dir .. "/half.npy")
    collapse.data.save_npy(collapse.randn({ 6, 3 }, { dtype = "float64" }), dir .. "/x6.npy")
    collapse.data.save_npy(collapse.randn({ 6, 4 }, { dtype = "float64" }), dir .. "/x6w.npy")
    collapse.data.save_npy(collapse.tensor({ 0, 1, 2, 0, 1, 2 }, "int32"), dir .. "/y6.npy")
    collapse.data.save_npy(collapse.zeros({ 6, 3 }, "int32"), dir .. "/i6.npy")
  end)
  teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("names the offending label and its row, and the shape mismatches", function()
    expect_error("label 7 at row 3 (0-based) is outside 0..2 (label base 0, 3 classes)", run,
      { dir .. "/x6.npy", dir .. "/bad7.npy", "--classes", "3" })
    expect_error("label 0 at row 0 (0-based) is below the label base 1", run,
      { dir .. "/x6.npy", dir .. "/y6.npy", "--label-base", "1" })
    expect_error("label 1.5 at row 2 (0-based) is not an integer", run, { dir .. "/x6.npy", dir .. "/half.npy" })
    expect_error("features '" .. NPY .. "balanced.features.npy' have 300 rows but labels '" .. dir .. "/y6.npy' have 6",
      run, { NPY .. "balanced.features.npy", dir .. "/y6.npy" })
    expect_error("shard 2 ('" .. dir .. "/x6w.npy') has 4 features per row, shard 1 has 3", run,
      { "--shard", dir .. "/x6.npy", dir .. "/y6.npy", "--shard", dir .. "/x6w.npy", dir .. "/y6.npy" })
    expect_error("classifier weight is [5 x 12], expected [3 x 3]", run,
      { dir .. "/x6.npy", dir .. "/y6.npy", "--classifier", NPY .. "balanced.W.npy" })
    expect_error("features '" .. dir .. "/i6.npy' hold integers", run, { dir .. "/i6.npy", dir .. "/y6.npy" })
    expect_error("features '" .. dir .. "/y6.npy' is 1-d; expected a 2-d [N x d] array", run,
      { dir .. "/y6.npy", dir .. "/y6.npy" })
    expect_error("cannot open '" .. dir .. "/data.npz'", run, { dir .. "/data.npz", dir .. "/y6.npy" })
    expect_error("case.npz' has no member 'feats' (members: 'features', 'labels', 'classifier', 'bias')", run,
      { CONV .. "case.npz", "--features-key", "feats" })
    expect_error("expected FEATURES LABELS, one ARCHIVE.npz", run, { dir .. "/x6.npy" })
    expect_error("unknown flag --lamda", run, { dir .. "/x6.npy", dir .. "/y6.npy", "--lamda", "1" })
    expect_error("--lambda and --loss go together", run, { dir .. "/x6.npy", dir .. "/y6.npy", "--lambda", "1" })
    expect_error("--label-base must be 0 or 1", run, { dir .. "/x6.npy", dir .. "/y6.npy", "--label-base", "2" })
  end)

  it("the command exits 2 with the message on stderr", function()
    local p = io.popen(fixture.root .. "/scripts/collapse measure '" .. dir .. "/x6.npy' '" .. dir ..
      "/bad7.npy' --classes 3 2>&1; echo rc=$?")
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("collapse: measure: ", 1, true) or out:find("label 7 at row 3", 1, true), out)
    assert.truthy(out:find("rc=2", 1, true), out)
  end)
end)

describe("collapse measure memory", function()
  it("streams a 60,000 x 512 float32 NPY file with extra peak memory under 64 MB", function()
    local dir = tmpdir()
    do
      local x = collapse.randn({ 60000, 512 }, { rng = collapse.rng(1) }) -- float32, 123 MB on disk
      local y = collapse.zeros({ 60000 }, "int32")
      for i = 1, 60000 do y[i] = (i - 1) % 10 end
      collapse.data.save_npy(x, dir .. "/x.npy")
      collapse.data.save_npy(y, dir .. "/y.npy")
    end
    collectgarbage()
    collectgarbage()
    local script = ([[
      local measure = require("collapse.measure_cli")
      local before = require("collapse.core").peak_rss_kb()
      print = function() end
      local r = measure.run({ "%s/x.npy", "%s/y.npy" })
      assert(r.metrics.samples == 60000 and r.metrics.dim == 512)
      io.stdout:write(require("collapse.core").peak_rss_kb() - before, "\n")
    ]]):format(dir, dir)
    local path = dir .. "/child.lua"
    local f = io.open(path, "w")
    f:write(script)
    f:close()
    local p = io.popen(fixture.root .. "/scripts/lua " .. path .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.execute("rm -rf '" .. dir .. "'")
    local extra_kb = tonumber(out:match("(%-?%d+)%s*$"))
    assert.is_not_nil(extra_kb, out)
    assert.is_true(extra_kb < 64 * 1024, ("extra peak %d kB"):format(extra_kb))
  end)
end)
