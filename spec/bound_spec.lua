-- collapse.nc.optimal_loss / nc.bound: reference values of the theory (docs/theory.md), the
-- no-BN answer, errors, and the certified bound along real optimisation trajectories of the
-- layer-peeled model (free features -> BatchNorm -> Linear) minimised with collapse's own Adam.
local collapse = require("collapse")
local nn, optim, nc = collapse.nn, collapse.optim, collapse.nc

local expect_error = require("support.expect").error

local function rel(a, b) return math.abs(a - b) / math.abs(b) end

describe("nc.optimal_loss and nc.bound reference values (C = 10)", function()
  -- lambda, L*, t*, certified intra and inter at epsilon = 1e-6 (n unknown)
  local REF = {
    { 1e-4, 0.0032335369, 29.48891, 0.99646, 0.10146 },
    { 5e-4, 0.0138766038, 24.90513, 0.99927, -0.03757 },
    { 1e-3, 0.0257784483, 22.92834, 0.99962, -0.06155 },
    { 5e-3, 0.1059080738, 18.31512, 0.99991, -0.08934 },
    { 1e-2, 0.1918834027, 16.30101, 0.99995, -0.09534 },
    { 5e-2, 0.7217918035, 11.36576, 0.99999, -0.10304 },
  }
  for _, r in ipairs(REF) do
    it("lambda = " .. r[1], function()
      local L, t = nc.optimal_loss(r[1], 10)
      assert.is_true(math.abs(L - r[2]) < 6e-11) -- the table's last printed digit
      assert.is_true(rel(t, r[3]) < 1e-6)
      local b = nc.bound{ lambda = r[1], classes = 10, loss = L + 1e-6 }
      assert.is_true(b.guaranteed)
      assert.is_true(math.abs(b.intra_cos_min - r[4]) < 1e-4)
      assert.is_true(math.abs(b.inter_cos_max - r[5]) < 1e-4)
      assert.is_true(b.asymptotic.intra_cos_min >= b.intra_cos_min - 1e-12)
    end)
  end
  it("other class counts", function()
    assert.is_true(rel(nc.optimal_loss(0.01, 4), 0.09436169) < 1e-7)
    assert.is_true(rel(nc.optimal_loss(0.05, 3), 0.26070821) < 1e-7)
    assert.is_true(rel(nc.optimal_loss(0.1, 2), 0.25547338) < 1e-7)
    assert.equal(math.log(10), nc.optimal_loss(1, 10)) -- lambda sqrt(C) >= 1: the zero solution
  end)
end)

describe("nc.bound against spec/fixtures/bound_vectors.csv (1e-6 relative)", function()
  it("reproduces every row, C = 2..1000", function()
    local fixture = require("support.fixture")
    local rows = 0
    for line in io.lines(fixture.root .. "/spec/fixtures/bound_vectors.csv") do
      if not line:match("^#") and not line:match("^classes") then
        local f = {}
        for v in line:gmatch("[^,]+") do f[#f + 1] = v end
        local C, lambda, loss, n = math.tointeger(tonumber(f[1])), tonumber(f[2]), tonumber(f[3]), math.tointeger(tonumber(f[4]))
        local b = nc.bound{ lambda = lambda, classes = C, loss = loss, per_class = n > 0 and n or nil }
        assert.is_true(rel(b.optimal_loss, tonumber(f[5])) < 1e-9, line)
        assert.equal(f[7] == "1", b.guaranteed, line)
        if b.guaranteed then
          assert.is_true(rel(b.raw.intra_cos_min, tonumber(f[8])) < 1e-6, line)
          assert.is_true(rel(b.raw.inter_cos_max, tonumber(f[9])) < 1e-6, line)
          assert.is_true(rel(b.variability_max, tonumber(f[10])) < 1e-6, line)
          assert.is_true(rel(b.raw.self_duality_min, tonumber(f[11])) < 1e-6, line)
        end
        rows = rows + 1
      end
    end
    assert.is_true(rows >= 40)
  end)
end)

describe("nc.bound answers", function()
  it("says nothing is guaranteed without BN, or far from the optimum, with a reason", function()
    local nobn = nc.bound{ lambda = 1e-3, classes = 10, loss = 0.0258, bn = false }
    assert.is_false(nobn.guaranteed)
    assert.matches("BN", nobn.reason)
    local far = nc.bound{ lambda = 1e-3, classes = 10, loss = 2.0 }
    assert.is_false(far.guaranteed)
    assert.is_string(far.reason)
    assert.equal(-1, far.intra_cos_min)
  end)
  it("rejects bad input naming the argument", function()
    expect_error("lambda must be a positive number", nc.bound, { lambda = 0, classes = 10, loss = 1 })
    expect_error("classes must be an integer >= 2", nc.bound, { lambda = 1e-3, classes = 1, loss = 1 })
    expect_error("per_class must be an integer >= 2", nc.bound, { lambda = 1e-3, classes = 3, loss = 1, per_class = 1 })
    expect_error("below the optimal loss", nc.bound, { lambda = 1e-3, classes = 10, loss = 0.001 })
    expect_error("unknown field 'lamda'", nc.bound, { lamda = 1e-3, classes = 10, loss = 1 })
    expect_error("nc.optimal_loss: lambda must be a positive number", nc.optimal_loss, -1, 3)
  end)
end)

-- Minimises L_reg = CE + lambda/2 (||W||^2 + ||b||^2 + ||gamma||^2 + ||beta||^2) over free
-- features z (no decay), BN in training mode over the whole set, and a biased classifier.
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
  local function sq(t) return t:dot(t) end
  local checked, guaranteed, worst_intra, worst_inter, loss = 0, 0, math.huge, math.huge, nil
  for step = 1, steps do
    local h = bn:forward(z)
    local ce = crit:forward(lin:forward(h), y)
    loss = ce + lambda / 2 * (sq(lin.weight) + sq(lin.bias) + sq(bn.weight) + sq(bn.bias))
    if step % every == 0 or step == 1 then
      local m = nc.measure(h, y)
      local b = nc.bound{ lambda = lambda, classes = C, loss = loss, per_class = n }
      checked = checked + 1
      if b.guaranteed then
        guaranteed = guaranteed + 1
        -- margins: measured minus certified (must never be negative)
        worst_intra = math.min(worst_intra, m.intra_cos - b.intra_cos_min)
        worst_inter = math.min(worst_inter, b.inter_cos_max - m.inter_cos)
      end
    end
    bn:backward(z, lin:backward(h, crit.grad))
    zgrad:copy(bn.grad_input)
    opt:step()
    opt:zero_grad()
    zgrad:fill(0)
    sched:step()
  end
  return { loss = loss, optimal = nc.optimal_loss(lambda, C), checked = checked, guaranteed = guaranteed,
    worst_intra = worst_intra, worst_inter = worst_inter }
end

describe("the certified bound along layer-peeled trajectories", function()
  it("C = 4, d = 6: never violated, and the loss reaches L* to 1e-8", function()
    local r = layer_peeled(4, 6, 3, 1e-2, 6000, 10, 5)
    assert.is_true(r.guaranteed >= 100, "guaranteed at " .. r.guaranteed .. " of " .. r.checked .. " points")
    assert.is_true(r.worst_intra >= 0, "intra margin " .. r.worst_intra)
    assert.is_true(r.worst_inter >= 0, "inter margin " .. r.worst_inter)
    assert.is_true(math.abs(r.loss - r.optimal) < 1e-8, ("loss - L* = %g"):format(r.loss - r.optimal))
  end)
  it("C = 10, d = 12, other weight decays and seeds: never violated", function()
    for _, case in ipairs({ { 10, 12, 2, 5e-3, 11 }, { 3, 4, 4, 5e-2, 12 }, { 4, 6, 3, 1e-3, 13 } }) do
      local r = layer_peeled(case[1], case[2], case[3], case[4], 4000, 20, case[5])
      assert.is_true(r.guaranteed >= 20, "guaranteed at " .. r.guaranteed .. " points")
      assert.is_true(r.worst_intra >= 0 and r.worst_inter >= 0,
        ("C = %d, lambda = %g: margins %g, %g"):format(case[1], case[4], r.worst_intra, r.worst_inter))
    end
  end)
end)
