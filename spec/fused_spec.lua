-- The fast paths of the training loop (bench/README.md): batches gathered into reused buffers,
-- the opt-in skip of the first layer's input gradient, BatchNorm + ReLU fused inside a
-- Sequential, and optimiser steps that zero the gradients in the same pass. Each must give the
-- same numbers as the plain path, bit for bit.
local collapse = require("collapse")
local nn, optim, data = collapse.nn, collapse.optim, collapse.data
local expect_error = require("support.expect").error

local function same(a, b) assert.same(a:totable(), b:totable()) end

local function mlp(dtype, seed)
  local g = collapse.rng(seed)
  return nn.Sequential{ nn.Linear(6, 8, { rng = g, dtype = dtype }), nn.BatchNorm(8, { dtype = dtype }), nn.ReLU(),
    nn.Linear(8, 8, { rng = g, dtype = dtype }), nn.BatchNorm(8, { dtype = dtype }), nn.ReLU(),
    nn.Linear(8, 3, { bias = false, rng = g, dtype = dtype }) }
end

describe("Dataset:batches buffers", function()
  local ds = data.gaussian{ classes = 3, dim = 5, per_class = 7, seed = 4 } -- 21 samples

  it("shuffled batches are the permuted rows, gathered into reused tensors", function()
    local perm = collapse.rng(9):permutation(21)
    local seen, xs = 0, {}
    for x, y in ds:batches{ batch_size = 8, rng = collapse.rng(9) } do
      local idx = perm:narrow(1, seen + 1, x:size(1))
      same(x, ds.x:rows(idx))
      same(y, ds.y:rows(idx))
      xs[#xs + 1] = x
      seen = seen + x:size(1)
    end
    assert.equal(21, seen)
    assert.equal(xs[1], xs[2])        -- the same buffer for the full batches
    assert.not_equal(xs[2], xs[3])    -- the short last batch (5 rows) has its own
    assert.equal(5, xs[3]:size(1))
  end)

  it("reuse = false gives fresh tensors with the same values", function()
    local a, b = {}, {}
    for x in ds:batches{ batch_size = 8, rng = collapse.rng(2) } do a[#a + 1] = x:clone() end
    for x in ds:batches{ batch_size = 8, rng = collapse.rng(2), reuse = false } do b[#b + 1] = x end
    assert.not_equal(b[1], b[2])
    for i = 1, #a do same(a[i], b[i]) end
    expect_error("unknown option 'reuses' (batch_size, shuffle, rng, drop_last, reuse)", ds.batches, ds,
      { reuses = true })
  end)

  it("rows_into gathers without allocating and checks its arguments", function()
    local t = collapse.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } })
    local out = collapse.zeros({ 2, 2 })
    local idx = collapse.tensor({ 3, 1, 2 }, "int32")
    assert.equal(out, t:rows_into(out, idx, 2, 2))
    assert.same({ { 1, 2 }, { 3, 4 } }, out:totable())
    expect_error("rows_into: out must be a float32 tensor [3 x 2], got a float32 tensor [2 x 2]", t.rows_into, t,
      out, idx)
    expect_error("rows_into: positions 3..4 are outside the index of length 3", t.rows_into, t, out, idx, 3, 2)
    expect_error("rows_into: index must be an int32 tensor", t.rows_into, t, out, { 1, 2 })
    expect_error("rows_into: index 4 at position 1 out of range 1..3", t.rows_into, t, out,
      collapse.tensor({ 4, 1 }, "int32"))
  end)
end)

describe("Sequential fast paths", function()
  for _, dtype in ipairs({ "float32", "float64" }) do
    it("BatchNorm + ReLU run fused with the values of the modules one by one (" .. dtype .. ")", function()
      local a, b = mlp(dtype, 3), mlp(dtype, 3)
      local x = collapse.randn({ 10, 6 }, { rng = collapse.rng(5), dtype = dtype })
      local gy = collapse.randn({ 10, 3 }, { rng = collapse.rng(6), dtype = dtype })
      local out = a:forward(x)
      local gx = a:backward(x, gy, true)
      -- b: every module on its own (unfused), forward then backward
      local h, inputs = x, {}
      for i, m in ipairs(b.modules) do inputs[i] = h; h = m:forward(h) end
      same(out, h)
      local g = gy
      for i = #b.modules, 1, -1 do g = b.modules[i]:backward(inputs[i], g) end
      same(gx, g)
      local pa, pb = a:parameters(), b:parameters()
      for i = 1, #pa do same(pa[i].grad, pb[i].grad) end
      for i, bn in ipairs(a:find(nn.BatchNorm_class)) do
        same(bn.running_mean, b:find(nn.BatchNorm_class)[i].running_mean)
        same(bn.running_var, b:find(nn.BatchNorm_class)[i].running_var)
      end
      -- evaluate mode runs unfused and agrees as well
      a:evaluate(); b:evaluate()
      same(a:forward(x), b:forward(x))
      same(a:features(x), b:features(x))
    end)
  end

  it("backward(x, gy, false) skips the input gradient and gives the same parameter gradients", function()
    local a, b = mlp("float64", 7), mlp("float64", 7)
    local x = collapse.randn({ 9, 6 }, { rng = collapse.rng(1), dtype = "float64" })
    local gy = collapse.randn({ 9, 3 }, { rng = collapse.rng(2), dtype = "float64" })
    a:forward(x); b:forward(x)
    assert.is_not_nil(a:backward(x, gy, true))
    assert.is_nil(b:backward(x, gy, false))
    assert.is_nil(b.grad_input)
    local pa, pb = a:parameters(), b:parameters()
    for i = 1, #pa do same(pa[i].grad, pb[i].grad) end
    -- a first module without the option (ReLU) still returns its gradient
    local c = nn.Sequential{ nn.ReLU(), nn.Linear(6, 3, { dtype = "float64" }) }
    c:forward(x)
    assert.is_nil(c:backward(x, gy, false))
  end)
end)

describe("optimiser step{zero_grad = true}", function()
  local function train(make_opt, fused)
    local model = mlp("float32", 11)
    local opt = make_opt(model:parameters())
    local crit = nn.CrossEntropyLoss()
    local ds = data.gaussian{ classes = 3, dim = 6, per_class = 12, seed = 1, dtype = "float32" }
    for x, y in ds:batches{ batch_size = 8, rng = collapse.rng(3) } do
      crit:forward(model:forward(x), y)
      model:backward(x, crit.grad, false)
      if fused then opt:step{ zero_grad = true } else opt:step(); opt:zero_grad() end
    end
    return model
  end
  for name, make in pairs({
    SGD = function(p) return optim.SGD(p, { lr = 0.05, momentum = 0.9, weight_decay = 5e-4 }) end,
    Adam = function(p) return optim.Adam(p, { lr = 1e-2, weight_decay = 5e-4 }) end,
    AdamW = function(p) return optim.AdamW(p, { lr = 1e-2 }) end,
  }) do
    it(name .. " gives the values of step() then zero_grad()", function()
      local a, b = train(make, false), train(make, true)
      local pa, pb = a:parameters(), b:parameters()
      for i = 1, #pa do
        same(pa[i].value, pb[i].value)
        assert.equal(0, pb[i].grad:norm())
      end
    end)
  end

  it("checks its option", function()
    local opt = optim.SGD(mlp("float32", 1):parameters(), { lr = 0.1 })
    expect_error("SGD.step: unknown option 'zero' (zero_grad)", opt.step, opt, { zero = true })
    expect_error("SGD.step: options must be a table {zero_grad = true}, got boolean", opt.step, opt, true)
    local adam = optim.Adam(mlp("float32", 1):parameters())
    expect_error("Adam.step: unknown option 'zero' (zero_grad)", adam.step, adam, { zero = true })
  end)
end)
