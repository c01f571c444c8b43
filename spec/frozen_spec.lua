-- Frozen parameters (m:freeze(name), PyTorch's requires_grad = False) and the fixed-gamma
-- BatchNorm (nn.BatchNorm(f, {affine = "fixed_gamma", gamma = c})): against PyTorch
-- (spec/fixtures/torch_frozen, made by make_frozen_fixtures.py), bitwise against unfrozen runs.
local collapse = require("collapse")
local fixture = require("support.fixture")
local nn, optim = collapse.nn, collapse.optim

local T = fixture.tensor

local function same(a, b) return a:tobytes() == b:tobytes() end
local function maxabs(t)
  local m = 0
  for _, v in ipairs(t:reshape({ -1 }):totable()) do m = math.max(m, math.abs(v)) end
  return m
end

-- The fixture network with PyTorch's initial values; BN weight fixed at gamma.
local function fixture_model(fx)
  local bn = nn.BatchNorm(6, { affine = "fixed_gamma", gamma = fx.gamma[1], dtype = "float64" })
  local m = nn.Sequential{ nn.Linear(5, 6, { dtype = "float64" }), bn, nn.ReLU(), nn.Linear(6, 3, { dtype = "float64" }) }
  m:get(1).weight:copy(T(fx.init_lin1_weight, { 6, 5 }))
  m:get(1).bias:copy(T(fx.init_lin1_bias, { 6 }))
  bn.bias:copy(T(fx.init_bn_bias, { 6 }))
  m:get(4).weight:copy(T(fx.init_lin2_weight, { 3, 6 }))
  m:get(4).bias:copy(T(fx.init_lin2_bias, { 3 }))
  return m
end

local FIELDS = { { 1, "weight", "lin1_weight" }, { 1, "bias", "lin1_bias" }, { 2, "weight", "bn_weight" },
  { 2, "bias", "bn_bias" }, { 4, "weight", "lin2_weight" }, { 4, "bias", "lin2_bias" } }

describe("a frozen BatchNorm weight under Adam, against PyTorch (float64, 1e-12)", function()
  local fx = fixture.read("torch_frozen/adam_fixed_gamma.txt")
  local x = T(fx.x, { 8, 5 })
  local labels = collapse.tensor(fx.labels, "int32")

  -- fused: Sequential runs BN + ReLU as one kernel in training; unfused: the modules one by one
  for _, path in ipairs({ "fused", "unfused" }) do
    it(path .. ": two steps, every parameter and loss", function()
      local m = fixture_model(fx)
      local crit = nn.CrossEntropyLoss()
      local opt = optim.Adam(m:parameters(), { lr = 0.01, weight_decay = 0.05 })
      for step = 1, 2 do
        opt:zero_grad()
        local loss
        if path == "fused" then
          loss = crit:forward(m:forward(x), labels)
          m:backward(x, crit.grad)
        else
          local h1 = m:get(1):forward(x)
          local h2 = m:get(2):forward(h1)
          local h3 = m:get(3):forward(h2)
          loss = crit:forward(m:get(4):forward(h3), labels)
          local g = m:get(4):backward(h3, crit.grad)
          g = m:get(3):backward(h2, g)
          g = m:get(2):backward(h1, g)
          m:get(1):backward(x, g, false)
        end
        assert.is_true(math.abs(loss - fx["step" .. step .. "_loss"][1]) < 1e-12)
        opt:step()
        for _, f in ipairs(FIELDS) do
          local err = fixture.max_err(m:get(f[1])[f[2]], fx["step" .. step .. "_" .. f[3]])
          assert(err < 1e-12, ("step %d %s: error %g"):format(step, f[3], err))
        end
      end
      assert.are.equal(0, maxabs(m:get(2).weight_grad)) -- never accumulated
    end)
  end
end)

-- A small float64 MLP with a BatchNorm, deterministic from a seed.
local function mlp(seed)
  local rng = collapse.rng(seed)
  return nn.Sequential{ nn.Linear(4, 6, { dtype = "float64", rng = rng }), nn.BatchNorm(6, { dtype = "float64" }),
    nn.ReLU(), nn.Linear(6, 3, { dtype = "float64", rng = rng }) }
end

local function train(m, opt, steps)
  local x = collapse.randn({ 10, 4 }, { dtype = "float64", rng = collapse.rng(7) })
  local y = { 1, 2, 3, 1, 2, 3, 1, 2, 3, 1 }
  local crit = nn.CrossEntropyLoss()
  for _ = 1, steps do
    crit:forward(m:forward(x), y)
    m:backward(x, crit.grad)
    opt:step()
    opt:zero_grad()
  end
end

local OPTIMS = {
  SGD = function(p) return optim.SGD(p, { lr = 0.1, momentum = 0.9, weight_decay = 0.5 }) end,
  Adam = function(p) return optim.Adam(p, { lr = 0.01, weight_decay = 0.5 }) end,
  AdamW = function(p) return optim.AdamW(p, { lr = 0.01, weight_decay = 0.5 }) end,
}

describe("frozen parameters", function()
  for name, make in pairs(OPTIMS) do
    it(name .. ": the frozen weight is bitwise unchanged (no update, no weight decay)", function()
      local m = mlp(1)
      m:get(1):freeze("weight")
      local before = m:get(1).weight:clone()
      local opt = make(m:parameters())
      train(m, opt, 5)
      assert.is_true(same(before, m:get(1).weight))
      assert.are.equal(0, maxabs(m:get(1).weight_grad))
      assert.is_false(same(m:get(1).bias, mlp(1):get(1).bias)) -- the rest did train
    end)

    it(name .. ": after one step every other parameter equals the unfrozen run's bitwise", function()
      local a, b = mlp(2), mlp(2)
      a:get(2):freeze("weight")
      train(a, make(a:parameters()), 1)
      train(b, make(b:parameters()), 1)
      assert.is_true(same(a:get(2).weight, mlp(2):get(2).weight))
      assert.is_false(same(b:get(2).weight, mlp(2):get(2).weight))
      for _, i in ipairs({ 1, 4 }) do assert.is_true(same(a:get(i).weight, b:get(i).weight)) end
      assert.is_true(same(a:get(2).bias, b:get(2).bias))
    end)
  end

  it("a frozen Linear weight: its input gradient and bias gradient as unfrozen, no weight gradient", function()
    local a, b = nn.Linear(3, 2, { dtype = "float64" }), nn.Linear(3, 2, { dtype = "float64" })
    a:freeze("weight")
    local x = collapse.randn({ 4, 3 }, { dtype = "float64", rng = collapse.rng(3) })
    local gy = collapse.randn({ 4, 2 }, { dtype = "float64", rng = collapse.rng(4) })
    a:forward(x); b:forward(x)
    assert.is_true(same(a:backward(x, gy), b:backward(x, gy)))
    assert.is_true(same(a.bias_grad, b.bias_grad))
    assert.are.equal(0, maxabs(a.weight_grad))
    assert.is_true(maxabs(b.weight_grad) > 0)
  end)

  it("a frozen Conv2d weight gets no gradient; its bias does", function()
    local c = nn.Conv2d(2, 3, 3, { padding = 1, dtype = "float64" })
    c:freeze("weight")
    local x = collapse.randn({ 2, 2, 4, 4 }, { dtype = "float64", rng = collapse.rng(5) })
    local y = c:forward(x)
    c:backward(x, y)
    assert.are.equal(0, maxabs(c.weight_grad))
    assert.is_true(maxabs(c.bias_grad) > 0)
  end)

  it("freeze after the optimiser was made, then unfreeze: Adam's step of that parameter pauses", function()
    local m = mlp(3)
    local opt = optim.Adam(m:parameters(), { lr = 0.01 })
    train(m, opt, 2)
    m:get(4):freeze("bias")
    local held = m:get(4).bias:clone()
    train(m, opt, 3)
    assert.is_true(same(held, m:get(4).bias))
    local st = opt:state()
    assert.are.equal(2, st.params[6].step) -- 4.bias: stepped twice before the freeze
    assert.are.equal(5, st.params[1].step)
    m:get(4):unfreeze("bias")
    train(m, opt, 1)
    assert.is_false(same(held, m:get(4).bias))
    assert.are.equal(3, opt:state().params[6].step)
  end)

  it("parameters() entries carry requires_grad; the optimiser state has no entry for a never-stepped frozen one", function()
    local m = mlp(4)
    m:get(2):freeze("weight")
    local ps = m:parameters()
    assert.are.equal("2.weight", ps[3].name)
    assert.is_false(ps[3].requires_grad)
    assert.is_true(ps[4].requires_grad)
    local opt = optim.SGD(ps, { lr = 0.1 })
    train(m, opt, 1)
    assert.is_false(opt:state().params[3])
    assert.are.equal(m:num_parameters(), 4 * 6 + 6 + 6 + 6 + 6 * 3 + 3) -- frozen ones still count
  end)

  it("a hand-made entry with requires_grad = false is skipped", function()
    local w, g = collapse.tensor({ 1, 2 }, "float64"), collapse.tensor({ 1, 1 }, "float64")
    local opt = optim.SGD({ { name = "w", value = w, grad = g, requires_grad = false } }, { lr = 1 })
    opt:step()
    assert.are.same({ 1, 2 }, w:totable())
  end)

  it("freeze of a name that is no parameter, and '.'-calls, are refused", function()
    local ok, err = pcall(function() nn.Linear(2, 2, { bias = false }):freeze("bias") end)
    assert.is_false(ok)
    assert.truthy(err:find("Linear.freeze: name must be a parameter of nn.Linear (weight), got 'bias'", 1, true))
    ok, err = pcall(function() nn.ReLU():freeze("weight") end)
    assert.truthy(err:find("ReLU.freeze: name must be a parameter of nn.ReLU (it has none), got 'weight'", 1, true))
    ok, err = pcall(function() local l = nn.Linear(2, 2); l.freeze("weight") end)
    assert.is_false(ok)
    assert.truthy(err:find("freeze: call with ':' (m:freeze('weight'))", 1, true))
  end)
end)

describe("nn.BatchNorm fixed gamma", function()
  it("weight = c, frozen, bias learned; describe says so; fix_gamma does the same", function()
    local bn = nn.BatchNorm(4, { affine = "fixed_gamma", gamma = 2.5, dtype = "float64" })
    assert.are.same({ 2.5, 2.5, 2.5, 2.5 }, bn.weight:totable())
    assert.is_false(bn:requires_grad("weight"))
    assert.is_true(bn:requires_grad("bias"))
    assert.are.equal("nn.BatchNorm(4, eps=1e-05, momentum=0.1, gamma fixed at 2.5)", tostring(bn))
    local b2 = nn.BatchNorm(4, { dtype = "float64" }):fix_gamma(2.5)
    assert.is_true(same(b2.weight, bn.weight))
    assert.are.equal(tostring(bn), tostring(b2))
    assert.are.same({ 1, 1 }, nn.BatchNorm(2, { affine = "fixed_gamma" }).weight:totable())
  end)

  it("the feature norm of a fixed-gamma BN output (bias 0, train mode) is c * sqrt(features) per sample on average", function()
    local bn = nn.BatchNorm(50, { affine = "fixed_gamma", gamma = 0.3, dtype = "float64" })
    local x = collapse.randn({ 200, 50 }, { dtype = "float64", rng = collapse.rng(9) })
    local y = bn:forward(x)
    local sq = (y * y):sum() / 200 -- mean squared norm = c^2 * features (biased variance normalised)
    assert.is_true(math.abs(sq - 0.09 * 50) < 1e-4 * 4.5) -- eps = 1e-5 against a variance near 1
  end)

  it("BatchNorm2d takes the same option", function()
    local bn = nn.BatchNorm2d(3, { affine = "fixed_gamma", gamma = 0.5, dtype = "float64" })
    local x = collapse.randn({ 2, 3, 2, 2 }, { dtype = "float64", rng = collapse.rng(1) })
    bn:forward(x)
    bn:backward(x, collapse.randn({ 2, 3, 2, 2 }, { dtype = "float64", rng = collapse.rng(2) }))
    assert.are.equal(0, maxabs(bn.weight_grad))
    assert.is_true(maxabs(bn.bias_grad) > 0)
  end)

  it("state / load_state / checkpoints: a resumed run equals the continuous one bitwise", function()
    local function model()
      local m = mlp(5)
      m:get(2):fix_gamma(0.4)
      return m
    end
    local a = model()
    local oa = optim.Adam(a:parameters(), { lr = 0.01, weight_decay = 1e-3 })
    train(a, oa, 2)
    local path = os.tmpname()
    collapse.save(path, { model = a:state(), opt = oa:state() })
    train(a, oa, 2)
    local b = model()
    local ob = optim.Adam(b:parameters(), { lr = 0.01, weight_decay = 1e-3 })
    local ck = collapse.load(path)
    os.remove(path)
    b:load_state(ck.model)
    ob:load_state(ck.opt)
    train(b, ob, 2)
    for _, p in ipairs(a:parameters()) do
      local q
      for _, r in ipairs(b:parameters()) do if r.name == p.name then q = r end end
      assert(same(p.value, q.value), p.name)
    end
    assert.are.same({ 0.4, 0.4, 0.4, 0.4, 0.4, 0.4 }, b:get(2).weight:totable())
  end)

  it("bad options are refused with the function, argument and expectation", function()
    local function err(f) local ok, e = pcall(f); assert.is_false(ok); return e end
    assert.truthy(err(function() nn.BatchNorm(3, { affine = "fixed" }) end)
      :find("BatchNorm: affine must be true, false or 'fixed_gamma', got 'fixed'", 1, true))
    assert.truthy(err(function() nn.BatchNorm(3, { gamma = 2 }) end)
      :find("BatchNorm: gamma is only an option with affine = 'fixed_gamma'", 1, true))
    assert.truthy(err(function() nn.BatchNorm(3, { affine = "fixed_gamma", gamma = 0 / 0 }) end)
      :find("BatchNorm.fix_gamma: gamma must be a finite number", 1, true))
    assert.truthy(err(function() nn.BatchNorm(3, { affine = false }):fix_gamma(1) end)
      :find("BatchNorm.fix_gamma: the module has affine = false", 1, true))
  end)
end)
