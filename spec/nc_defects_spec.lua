-- Issue 12: the nc defects. Feature width checked against the stats / classifier (in C, so that
-- a narrower matrix is never read past its end), empty datasets, weight decay 0 and float labels.
local collapse = require("collapse")
local models = require("collapse.models")
local nc = collapse.nc
local nn = collapse.nn

local expect_error = require("support.expect").error

local function gaussian(dim)
  return collapse.data.gaussian{ classes = 3, dim = dim, per_class = 20, seed = 4, dtype = "float64" }
end

describe("feature width against the stats object (C check)", function()
  it("refuses narrower and wider features in both passes, naming both shapes", function()
    local ds = gaussian(6)
    for _, dim in ipairs({ 8, 4 }) do
      local st = collapse.core.nc_stats(3, dim, false)
      expect_error(("features are [60 x 6] but the stats were made for dim %d"):format(dim), st.pass1, st, ds.x, ds.y)
    end
    local st = collapse.core.nc_stats(3, 6, false)
    st:pass1(ds.x, ds.y)
    st:end_pass1()
    expect_error("nc_stats_pass2: features are [60 x 5] but the stats were made for dim 6", st.pass2, st,
      ds.x:narrow(2, 1, 5), ds.y)
    st:pass2(ds.x, ds.y) -- the refused batches left nothing behind
    assert.equal(60, st:result().samples)
  end)
  it("refuses a 1-d feature tensor and a classifier of the wrong shape", function()
    local ds = gaussian(6)
    local st = collapse.core.nc_stats(3, 6, false)
    expect_error("features must be a 2-d tensor", st.pass1, st, collapse.zeros({ 6 }, "float64"), ds.y)
    expect_error("classifier weight is [6 x 3], expected [3 x 6]", nc.measure, ds.x, ds.y,
      { classifier = collapse.zeros({ 6, 3 }, "float64") })
    expect_error("bias is [2], expected [3]", nc.measure, ds.x, ds.y,
      { classifier = collapse.zeros({ 3, 6 }, "float64"), bias = collapse.zeros({ 2 }, "float64") })
    expect_error("classifier weight is [3 x 5], expected [3 x 6]", st.set_classifier, st,
      collapse.zeros({ 3, 5 }, "float64"))
  end)
  it("nc.measure_model refuses a model whose features do not fit its classifier", function()
    local ds = gaussian(6)
    local model = nn.Sequential{ nn.Linear(6, 8, { dtype = "float64" }), nn.ReLU(), nn.Linear(5, 3, { dtype = "float64" }) }
    -- Sequential:features runs every module but the last: [N x 8] into a Linear(5, 3)
    expect_error("nc.measure_model: the model's features are [60 x 8] but its classifier expects [N x 5]",
      nc.measure_model, model, ds)
    assert.is_true(model.training)
  end)
end)

describe("nc.regularized_loss", function()
  it("refuses an empty dataset instead of returning NaN", function()
    local empty = collapse.data.Dataset{ x = collapse.zeros({ 0, 6 }, "float64"), y = collapse.zeros({ 0 }, "int32"),
      classes = 3 }
    local model = nn.Sequential{ nn.Linear(6, 3, { dtype = "float64" }) }
    expect_error("nc.regularized_loss: the dataset is empty", nc.regularized_loss, model, empty, 1e-3)
  end)
end)

describe("weight decay 0", function()
  it("nc.certify returns the metrics with the bound marked not applicable", function()
    local ds = gaussian(6)
    local model = nn.Sequential{ nn.Linear(6, 8, { dtype = "float64" }), nn.BatchNorm(8, { dtype = "float64" }),
      nn.Linear(8, 3, { dtype = "float64" }) }
    local cert = nc.certify(model, ds, 0)
    assert.is_number(cert.metrics.intra_cos)
    assert.is_false(cert.bound.guaranteed)
    assert.is_false(cert.bound.applicable)
    assert.equal("not applicable (weight decay 0)", cert.bound.reason)
    assert.equal("not applicable (weight decay 0)", cert.model_free.reason)
    assert.equal(cert.loss.ce, cert.loss.total)
    expect_error("nc.certify: lambda must be a non-negative number", nc.certify, model, ds, -1)
  end)
  it("an experiment with weight_decay = 0 is measured", function()
    local data = collapse.data.conic{ n = 120, seed = 1 }
    local r = collapse.experiment{
      name = "wd0", seed = 1, data = { train = data }, epochs = 1, batch_size = 64, progress = false,
      optimizer = { "Adam", lr = 1e-3, weight_decay = 0 },
      model = function(cfg)
        return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 8,
          rng = collapse.rng(cfg.seed) }
      end,
    }:run()
    assert.is_number(r.final.intra_cos)
    assert.equal("not applicable (weight decay 0)", r.final.bound.reason)
  end)
end)

describe("float labels", function()
  it("nc.measure refuses 1.5 in a table and in a float tensor, naming the index", function()
    local x = collapse.randn({ 6, 3 }, { dtype = "float64", rng = collapse.rng(3) })
    expect_error("nc.measure: label 1.5 at index 4 is not an integer class index", nc.measure, x,
      { 1, 1, 2, 1.5, 2, 2 })
    local y = collapse.tensor({ 1, 1, 2, 2, 1.5, 2 }, "float64")
    expect_error("nc.measure: label 1.5 at index 5 is not an integer class index", nc.measure, x, y)
    -- whole numbers stored as floats are fine
    local m = nc.measure(x, collapse.tensor({ 1, 1, 1, 2, 2, 2 }, "float64"))
    assert.equal(6, m.samples)
  end)
end)

describe("nc.certify when the evaluate-mode L_reg is below L*", function()
  it("reports that nothing is certified instead of failing (running BN statistics, not whole-set ones)", function()
    local ds = collapse.data.gaussian{ classes = 3, dim = 6, per_class = 30, separation = 12, seed = 3, dtype = "float64" }
    local model = models.paper_mlp{ input_dim = 6, classes = ds.classes, depth = 3, width = 20, batchnorm = true,
      rng = collapse.rng(1), dtype = "float64" }
    local opt = collapse.optim.Adam(model:parameters(), { lr = 1e-2 })
    local crit = nn.CrossEntropyLoss()
    for _ = 1, 30 do
      for x, y in ds:batches{ batch_size = 90, shuffle = false } do
        crit:forward(model:forward(x), y); model:backward(x, crit.grad); opt:step(); opt:zero_grad()
      end
    end
    model:evaluate()
    assert.equal(90, collapse.core.count_correct(model:forward(ds.x), ds.y)) -- separable: every sample right
    -- tiny last-layer weights, huge evaluate-mode features: CE ~ 0 with a penalty far below L*
    local bn, W = model:find(nn.BatchNorm_class)[1], model:classifier().weight
    bn.weight:copy(bn.weight * 1e-3); bn.bias:fill(0); W:copy(W * 1e-3)
    bn.running_var:fill(1e-24); bn.eps = 1e-30
    local lambda = 5e-3
    local loss = nc.regularized_loss(model, ds, lambda)
    local l_star = nc.optimal_loss(lambda, ds.classes)
    assert.is_true(loss.total < l_star, ("crafted L_reg %g should be below L* %g"):format(loss.total, l_star))
    local c = nc.certify(model, ds, lambda, { decompose = false })
    assert.is_false(c.bound.guaranteed)
    assert.is_false(c.bound.applicable)
    assert.matches("below L%*", c.bound.reason)
    assert.is_true(c.metrics.intra_cos == c.metrics.intra_cos) -- the metrics are still there (not NaN)
  end)
end)
