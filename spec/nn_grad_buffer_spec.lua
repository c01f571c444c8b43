-- Shared input-gradient buffers (nn.GradPool, docs/nn-buffers.md): a Sequential's backward
-- lends a few pool buffers to its modules, nested Sequential and Residual included, instead of
-- one buffer per module. The reference is the same model with share_grads = false (one buffer
-- per module, the path before sharing): every parameter gradient and the returned input
-- gradient must agree bit for bit; the PyTorch fixture tests (cnn_models_spec, conv_spec,
-- training_spec) run the shared path against PyTorch.
local collapse = require("collapse")
local nn, models = collapse.nn, collapse.models
local expect_error = require("support.expect").error
local fixture = require("support.fixture")

local function same(a, b) assert.same(a:totable(), b:totable()) end

-- every parameter gradient of a and b, bit for bit
local function same_grads(a, b)
  local pa, pb = a:parameters(), b:parameters()
  assert.equal(#pa, #pb)
  for i = 1, #pa do
    assert.equal(pa[i].name, pb[i].name)
    same(pa[i].grad, pb[i].grad)
  end
end

-- one training step's gradients (forward, loss, backward); returns the model's input gradient
local function step(model, x, labels, need)
  local crit = nn.CrossEntropyLoss()
  model:zero_grad()
  crit:forward(model:forward(x), labels)
  return model:backward(x, crit.grad, need)
end

local function labels(n, classes)
  local t = {}
  for i = 1, n do t[i] = (i * 7) % classes + 1 end
  return collapse.tensor(t, "int32")
end

-- The distinct gradient tensors the modules of a model still hold (grad_input and the fused
-- Residual's masked gradient), walking nested Sequential / Residual modules.
local function held_grads(m, seen)
  seen = seen or {}
  for _, f in ipairs({ "grad_input", "_fused_g" }) do
    local t = rawget(m, f)
    if t then seen[t] = true end
  end
  for _, c in ipairs(m.modules or {}) do held_grads(c, seen) end
  if m.body then held_grads(m.body, seen) end
  if m.shortcut then held_grads(m.shortcut, seen) end
  local n = 0
  for _ in pairs(seen) do n = n + 1 end
  return n
end

local function unshared(model)
  model.share_grads = false
  return model
end

describe("shared input-gradient buffers give the same gradients", function()
  for _, case in ipairs({
    { "resnet18 width 4", function() return models.resnet18{ width = 4, classes = 10, dtype = "float64", rng = collapse.rng(3) } end },
    { "vgg11 width 1/16", function()
      return models.vgg{ depth = 11, width = 1 / 16, classes = 10, classifier = "cifar", dtype = "float64", rng = collapse.rng(3) }
    end },
  }) do
    it(case[1] .. " (float64): every parameter gradient and the input gradient, over two batch sizes", function()
      local a, b = case[2](), unshared(case[2]())
      for _, n in ipairs({ 4, 3 }) do -- the second, smaller batch reuses the grown buffers
        local x = collapse.randn({ n, 3, 32, 32 }, { rng = collapse.rng(n), dtype = "float64" })
        local ga, gb = step(a, x, labels(n, 10), true), step(b, x, labels(n, 10), true)
        assert.same({ n, 3, 32, 32 }, ga:shape())
        same(ga, gb)
        same_grads(a, b)
        -- and without the model's input gradient (the bench's loop)
        assert.is_nil(step(a, x, labels(n, 10), false))
        step(b, x, labels(n, 10), false)
        same_grads(a, b)
      end
    end)
  end

  it("resnet18 width 4 in float32 (the oneDNN convolutions when built with them)", function()
    local function make() return models.resnet18{ width = 4, classes = 10, dtype = "float32", rng = collapse.rng(5) } end
    local a, b = make(), unshared(make())
    local x = collapse.randn({ 6, 3, 32, 32 }, { rng = collapse.rng(8) })
    same(step(a, x, labels(6, 10), true), step(b, x, labels(6, 10), true))
    same_grads(a, b)
  end)
end)

describe("shared input-gradient buffers against PyTorch", function()
  -- spec/fixtures/torch_conv/conv_net.txt (make_conv_fixtures.py): conv_spec compares the inner
  -- gradients with share_grads = false; here the shared path's returned input gradient and every
  -- parameter gradient, in training and evaluate mode
  local fx = fixture.read("torch_conv/conv_net.txt")
  local T = fixture.tensor
  local function close(t, ref) assert.is_true(fixture.max_err(t, ref) <= 1e-10) end
  for _, mode in ipairs({ "train", "eval" }) do
    it(mode .. " mode: Conv2d-BatchNorm2d-ReLU-MaxPool2d-AvgPool2d-Flatten-Linear", function()
      local model = require("support.conv_fixture")(fx) -- shared buffers (the default)
      local x, y = T(fx.x, { 2, 3, 7, 6 }), collapse.tensor(fx.labels, "int32")
      if mode == "eval" then model:forward(x); model:evaluate() end
      local k = mode .. "."
      close(step(model, x, y, true), fx[k .. "gx"])
      assert.equal(2, model:grad_buffer_stats().buffers)
      close(model:get(1).weight_grad, fx[k .. "g_conv_weight"])
      close(model:get(1).bias_grad, fx[k .. "g_conv_bias"])
      close(model:get(2).weight_grad, fx[k .. "g_gamma"])
      close(model:get(2).bias_grad, fx[k .. "g_beta"])
      close(model:get(7).weight_grad, fx[k .. "g_lin_weight"])
      close(model:get(7).bias_grad, fx[k .. "g_lin_bias"])
    end)
  end
end)

describe("shared input-gradient buffers are few", function()
  it("resnet18: three buffers in all, each at most the largest input gradient (N w 32 32)", function()
    local n, w = 4, 8
    local model = models.resnet18{ width = w, classes = 10, dtype = "float32", rng = collapse.rng(1) }
    local x = collapse.randn({ n, 3, 32, 32 }, { rng = collapse.rng(2) })
    assert.same({ buffers = 0, bytes = 0 }, model:grad_buffer_stats())
    step(model, x, labels(n, 10), false)
    local st = model:grad_buffer_stats()
    -- a block's backward needs at most three at once: the masked gradient (written in place into
    -- the incoming one) and two ping-pong buffers along the body or the shortcut
    assert.equal(3, st.buffers)
    assert.is_true(st.bytes <= 3 * n * w * 32 * 32 * 4, st.bytes)
    -- the same model without sharing: one buffer per module that makes an input gradient, 58 =
    -- the stem's BN+ReLU, per block 2 for the Residual (sum, mask) and 4 for the body's conv,
    -- BN+ReLU, conv, BN, 2 per projection shortcut (3 of them), the pooling, last BN and Linear
    local ref = unshared(models.resnet18{ width = w, classes = 10, dtype = "float32", rng = collapse.rng(1) })
    step(ref, x, labels(n, 10), false)
    assert.equal(1 + 8 * (2 + 4) + 3 * 2 + 3, held_grads(ref))
    assert.equal(0, ref:grad_buffer_stats().buffers)
    -- and after the shared pass no module holds a released buffer: only the returned gradient
    -- (need_input_grad = true) is kept, by the first module
    assert.equal(0, held_grads(model))
    local g = step(model, x, labels(n, 10), true)
    assert.equal(1, held_grads(model))
    assert.equal(g, model:get(1).grad_input)
    assert.equal(3, model:grad_buffer_stats().buffers)
  end)

  it("a chain of Linear / BatchNorm / ReLU ping-pongs between two buffers", function()
    local g = collapse.rng(4)
    local model = nn.Sequential{ nn.Linear(6, 9, { rng = g }), nn.ReLU(), nn.Linear(9, 9, { rng = g }), nn.BatchNorm(9),
      nn.ReLU(), nn.Linear(9, 9, { rng = g }), nn.Tanh(), nn.Linear(9, 3, { rng = g }) }
    local x = collapse.randn({ 5, 6 }, { rng = g })
    step(model, x, labels(5, 3), true)
    local st = model:grad_buffer_stats()
    assert.equal(2, st.buffers)
    assert.is_true(st.bytes <= 2 * 5 * 9 * 4)
  end)

  it("the returned gradient stays valid until the next backward, also across a standalone call", function()
    local model = models.resnet18{ width = 2, classes = 4, dtype = "float64", rng = collapse.rng(6) }
    local x = collapse.randn({ 2, 3, 32, 32 }, { rng = collapse.rng(7), dtype = "float64" })
    local g = step(model, x, labels(2, 4), true)
    local keep = g:clone()
    -- an inner module used on its own afterwards makes its own buffer (the pool's were taken back)
    local conv = model:get(4).modules[1].body.modules[1]
    assert.is_nil(conv.grad_input)
    conv:backward(model:get(3).output, conv:forward(model:get(3).output), true)
    assert.is_not_nil(conv.grad_input)
    model:forward(x) -- a forward does not touch the gradient buffers either
    same(keep, g)
  end)
end)

describe("the fused Residual + ReLU sums in place into the body's output", function()
  it("resnet18: each block's sum is its body's last BatchNorm output; standalone Residuals keep theirs", function()
    local model = models.resnet18{ width = 2, classes = 4, dtype = "float64", rng = collapse.rng(9) }
    local x = collapse.randn({ 2, 3, 32, 32 }, { rng = collapse.rng(1), dtype = "float64" })
    model:forward(x)
    for k = 4, 11 do
      local res = model:get(k).modules[1]
      assert.equal(res.body:get(5).output, res._fused_y)           -- one tensor, not two
      assert.equal(res._fused_y, model:get(k).modules[2].output) -- the block's output
    end
    -- a standalone Residual (no fused step) keeps its own output: body:forward cannot clobber it
    local g = collapse.rng(2)
    local r = nn.Residual{ body = nn.Sequential{ nn.Linear(3, 3, { rng = g, dtype = "float64" }) } }
    local x3 = collapse.randn({ 2, 3 }, { rng = g, dtype = "float64" })
    local y = r:forward(x3)
    assert.not_equal(y, r.body:get(1).output)
    -- a body whose last module reads its output in backward (ReLU) is not written to
    local block = nn.Sequential{ nn.Residual{ body = nn.Sequential{ nn.Linear(3, 3, { rng = g, dtype = "float64" }), nn.ReLU() } },
      nn.ReLU() }
    block:forward(x3)
    assert.not_equal(block:get(1).body:get(2).output, block:get(1)._fused_y)
  end)
end)

describe("nested containers with shared buffers", function()
  -- Residuals inside Residuals, an Identity / Flatten / Dropout whose gradient is (a view of) its
  -- grad_output, a Residual with and without a fused ReLU after it, a Residual as the first module
  local function nested(seed)
    local g = collapse.rng(seed)
    local d = { dtype = "float64", rng = g }
    local inner = nn.Residual{ body = nn.Sequential{ nn.Identity(), nn.Linear(8, 8, d), nn.Tanh() } }
    local block = nn.Residual{ body = nn.Sequential{ nn.Linear(8, 8, d), nn.BatchNorm(8, { dtype = "float64" }), nn.ReLU(),
      inner, nn.Dropout(0) }, shortcut = nn.Sequential{ nn.Linear(8, 8, d) } }
    return nn.Sequential{
      nn.Residual{ body = nn.Sequential{ nn.Linear(8, 8, d) } },
      block, nn.ReLU(),
      nn.Residual{ body = nn.Residual{ body = nn.Sequential{ nn.Flatten(), nn.Linear(8, 8, d) } }, shortcut = nn.Identity() },
      nn.Linear(8, 3, d) }
  end

  for _, need in ipairs({ true, false }) do
    it("need_input_grad = " .. tostring(need) .. ": the same gradients as without sharing", function()
      local a, b = nested(2), unshared(nested(2))
      for _, n in ipairs({ 5, 7, 5 }) do
        local x = collapse.randn({ n, 8 }, { rng = collapse.rng(n), dtype = "float64" })
        local ga, gb = step(a, x, labels(n, 3), need), step(b, x, labels(n, 3), need)
        if need then same(ga, gb) else assert.is_nil(ga); assert.is_nil(gb) end
        same_grads(a, b)
      end
    end)
  end

  it("a nested Sequential used on its own keeps its own pool", function()
    local a = nested(3)
    local block = a:get(2).body -- a Sequential inside a Residual
    local x = collapse.randn({ 4, 8 }, { rng = collapse.rng(1), dtype = "float64" })
    local gy = collapse.randn({ 4, 8 }, { rng = collapse.rng(2), dtype = "float64" })
    block:forward(x)
    local g1 = block:backward(x, gy, true):clone()
    local ref = unshared(nested(3)):get(2).body
    ref:forward(x)
    same(g1, ref:backward(x, gy, true))
    assert.is_true(block:grad_buffer_stats().buffers >= 2)
  end)

  it("a failed backward leaves the model usable, with the same gradients as before", function()
    local a, b = nested(4), unshared(nested(4))
    local x = collapse.randn({ 5, 8 }, { rng = collapse.rng(3), dtype = "float64" })
    a:forward(x)
    expect_error("Sequential: module 5", function() a:backward(x, collapse.zeros({ 5, 4 }, "float64"), true) end)
    same(step(a, x, labels(5, 3), true), step(b, x, labels(5, 3), true))
    same_grads(a, b)
  end)

  it("share_grads must be a boolean", function()
    expect_error("Sequential: share_grads must be a boolean, got 1", function() nn.Sequential({ nn.ReLU() }, { share_grads = 1 }) end)
    expect_error("Sequential: unknown option 'share'", function() nn.Sequential({ nn.ReLU() }, { share = true }) end)
  end)
end)
