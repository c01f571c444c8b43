-- collapse.nc.measure against the independent numpy implementation (spec/fixtures/nc, made by
-- make_nc_fixtures.py), perfect collapse, streaming over a model, and error messages.
local collapse = require("collapse")
local fixture = require("support.fixture")
local nc = collapse.nc

local expect_error = require("support.expect").error

local function read_matrix(name)
  local rows = {}
  for line in io.lines(fixture.root .. "/spec/fixtures/nc/" .. name) do
    local row = {}
    for v in line:gmatch("%S+") do row[#row + 1] = tonumber(v) end
    if #row > 0 then rows[#rows + 1] = row end
  end
  return rows
end

local function read_expected(name)
  local out = {}
  for line in io.lines(fixture.root .. "/spec/fixtures/nc/" .. name) do
    local k, rest = line:match("^(%S+)%s+(.*)$")
    if k then
      local vals = {}
      for v in rest:gmatch("%S+") do vals[#vals + 1] = tonumber(v) end
      out[k] = #vals == 1 and vals[1] or vals
    end
  end
  return out
end

local function rel(a, b) return math.abs(a - b) / math.max(1, math.abs(b)) end

local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end

describe("nc.measure against numpy (float64, 1e-9)", function()
  for _, case in ipairs({ "balanced", "imbalanced", "near_etf", "low_dim" }) do
    it(case, function()
      local x = collapse.tensor(read_matrix(case .. ".features.txt"), "float64")
      local labels = {}
      for i, row in ipairs(read_matrix(case .. ".labels.txt")) do labels[i] = math.tointeger(row[1]) end
      local W = collapse.tensor(read_matrix(case .. ".W.txt"), "float64")
      local b_path = fixture.root .. "/spec/fixtures/nc/" .. case .. ".b.txt"
      local b
      if exists(b_path) then
        local flat = {}
        for _, row in ipairs(read_matrix(case .. ".b.txt")) do for _, v in ipairs(row) do flat[#flat + 1] = v end end
        b = collapse.tensor(flat, "float64")
      end
      local exp = read_expected(case .. ".expected.txt")
      local m = nc.measure(x, labels, { classifier = W, bias = b, classes = exp.classes, q = exp.q })
      local checked = 0
      for _, key in ipairs({ "intra_cos", "intra_cos_min", "intra_cos_q", "inter_cos", "inter_cos_max",
        "inter_cos_q", "feature_norm", "nc1", "variability", "cdnv", "equinorm", "equiangular", "max_cos",
        "etf_error", "w_equinorm", "self_duality", "ncc_agreement", "accuracy", "loss" }) do
        if type(exp[key]) == "number" then
          assert.is_true(rel(m[key], exp[key]) < 1e-9, ("%s: %s = %.17g, numpy %.17g"):format(case, key, m[key], exp[key]))
          checked = checked + 1
        end
      end
      for _, key in ipairs({ "etf_spectrum", "between_spectrum" }) do
        if type(exp[key]) == "table" then
          for i, v in ipairs(exp[key]) do assert.is_true(math.abs(m[key][i] - v) < 1e-9, case .. " " .. key) end
        end
      end
      assert.is_true(checked >= 18)
    end)
  end
end)

-- Features exactly at a simplex ETF (C vectors in R^d centred), classifier W = M~.
local function etf_features(C, d, per_class)
  local means = {}
  for c = 1, C do
    means[c] = {}
    for j = 1, d do means[c][j] = (j == c and 1 or 0) - (j <= C and 1 / C or 0) end
  end
  local rows, labels = {}, {}
  for i = 1, C * per_class do
    local c = (i - 1) % C + 1
    rows[i] = { table.unpack(means[c]) }
    for j = 1, d do rows[i][j] = rows[i][j] * 3 + 0.5 end -- scaled and offset: still collapsed
    labels[i] = c
  end
  local W = {}
  for c = 1, C do
    W[c] = {}
    for j = 1, d do W[c][j] = means[c][j] * 3 end
  end
  return collapse.tensor(rows, "float64"), labels, collapse.tensor(W, "float64")
end

describe("nc.measure on perfect collapse", function()
  it("gives the exact values of docs/metrics.md", function()
    local C = 5
    local x, y, W = etf_features(C, 7, 4)
    local m = nc.measure(x, y, { classifier = W })
    assert.is_true(math.abs(m.intra_cos - 1) < 1e-12)
    assert.is_true(math.abs(m.inter_cos + 1 / (C - 1)) < 1e-12)
    for _, k in ipairs({ "nc1", "etf_error", "equiangular", "self_duality" }) do
      assert.is_true(math.abs(m[k]) < 1e-10, k .. " = " .. m[k])
    end
    assert.equal(1, m.ncc_agreement)
    assert.equal(1, m.accuracy)
  end)
  it("leaves classifier metrics nil without a classifier", function()
    local x, y = etf_features(3, 4, 3)
    local m = nc.measure(x, y)
    assert.is_nil(m.accuracy)
    assert.is_nil(m.self_duality)
    assert.is_number(m.intra_cos)
  end)
end)

describe("nc.measure_model", function()
  it("equals nc.measure on the features the classifier sees, in evaluate mode", function()
    local nn = collapse.nn
    local ds = collapse.data.gaussian{ classes = 3, dim = 6, per_class = 50, seed = 2, dtype = "float64" }
    local model = nn.Sequential{ nn.Linear(6, 8, { dtype = "float64" }), nn.ReLU(), nn.BatchNorm(8, { dtype = "float64" }),
      nn.Linear(8, 3, { dtype = "float64" }) }
    model:forward(ds.x) -- move BN running stats away from their start
    local streamed = nc.measure_model(model, ds, { batch_size = 17 })
    assert.is_true(model.training) -- mode restored
    model:evaluate()
    local feats = model:features(ds.x)
    local direct = nc.measure(feats, ds.y, { classifier = model:classifier() })
    for _, k in ipairs({ "intra_cos", "inter_cos", "nc1", "etf_error", "accuracy", "loss", "self_duality", "cdnv" }) do
      assert.is_true(rel(streamed[k], direct[k]) < 1e-10, k)
    end
  end)
end)

describe("nc errors", function()
  it("names the problem: one-sample class, label range, counts, lambda", function()
    local x = collapse.randn({ 5, 3 }, { dtype = "float64" })
    expect_error("class 3 has 1 sample", nc.measure, x, { 1, 1, 2, 2, 3 })
    expect_error("outside 1..2", nc.measure, x, { 1, 1, 2, 2, 3 }, { classes = 2 })
    expect_error("5 feature rows but 4 labels", nc.measure, x, { 1, 1, 2, 2 })
    expect_error("features must be a 2-d tensor", nc.measure, collapse.zeros({ 3 }), { 1, 2, 1 })
    expect_error("nc.measure: unknown option 'classfier'", nc.measure, x, { 1, 1, 2, 2, 2 }, { classfier = 1 })
    expect_error("q must be in (0, 1)", nc.measure, x, { 1, 1, 2, 2, 2 }, { q = 1.5 })
  end)
end)

describe("nc.measure memory", function()
  it("60,000 x 512 float32 features, C = 10: extra peak memory under 64 MB", function()
    -- In a fresh process, so the peak (VmHWM) belongs to this measurement alone.
    local script = [[
      local collapse = require("collapse")
      local x = collapse.randn({60000, 512}, { rng = collapse.rng(1) })   -- 123 MB, written
      local labels = collapse.zeros({60000}, "int32")
      for i = 1, 60000 do labels[i] = (i - 1) % 10 + 1 end
      local W = collapse.randn({10, 512}, { rng = collapse.rng(2) })
      collectgarbage(); collectgarbage()
      local before = collapse.core.peak_rss_kb()
      local m = collapse.nc.measure(x, labels, { classifier = W })
      assert(m.intra_cos == m.intra_cos)
      print(collapse.core.peak_rss_kb() - before)
    ]]
    local path = os.tmpname()
    local f = io.open(path, "w")
    f:write(script)
    f:close()
    local p = io.popen(fixture.root .. "/scripts/lua " .. path .. " 2>&1")
    local out = p:read("a")
    p:close()
    os.remove(path)
    local extra_kb = tonumber(out:match("(%-?%d+)%s*$"))
    assert.is_not_nil(extra_kb, out)
    assert.is_true(extra_kb < 64 * 1024, ("extra peak %d kB"):format(extra_kb))
  end)
end)
