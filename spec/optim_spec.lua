-- collapse.optim against three steps of torch.optim (spec/fixtures/torch/optim.txt), schedules, errors.
local collapse = require("collapse")
local fixture = require("support.fixture")
local optim = collapse.optim

local expect_error = require("support.expect").error

describe("optimisers against PyTorch (float64, 1e-10)", function()
  local fx = fixture.read("torch/optim.txt")
  local function param()
    local value = fixture.tensor(fx.x0, { 6 })
    return { name = "p", value = value, grad = collapse.zeros({ 6 }, "float64"), decay = true }
  end
  local function run(opt, p, name, state_keys)
    for step = 1, 3 do
      p.grad:copy(fixture.tensor(fx["g" .. step], { 6 }))
      opt:step()
      assert.is_true(fixture.max_err(p.value, fx[name .. ".x" .. step]) < 1e-10, name .. " step " .. step)
    end
    local st = opt.param_state[p.value]
    for key, fname in pairs(state_keys) do
      assert.is_true(fixture.max_err(st[key], fx[name .. "." .. fname]) < 1e-10, name .. " " .. key)
    end
  end

  for _, name in ipairs({ "sgd_momentum", "sgd_nesterov", "sgd_plain", "sgd_nowd" }) do
    it(name, function()
      local c = fx[name .. ".config"]
      local p = param()
      local opt = optim.SGD({ p }, { lr = c[1], momentum = c[2], dampening = c[3], nesterov = c[4] == 1,
        weight_decay = c[5] })
      run(opt, p, name, c[2] ~= 0 and { momentum_buffer = "buf3" } or {})
    end)
  end

  for _, name in ipairs({ "adam", "adamw", "adam_betas" }) do
    it(name, function()
      local c = fx[name .. ".config"]
      local p = param()
      local ctor = c[6] == 1 and optim.AdamW or optim.Adam
      local opt = ctor({ p }, { lr = c[1], betas = { c[2], c[3] }, eps = c[4], weight_decay = c[5] })
      run(opt, p, name, { exp_avg = "m3", exp_avg_sq = "v3" })
    end)
  end
end)

describe("optimiser objects", function()
  local function model() return collapse.nn.Sequential{ collapse.nn.Linear(3, 2) } end

  it("parameter groups take their own weight decay", function()
    local m = model()
    local params = m:parameters()
    local before_b = params[2].value:clone()
    local opt = optim.SGD({ { params = { params[1] } }, { params = { params[2] }, weight_decay = 0 } },
      { lr = 0.1, weight_decay = 1 })
    opt:zero_grad()
    opt:step()
    -- zero gradient: only weight decay moves parameters; the bias group has none
    assert.same(before_b:totable(), params[2].value:totable())
    assert.is_true(params[1].value:norm() > 0)
  end)

  it("state/load_state resume identically", function()
    local m1, m2 = model(), model()
    m2:load_state(m1:state())
    local o1 = optim.Adam(m1:parameters(), { lr = 0.01 })
    local o2 = optim.Adam(m2:parameters(), { lr = 0.01 })
    local x = collapse.randn({ 4, 3 }, { rng = collapse.rng(1) })
    local crit = collapse.nn.CrossEntropyLoss()
    local function step(m, o)
      o:zero_grad()
      local out = m:forward(x)
      crit:forward(out, { 1, 2, 1, 2 })
      m:backward(x, crit.grad)
      o:step()
    end
    step(m1, o1)
    o2:load_state(o1:state())
    m2:load_state(m1:state())
    step(m1, o1); step(m2, o2)
    assert.same(m1:get(1).weight:totable(), m2:get(1).weight:totable())
  end)

  it("schedules: MultiStepLR, the paper's schedule and CosineLR", function()
    local opt = optim.Adam(model():parameters(), { lr = 1.0 })
    local s = optim.MultiStepLR(opt, { milestones = { 2, 4 }, gamma = 0.1 })
    local lrs = {}
    for i = 1, 5 do lrs[i] = s:step() end
    assert.is_true(math.abs(lrs[1] - 1) < 1e-15 and math.abs(lrs[2] - 0.1) < 1e-15 and math.abs(lrs[5] - 0.01) < 1e-15)
    local opt2 = optim.Adam(model():parameters(), { lr = 1.0 })
    local p = optim.paper_schedule(opt2, 8) -- x0.1 at epochs 2, 4, 6
    for _ = 1, 6 do p:step() end
    assert.is_true(math.abs(opt2.lr - 1e-3) < 1e-15)
    local opt3 = optim.SGD(model():parameters(), { lr = 2.0 })
    local c = optim.CosineLR(opt3, { T_max = 4 })
    c:step(); c:step()
    assert.is_true(math.abs(opt3.lr - 1.0) < 1e-12)
  end)

  it("rejects bad options with the option's name", function()
    local params = model():parameters()
    expect_error("SGD: lr is required", optim.SGD, params, {})
    expect_error("SGD: unknown option 'moment'", optim.SGD, params, { lr = 0.1, moment = 0.9 })
    expect_error("nesterov momentum requires momentum > 0", optim.SGD, params, { lr = 0.1, nesterov = true })
    expect_error("Adam: betas[2] must be a number in [0, 1)", optim.Adam, params, { betas = { 0.9, 1 } })
    expect_error("Adam: weight_decay must be a number in [0, inf]", optim.Adam, params, { weight_decay = -1 })
    expect_error("params must be a non-empty list", optim.Adam, {}, {})
  end)

  it("step and zero_grad called with '.' say so", function()
    local opt = optim.Adam(model():parameters())
    expect_error("Adam.step: call with ':' (opt:step())", opt.step)
    expect_error("Adam.step: call with ':' (opt:step())", opt.step, { zero_grad = true })
    expect_error("SGD.zero_grad: call with ':' (opt:zero_grad())", optim.SGD(model():parameters(), { lr = 1 }).zero_grad)
  end)

  it("one fused call per group agrees with the per-parameter rule, mixed decay and groups included", function()
    -- two parameters stepped through a group list against each stepped alone: the same numbers
    local function make()
      local a = { name = "a", value = collapse.tensor({ 1, -2, 3 }, "float64"), grad = collapse.zeros({ 3 }, "float64") }
      local b = { name = "b", value = collapse.tensor({ { 0.5, 4 } }, "float64"), grad = collapse.zeros({ 1, 2 }, "float64"),
        decay = false }
      return a, b
    end
    local a1, b1 = make()
    local a2, b2 = make()
    local together = optim.Adam({ a1, b1 }, { lr = 0.1, weight_decay = 0.5 })
    local alone_a = optim.Adam({ a2 }, { lr = 0.1, weight_decay = 0.5 })
    local alone_b = optim.Adam({ b2 }, { lr = 0.1, weight_decay = 0 })
    for step = 1, 3 do
      for _, p in ipairs({ a1, b1, a2, b2 }) do p.grad:fill(step * 0.25) end
      together:step{ zero_grad = step == 2 }
      alone_a:step(); alone_b:step()
      if step == 2 then
        assert.equal(0, a1.grad:norm())
        assert.equal(0, b1.grad:norm())
      end
    end
    assert.same(a2.value:totable(), a1.value:totable())
    assert.same(b2.value:totable(), b1.value:totable())
    assert.equal(3, together.param_state[a1.value].step)
  end)
end)
