-- nc.decompose: epsilon = L_reg - L* split into the slacks of the proof chain (docs/theory.md).
-- Checked against numpy (spec/fixtures/make_decompose_fixtures.py), at the analytic optimum, on
-- trained BN MLPs (float64) and along layer-peeled trajectories (free features -> BN -> Linear).
local collapse = require("collapse")
local nn, optim, nc, data = collapse.nn, collapse.optim, collapse.nc, collapse.data
local fixture = require("support.fixture")
local expect_error = require("support.expect").error

local PARTS = { "jensen_competing", "jensen_samples", "jensen_classes", "imbalance_offsets", "cauchy_schwarz",
  "weight_norm", "gamma_norm", "within_class", "imbalance_energy", "bias", "beta", "am_gm", "optimality" }

local function part(r, name)
  for _, p in ipairs(r.parts) do if p.name == name then return p.value end end
  error("no part " .. name)
end

-- The parts in chain order, summing to epsilon within 1e-9 relative (recomputed here); below
-- epsilon = 1e-6 within 1e-15 absolute, as each part is a difference of O(0.1) numbers whose
-- rounding (~1e-17 each) is then no longer 1e-9 of epsilon.
local function check_sum(r)
  assert.equal(#PARTS, #r.parts)
  local s = 0
  for i, p in ipairs(r.parts) do
    assert.equal(PARTS[i], p.name)
    s = s + p.value
  end
  assert.is_true(math.abs(r.epsilon - (r.L_reg - r.L_star)) == 0)
  assert.is_true(math.abs(s - r.epsilon) <= math.max(1e-9 * math.abs(r.epsilon), 1e-15),
    ("parts sum to %.17g, epsilon %.17g"):format(s, r.epsilon))
end

-- Every part >= 0 up to rounding (absolute 1e-13: the parts are differences of O(1) numbers).
local function check_nonnegative(r, except)
  for _, p in ipairs(r.parts) do
    if not (except and except[p.name]) then
      assert.is_true(p.value >= -1e-13, ("%s = %.3g is negative"):format(p.name, p.value))
    end
  end
end

local function close(got, want, tol, what)
  assert.is_true(math.abs(got - want) <= tol * math.abs(want) + 1e-15,
    ("%s: got %.17g, numpy %.17g"):format(what, got, want))
end

local function fixture_model(f)
  local N, d, C = f.shape[1], f.shape[2], f.shape[3]
  local bn = nn.BatchNorm(d, { dtype = "float64", eps = f.eps[1] })
  local lin = nn.Linear(d, C, { dtype = "float64" })
  bn.weight:copy(fixture.tensor(f.gamma, { d }))
  bn.bias:copy(fixture.tensor(f.beta, { d }))
  bn.running_mean:copy(fixture.tensor(f.running_mean, { d }))
  bn.running_var:copy(fixture.tensor(f.running_var, { d }))
  lin.weight:copy(fixture.tensor(f.W, { C, d }))
  lin.bias:copy(fixture.tensor(f.b, { C }))
  local labels = {}
  for i, v in ipairs(f.labels) do labels[i] = math.tointeger(v) end
  local ds = data.Dataset{ x = fixture.tensor(f.z, { N, d }), y = collapse.tensor(labels, "int32"), classes = C }
  return nn.Sequential{ bn, lin }, ds
end

describe("nc.decompose against numpy (spec/fixtures/decompose, 1e-10)", function()
  for _, case in ipairs({ "balanced", "imbalanced", "near_collapse" }) do
    for _, mode in ipairs({ "batch", "running" }) do
      it(case .. ", bn_mode = " .. mode, function()
        local f = fixture.read("decompose/" .. case .. ".txt")
        local model, ds = fixture_model(f)
        local lambda = f.lambda[1]
        local r = nc.decompose(model, ds, lambda, { bn_mode = mode, batch_size = 7 })
        assert.equal(mode, r.bn_mode)
        check_sum(r)
        close(r.L_reg, f[mode .. ".L_reg"][1], 1e-12, "L_reg")
        close(r.L_star, f[mode .. ".L_star"][1], 1e-13, "L*")
        close(r.t_star, f[mode .. ".t_star"][1], 1e-12, "t*")
        for _, name in ipairs(PARTS) do close(part(r, name), f[mode .. "." .. name][1], 1e-10, name) end
        for _, k in ipairs({ "A", "B", "V", "E", "a", "t", "CE", "B_weighted" }) do
          close(r.quantities[k], f[mode .. ".q." .. k][1], 1e-10, k)
        end
        if mode == "running" then -- the same L_reg as nc.regularized_loss (model in evaluate mode)
          close(r.L_reg, nc.regularized_loss(model, ds, lambda).total, 1e-13, "regularized_loss")
        end
        if case ~= "imbalanced" then
          assert.equal(0, part(r, "imbalance_offsets"))
          assert.equal(0, part(r, "imbalance_energy"))
        end
      end)
    end
  end
  it("train-mode BN over the whole set: gamma part >= 0; running statistics can break it", function()
    local f = fixture.read("decompose/balanced.txt")
    local model, ds = fixture_model(f)
    assert.is_true(part(nc.decompose(model, ds, f.lambda[1]), "gamma_norm") > 0)
    -- running_var far below the set's variance: eval-mode features carry more energy than ||gamma||^2
    local bn = model.modules[1]
    bn.running_var:copy(bn.running_var * collapse.tensor({ 0.05 }, "float64"))
    local r = nc.decompose(model, ds, f.lambda[1], { bn_mode = "running" })
    check_sum(r)
    assert.is_true(part(r, "gamma_norm") < 0)
    assert.same({ "gamma_norm" }, r.negative)
  end)
end)

-- The analytic optimum of Theorem 1: class means a simplex ETF of squared norm t*, V = 0,
-- w_c - w_bar = M_c / sqrt(C), ||gamma||^2 = t*, b = beta = 0.
local function optimum(C, n, lambda)
  local _, tstar = nc.optimal_loss(lambda, C)
  local s = math.sqrt(tstar * C / (C - 1))
  local M, W, rows, labels = {}, {}, {}, {}
  for c = 1, C do
    M[c], W[c] = {}, {}
    for k = 1, C do
      M[c][k] = s * ((c == k and 1 or 0) - 1 / C)
      W[c][k] = M[c][k] / math.sqrt(C)
    end
  end
  for i = 1, C * n do
    local c = (i - 1) % C + 1
    rows[i], labels[i] = M[c], c
  end
  local gamma = collapse.full({ C }, math.sqrt(tstar / C), "float64") -- per-coordinate energy t*/C
  return collapse.tensor(rows, "float64"), labels, collapse.tensor(W, "float64"), gamma
end

describe("nc.decompose at the analytic optimum", function()
  for _, case in ipairs({ { 4, 3, 1e-2 }, { 10, 2, 5e-3 }, { 3, 5, 5e-2 } }) do
    local C, n, lambda = case[1], case[2], case[3]
    it(("every part is ~0 (1e-12): C = %d, lambda = %g"):format(C, lambda), function()
      local h, y, W, gamma = optimum(C, n, lambda)
      local r = nc.decompose.from_features(h, y, { lambda = lambda, W = W, gamma = gamma,
        beta = collapse.zeros({ C }, "float64"), b = collapse.zeros({ C }, "float64") })
      for _, p in ipairs(r.parts) do assert.is_true(math.abs(p.value) <= 1e-12, p.name .. " = " .. p.value) end
      assert.is_true(math.abs(r.epsilon) <= 1e-12)
      -- the same through a model: pre-BN features = the ETF, BN (eps 1e-14) normalises every
      -- coordinate to energy gamma_k^2, so the BN output is the ETF again
      local bn = nn.BatchNorm(C, { dtype = "float64", eps = 1e-14 })
      bn.weight:copy(gamma)
      local lin = nn.Linear(C, C, { dtype = "float64", bias = false })
      lin.weight:copy(W)
      local ds = data.Dataset{ x = h, y = collapse.tensor(y, "int32"), classes = C }
      local rm = nc.decompose(nn.Sequential{ bn, lin }, ds, lambda)
      for _, p in ipairs(rm.parts) do assert.is_true(math.abs(p.value) <= 1e-12, p.name .. " = " .. p.value) end
    end)
  end
end)

local function train_mlp(ds, lambda, epochs, seed)
  local model = collapse.models.paper_mlp{ input_dim = ds.x:size(2), classes = ds.classes, depth = 4, width = 48,
    batchnorm = true, dtype = "float64", rng = collapse.rng(seed) }
  local opt = optim.SGD(model:parameters(), { lr = 0.05, momentum = 0.9, weight_decay = lambda })
  local crit, g = nn.CrossEntropyLoss(), collapse.rng(seed + 1)
  for _ = 1, epochs do
    for x, y in ds:batches{ batch_size = 32, shuffle = true, rng = g } do
      crit:forward(model:forward(x), y)
      model:backward(x, crit.grad)
      opt:step()
      opt:zero_grad()
    end
  end
  return model
end

describe("nc.decompose on trained BN MLPs (float64)", function()
  it("balanced conic set: every part >= 0, sum = epsilon (1e-9), at several epochs", function()
    local ds = data.conic{ n = 600, seed = 3, dtype = "float64" }:balanced(60, collapse.rng(4))
    for _, epochs in ipairs({ 1, 5, 20 }) do
      local model = train_mlp(ds, 5e-3, epochs, 7)
      local r = nc.decompose(model, ds, 5e-3, { batch_size = 50 })
      assert.equal("batch", r.bn_mode)
      assert.is_true(r.balanced and r.has_bn)
      check_sum(r)
      check_nonnegative(r)
      assert.same({}, r.negative)
      assert.equal(0, part(r, "imbalance_offsets"))
      assert.equal(0, part(r, "bias")) -- the paper's classifier has no bias
      local rr = nc.decompose(model, ds, 5e-3, { bn_mode = "running" })
      check_sum(rr)
      assert.is_true(math.abs(rr.L_reg - nc.regularized_loss(model, ds, 5e-3).total) <= 1e-13)
    end
  end)
  it("imbalanced classes: every part but the two imbalance terms >= 0", function()
    local ds = data.conic{ n = 300, seed = 5, dtype = "float64" }
    local counts = ds:class_counts()
    assert.is_true(counts[1] ~= counts[2] or counts[2] ~= counts[3]) -- really imbalanced
    local model = train_mlp(ds, 1e-2, 8, 9)
    local r = nc.decompose(model, ds, 1e-2)
    assert.is_false(r.balanced)
    check_sum(r)
    check_nonnegative(r, { imbalance_offsets = true, imbalance_energy = true })
  end)
  it("without BN the feature energy is unbounded: the gamma part is -lambda/2 E, reported negative", function()
    local ds = data.conic{ n = 200, seed = 6, dtype = "float64" }:balanced(20, collapse.rng(1))
    local model = collapse.models.paper_mlp{ input_dim = 16, classes = 4, depth = 3, width = 16, dtype = "float64",
      rng = collapse.rng(2) }
    local r = nc.decompose(model, ds, 1e-2)
    assert.is_false(r.has_bn)
    assert.equal("none", r.bn_mode)
    check_sum(r)
    close(part(r, "gamma_norm"), -1e-2 / 2 * r.quantities.E, 1e-14, "gamma part")
    assert.same({ "gamma_norm" }, r.negative)
  end)
end)

-- Layer-peeled model: free features z -> BN (training mode, whole set) -> Linear with bias,
-- minimised with Adam as in spec/bound_spec.lua; the decomposition at points along the way.
local function layer_peeled(C, d, n, lambda, steps, every, seed)
  local N = C * n
  local g = collapse.rng(seed)
  local z = collapse.randn({ N, d }, { dtype = "float64", rng = g })
  local zgrad = collapse.zeros({ N, d }, "float64")
  local labels = {}
  for i = 1, N do labels[i] = (i - 1) % C + 1 end
  local y = collapse.tensor(labels, "int32")
  local bn = nn.BatchNorm(d, { dtype = "float64", eps = 1e-12 })
  local lin = nn.Linear(d, C, { dtype = "float64", rng = g })
  local crit = nn.CrossEntropyLoss()
  local opt = optim.Adam({ { params = { { name = "z", value = z, grad = zgrad } }, weight_decay = 0 },
    { params = bn:parameters() }, { params = lin:parameters() } }, { lr = 0.01, weight_decay = lambda })
  local sched = optim.CosineLR(opt, { T_max = steps })
  local points, last = 0, nil
  for step = 1, steps do
    local h = bn:forward(z)
    local ce = crit:forward(lin:forward(h), y)
    if step % every == 0 or step == 1 then
      local r = nc.decompose.from_features(h, labels, { lambda = lambda, W = lin.weight, b = lin.bias,
        gamma = bn.weight, beta = bn.bias })
      check_sum(r)
      check_nonnegative(r)
      assert.is_true(math.abs(r.quantities.CE - ce) <= 1e-12)
      points, last = points + 1, r
    end
    bn:backward(z, lin:backward(h, crit.grad))
    zgrad:copy(bn.grad_input)
    opt:step()
    opt:zero_grad()
    zgrad:fill(0)
    sched:step()
  end
  return points, last
end

describe("nc.decompose along layer-peeled trajectories", function()
  it("C = 4, d = 6: every part >= 0 at every point, and all vanish as the loss reaches L*", function()
    local points, last = layer_peeled(4, 6, 3, 1e-2, 6000, 50, 5)
    assert.is_true(points >= 100)
    assert.is_true(last.epsilon < 1e-8, "epsilon " .. last.epsilon)
    for _, p in ipairs(last.parts) do assert.is_true(p.value < 1e-8, p.name) end
  end)
  it("C = 10, d = 12 and C = 3, d = 4: every part >= 0", function()
    layer_peeled(10, 12, 2, 5e-3, 1500, 50, 11)
    layer_peeled(3, 4, 4, 5e-2, 1500, 50, 12)
  end)
end)

describe("nc.decompose errors", function()
  local ds = data.conic{ n = 40, seed = 1, dtype = "float64" }
  local model = collapse.models.paper_mlp{ input_dim = 16, classes = 4, depth = 2, width = 8, batchnorm = true,
    dtype = "float64", rng = collapse.rng(1) }
  it("names the argument and what was expected", function()
    expect_error("nc.decompose: lambda must be a positive number", nc.decompose, model, ds, 0)
    expect_error("nc.decompose: bn_mode must be 'batch' or 'running', got train", nc.decompose, model, ds, 1e-2,
      { bn_mode = "train" })
    expect_error("nc.decompose: unknown option 'batchsize'", nc.decompose, model, ds, 1e-2, { batchsize = 3 })
    expect_error("nc.decompose: batch_size must be a positive integer", nc.decompose, model, ds, 1e-2, { batch_size = 0 })
    expect_error("nc.decompose: model must be an nn.Sequential", nc.decompose, {}, ds, 1e-2)
    expect_error("nc.decompose: dataset must be a data.Dataset", nc.decompose, model, {}, 1e-2)
    local h = collapse.zeros({ 4, 3 }, "float64")
    local W = collapse.zeros({ 2, 3 }, "float64")
    expect_error("W must be a 2-d tensor [C x 3], got [2 x 4]", nc.decompose.from_features, h, { 1, 2, 1, 2 },
      { lambda = 1e-2, W = collapse.zeros({ 2, 4 }, "float64") })
    expect_error("label 3 at index 2 is outside 1..2", nc.decompose.from_features, h, { 1, 3, 1, 2 },
      { lambda = 1e-2, W = W })
    expect_error("class 2 has no sample", nc.decompose.from_features, h, { 1, 1, 1, 1 }, { lambda = 1e-2, W = W })
    expect_error("gamma must be a 1-d tensor of length 3", nc.decompose.from_features, h, { 1, 2, 1, 2 },
      { lambda = 1e-2, W = W, gamma = collapse.zeros({ 2 }, "float64") })
    local bad = collapse.zeros({ 4, 3 }, "float64")
    bad:set(2, 2, 0 / 0)
    expect_error("must be finite", nc.decompose.from_features, bad, { 1, 2, 1, 2 }, { lambda = 1e-2, W = W })
    expect_error("unknown option 'lamda'", nc.decompose.from_features, h, { 1, 2, 1, 2 }, { lamda = 1, W = W })
  end)
end)

describe("examples/terminal_phase.lua --quick", function()
  it("runs, certifies a (small) trained network and writes its JSON result", function()
    local out = os.tmpname()
    os.remove(out)
    local cmd = ("cd %q && lua5.4 examples/terminal_phase.lua --quick --out %q 2>&1"):format(fixture.root, out)
    local p = assert(io.popen(cmd))
    local text = p:read("a")
    local ok = p:close()
    assert.is_true(ok, text)
    assert.matches("outcome: CERTIFIED", text)
    local f = assert(io.open(out))
    local r = collapse.json.decode(f:read("a"))
    f:close()
    os.remove(out)
    assert.is_true(r.certified and r.guaranteed)
    assert.is_true(r.intra_cos >= r.intra_cos_min)
    local s = 0
    for _, p in ipairs(r.parts) do s = s + p.value end
    assert.is_true(math.abs(s - r.epsilon) <= 1e-9 * r.epsilon)
    assert.is_true(#r.history >= 2)
  end)
end)
