-- nn.Dropout, nn.GlobalAvgPool2d and nn.Residual (issue 9), and the Conv2d / pool settings the
-- ResNet and VGG builders use: finite-difference Jacobians in float64 (every module's backward
-- against central differences of sum(r * forward(x))), Dropout's mask statistics, Residual's
-- gradient as the sum of its branches', recursion of parameters/state/train/to, and errors.
local collapse = require("collapse")
local expect = require("support.expect")
local nn = collapse.nn

local F64 = "float64"

local function randn(shape, seed) return collapse.randn(shape, { dtype = F64, rng = collapse.rng(seed) }) end

-- max |a - b| / max |b|
local function rel(a, b)
  local d = (a - b):reshape({ -1 })
  local m = 0
  for _, v in ipairs(b:reshape({ -1 }):totable()) do m = math.max(m, math.abs(v)) end
  local worst = 0
  for _, v in ipairs(d:totable()) do worst = math.max(worst, math.abs(v)) end
  return worst / math.max(m, 1e-6) -- absolute for gradients that vanish (a conv bias before a BN)
end

-- Central differences of f(x) = sum(r * forward(x)) w.r.t. x against backward(x, r): the
-- relative error. before() runs before every forward (e.g. reseeding a Dropout).
local function jacobian_error(m, x, seed, before)
  before = before or function() end
  before()
  local y = m:forward(x)
  local r = randn(y:shape(), seed)
  local g = m:backward(x, r, true):clone()
  local flat, h = x:reshape({ -1 }), 1e-6
  local fd = collapse.zeros({ flat:numel() }, F64)
  for i = 1, flat:numel() do
    local v = flat:get(i)
    flat:set(i, v + h); before(); local fp = m:forward(x):dot(r)
    flat:set(i, v - h); before(); local fm = m:forward(x):dot(r)
    flat:set(i, v)
    fd:set(i, (fp - fm) / (2 * h))
  end
  return rel(g:reshape({ -1 }), fd)
end

-- The same for one parameter tensor (p = a parameters() entry), after zero_grad.
local function param_error(m, x, p, seed)
  m:zero_grad()
  local y = m:forward(x)
  local r = randn(y:shape(), seed)
  m:backward(x, r, true)
  local g = p.grad:clone():reshape({ -1 })
  local flat, h = p.value:reshape({ -1 }), 1e-6
  local fd = collapse.zeros({ flat:numel() }, F64)
  for i = 1, flat:numel() do
    local v = flat:get(i)
    flat:set(i, v + h); local fp = m:forward(x):dot(r)
    flat:set(i, v - h); local fm = m:forward(x):dot(r)
    flat:set(i, v)
    fd:set(i, (fp - fm) / (2 * h))
  end
  return rel(g, fd)
end

describe("nn.Dropout", function()
  it("keeps a binomial fraction of 10^5 elements, each scaled by exactly 1/(1-p)", function()
    for _, p in ipairs({ 0.1, 0.5, 0.9 }) do
      local d = nn.Dropout(p, { rng = collapse.rng(11) })
      local y = d:forward(collapse.ones({ 100, 1000 }, F64))
      local kept, bad = 0, 0
      for _, row in ipairs(y:totable()) do
        for _, v in ipairs(row) do
          if v ~= 0 then kept = kept + 1; if v ~= 1 / (1 - p) then bad = bad + 1 end end
        end
      end
      local n, q = 1e5, 1 - p
      assert.is_true(math.abs(kept - n * q) < 5 * math.sqrt(n * q * p), ("p %g kept %d"):format(p, kept))
      assert.are.equal(0, bad)
    end
  end)
  it("the same seed gives the same mask; another seed another; draws continue between calls", function()
    local x = randn({ 20, 30 }, 1)
    local a = nn.Dropout(0.5, { rng = collapse.rng(3) }):forward(x):clone()
    local d = nn.Dropout(0.5, { rng = collapse.rng(3) })
    assert.are.equal(0, (d:forward(x) - a):norm())
    assert.is_true((d:forward(x) - a):norm() > 0) -- the generator moved on
    assert.is_true((nn.Dropout(0.5, { rng = collapse.rng(4) }):forward(x) - a):norm() > 0)
  end)
  it("evaluate mode and p = 0 are the identity (the input itself; backward returns grad_output)", function()
    local x, gy = randn({ 4, 5 }, 2), randn({ 4, 5 }, 3)
    local d = nn.Dropout(0.3):evaluate()
    assert.are.equal(x, d:forward(x))
    assert.are.equal(gy, d:backward(x, gy))
    local z = nn.Dropout(0)
    assert.is_true(z.training)
    assert.are.equal(x, z:forward(x))
    -- back in training mode the output is its own buffer: the input is never written
    d:train()
    local before = x:clone()
    local y = d:forward(x)
    assert.are_not.equal(x, y)
    assert.are.equal(0, (x - before):norm())
  end)
  it("p = 1 zeroes the output and the gradient (PyTorch)", function()
    local d = nn.Dropout(1, { rng = collapse.rng(1) })
    local x = randn({ 3, 4 }, 5)
    assert.are.equal(0, d:forward(x):norm())
    assert.are.equal(0, d:backward(x, randn({ 3, 4 }, 6)):norm())
  end)
  it("backward is grad_output times the forward's mask: finite differences with the same seed", function()
    local d = nn.Dropout(0.4)
    local e = jacobian_error(d, randn({ 3, 2, 2, 3 }, 7), 8, function() d.rng = collapse.rng(21) end)
    assert.is_true(e < 1e-8, ("%.3g"):format(e))
    assert.is_nil(d:backward(nil, randn({ 3, 2, 2, 3 }, 8), false))
  end)
  it("float32 works; bad arguments are refused naming the argument", function()
    local y = nn.Dropout(0.5, { rng = collapse.rng(2) }):forward(collapse.ones({ 8, 8 }))
    assert.are.equal("float32", y:dtype())
    expect.error("Dropout: p must be a number in [0, 1], got 1.5", nn.Dropout, 1.5)
    expect.error("Dropout: p must be a number in [0, 1], got -0.1", nn.Dropout, -0.1)
    expect.error("Dropout: rng must be a generator", nn.Dropout, 0.5, { rng = 1 })
    expect.error("Dropout: unknown option 'seed'", nn.Dropout, 0.5, { seed = 1 })
    expect.error("Dropout.backward: call forward first", function() nn.Dropout(0.5):backward(nil, collapse.ones({ 1 })) end)
    expect.error("dropout_forward: input must be a tensor, got number", function() nn.Dropout(0.5):forward(3) end)
    expect.error("nn.Dropout(p=0.25)", function() error(tostring(nn.Dropout(0.25))) end)
  end)
end)

describe("nn.GlobalAvgPool2d", function()
  it("gives the plane means and their finite-difference gradient", function()
    local g = nn.GlobalAvgPool2d()
    local x = randn({ 2, 3, 3, 5 }, 1)
    local y = g:forward(x)
    assert.are.same({ 2, 3 }, y:shape())
    local t = x:totable()
    for n = 1, 2 do
      for c = 1, 3 do
        local s = 0
        for i = 1, 3 do for j = 1, 5 do s = s + t[n][c][i][j] end end
        assert.is_true(math.abs(y:get(n, c) - s / 15) < 1e-15)
      end
    end
    assert.is_true(jacobian_error(g, x, 2) < 1e-8)
    assert.is_nil(g:backward(x, randn({ 2, 3 }, 3), false))
  end)
  it("refuses inputs that are not 4-d, naming the kernel", function()
    expect.error("global_avg_pool2d_forward: size mismatch, input [2 x 3]", function()
      nn.GlobalAvgPool2d():forward(randn({ 2, 3 }, 1))
    end)
  end)
end)

-- A small BasicBlock-like Residual in float64 (stride 2 and a projection shortcut when down).
local function block(down, seed)
  local rng = collapse.rng(seed)
  local o = { padding = 1, bias = false, dtype = F64, rng = rng }
  local body = nn.Sequential{ nn.Conv2d(2, 3, 3, { stride = down and 2 or 1, padding = 1, bias = false, dtype = F64,
    rng = rng }), nn.BatchNorm2d(3, { dtype = F64 }), nn.ReLU(), nn.Conv2d(3, 3, 3, o) }
  local shortcut = down and nn.Sequential{ nn.Conv2d(2, 3, 1, { stride = 2, bias = false, dtype = F64, rng = rng }),
    nn.BatchNorm2d(3, { dtype = F64 }) } or nil
  return nn.Residual{ body = body, shortcut = shortcut }, body, shortcut
end

describe("nn.Residual", function()
  it("forward is body(x) + shortcut(x); grad_input is the sum of the branches' input gradients", function()
    local r, body, shortcut = block(true, 1)
    local x, gy = randn({ 2, 2, 5, 5 }, 2), randn({ 2, 3, 3, 3 }, 3)
    local y = r:forward(x):clone()
    assert.is_true(rel(y, body:forward(x) + shortcut:forward(x)) < 1e-15)
    r:forward(x)
    local g = r:backward(x, gy, true):clone()
    local gb = body:backward(x, gy, true):clone()
    local gs = shortcut:backward(x, gy, true):clone()
    assert.is_true(rel(g, gb + gs) < 1e-15)
    -- identity shortcut: grad_input = body's + grad_output
    local id = nn.Residual{ body = nn.Sequential{ nn.Conv2d(2, 2, 3, { padding = 1, dtype = F64 }) } }
    local x2, gy2 = randn({ 2, 2, 4, 4 }, 5), randn({ 2, 2, 4, 4 }, 7)
    assert.is_true(rel(id:forward(x2), id.body:forward(x2) + x2) < 1e-15)
    id:forward(x2)
    local gi = id:backward(x2, gy2, true):clone()
    assert.is_true(rel(gi, id.body:backward(x2, gy2, true) + gy2) < 1e-15)
  end)
  it("finite-difference Jacobian (input and parameters of both branches), stride 2 and identity", function()
    for _, down in ipairs({ true, false }) do
      local r = block(down, 10)
      if not down then r = nn.Residual{ body = nn.Sequential{ nn.Conv2d(2, 2, 3, { padding = 1, dtype = F64 }),
        nn.BatchNorm2d(2, { dtype = F64 }) } } end
      local x = randn({ 2, 2, 5, 5 }, 11)
      local e = jacobian_error(r, x, 12)
      assert.is_true(e < 1e-7, ("input %.3g"):format(e))
      for k, p in ipairs(r:parameters()) do
        local ep = param_error(r, x, p, 20 + k)
        assert.is_true(ep < 1e-7, ("%s %.3g"):format(p.name, ep))
      end
    end
  end)
  it("fused with the ReLU after it (as in Sequential{Residual, ReLU}): the same values and gradients", function()
    local r1 = block(true, 30)
    local r2 = block(true, 30)
    local fused = nn.Sequential{ r1, nn.ReLU() }
    local plain = nn.Sequential{ r2, nn.Identity(), nn.ReLU() } -- Identity stops the fusion
    local x, gy = randn({ 2, 2, 6, 6 }, 31), randn({ 2, 3, 3, 3 }, 32)
    assert.is_true(rel(fused:forward(x), plain:forward(x)) < 1e-15)
    assert.is_true(rel(fused:backward(x, gy, true), plain:backward(x, gy, true)) < 1e-15)
    for k, p in ipairs(fused:parameters()) do assert.is_true(rel(p.grad, plain:parameters()[k].grad) < 1e-15) end
    fused:evaluate()
    plain:evaluate()
    assert.is_true(rel(fused:forward(x), plain:forward(x)) < 1e-15)
    fused:train()
    local e = jacobian_error(fused, x, 33)
    assert.is_true(e < 1e-7, ("%.3g"):format(e))
  end)
  it("parameters, buffers, state, load_state, train/evaluate and to() recurse with branch names", function()
    local r = block(true, 40)
    local names = {}
    for _, p in ipairs(r:parameters()) do names[#names + 1] = p.name end
    assert.are.same({ "body.1.weight", "body.2.weight", "body.2.bias", "body.4.weight", "shortcut.1.weight",
      "shortcut.2.weight", "shortcut.2.bias" }, names)
    local bnames = {}
    for _, b in ipairs(r:buffers()) do bnames[#bnames + 1] = b.name end
    assert.are.same({ "body.2.running_mean", "body.2.running_var", "shortcut.2.running_mean",
      "shortcut.2.running_var" }, bnames)
    local other = block(true, 41)
    local x = randn({ 2, 2, 5, 5 }, 42)
    r:forward(x) -- moves the running statistics
    other:load_state(r:state())
    r:evaluate(); other:evaluate()
    assert.is_false(r.body:get(2).training or r.shortcut:get(2).training)
    assert.are.equal(0, (r:forward(x) - other:forward(x)):norm())
    r:train()
    assert.is_true(r.body:get(2).training and r.shortcut:get(2).training)
    r:to("float32")
    assert.are.equal("float32", r:parameters()[1].value:dtype())
    assert.are.same({ 2, 3, 3, 3 }, r:forward(x:to("float32")):shape())
    assert.are.equal(r:num_parameters(), other:num_parameters())
    r:zero_grad()
    for _, p in ipairs(r:parameters()) do assert.are.equal(0, p.grad:norm()) end
  end)
  it("errors name the failing branch and its inner module; bad constructions are refused", function()
    local r = block(true, 50)
    local ok, err = pcall(r.forward, r, randn({ 2, 5, 5, 5 }, 51))
    assert.is_false(ok)
    assert.is_truthy(err:find("Residual: body (nn.Sequential {) failed in forward: Sequential: module 1 (nn.Conv2d(2 -> 3",
      1, true), err)
    local outer = nn.Sequential{ nn.Conv2d(2, 4, 1, { dtype = F64 }), r }
    ok, err = pcall(outer.forward, outer, randn({ 1, 2, 5, 5 }, 52))
    assert.is_false(ok)
    assert.is_truthy(err:find("Sequential: module 2 (nn.Residual {", 1, true), err)
    assert.is_truthy(err:find("failed in forward: Residual: body (nn.Sequential {) failed in forward: Sequential: "
      .. "module 1 (nn.Conv2d(2 -> 3, 3x3, stride=2, padding=1, no bias)) failed in forward: ", 1, true), err)
    assert.is_truthy(err:find("4 channels", 1, true), err)
    expect.error("Residual: body must be a module, got nil", nn.Residual, {})
    expect.error("Residual: shortcut must be a module or nil, got number", nn.Residual, { body = nn.ReLU(), shortcut = 3 })
    expect.error("Residual: unknown option 'skip'", nn.Residual, { body = nn.ReLU(), skip = true })
    expect.error("Residual: expected a table {body = module, shortcut = module or nil}, got number", nn.Residual, 3)
    expect.error("Residual.backward: call forward first", function()
      local m = nn.Residual{ body = nn.ReLU() }
      m:backward(randn({ 1 }, 1), randn({ 1 }, 1))
    end)
  end)
end)

describe("Conv2d and pools in the settings ResNet and VGG use (float64 finite differences)", function()
  local cases = {
    { "3x3 stride 1 padding 1", function() return nn.Conv2d(2, 3, 3, { padding = 1, dtype = F64, rng = collapse.rng(1) }) end,
      { 2, 2, 5, 5 }, { 2, 3, 5, 5 } },
    { "3x3 stride 2 padding 1, odd size", function()
      return nn.Conv2d(2, 3, 3, { stride = 2, padding = 1, bias = false, dtype = F64, rng = collapse.rng(2) }) end,
      { 2, 2, 7, 7 }, { 2, 3, 4, 4 } },
    { "3x3 stride 2 padding 1, even size", function()
      return nn.Conv2d(2, 3, 3, { stride = 2, padding = 1, bias = false, dtype = F64, rng = collapse.rng(3) }) end,
      { 1, 2, 6, 6 }, { 1, 3, 3, 3 } },
    { "1x1 stride 2 padding 0", function()
      return nn.Conv2d(2, 3, 1, { stride = 2, bias = false, dtype = F64, rng = collapse.rng(4) }) end,
      { 2, 2, 7, 6 }, { 2, 3, 4, 3 } },
    { "max-pool 2 / 2, odd size", function() return nn.MaxPool2d(2, 2) end, { 2, 2, 5, 5 }, { 2, 2, 2, 2 } },
  }
  for _, c in ipairs(cases) do
    it(c[1], function()
      local m = c[2]()
      local x = randn(c[3], 60)
      assert.are.same(c[4], m:forward(x):shape())
      assert.is_true(jacobian_error(m, x, 61) < 1e-7)
      for k, p in ipairs(m:parameters()) do assert.is_true(param_error(m, x, p, 70 + k) < 1e-7, p.name) end
    end)
  end
end)
