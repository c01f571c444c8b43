-- The convolutional modules (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d) against PyTorch 1.13
-- (spec/fixtures/torch_conv, made by make_conv_fixtures.py), module semantics and error messages.
local collapse = require("collapse")
local fixture = require("support.fixture")
local nn = collapse.nn

local expect_error = require("support.expect").error

local T = fixture.tensor

-- The fixture network with PyTorch's initial values (spec/support/conv_fixture.lua); it keeps every
-- inner grad_input, which this spec compares (docs/nn-buffers.md).
local conv_fixture = require("support.conv_fixture")
local function fixture_model(fx) return conv_fixture(fx, { share_grads = false }) end

local function close(t, ref, tol)
  local e = fixture.max_err(t, ref)
  assert.is_true(e <= (tol or 1e-10), ("error %.3g"):format(e))
end

describe("conv modules against PyTorch (float64, 1e-10)", function()
  local fx = fixture.read("torch_conv/conv_net.txt")
  local x = T(fx.x, { 2, 3, 7, 6 })
  local labels = collapse.tensor(fx.labels, "int32")

  for _, mode in ipairs({ "train", "eval" }) do
    it(mode .. " mode: every output, the loss, every gradient, max-pool indices and running stats", function()
      local model = fixture_model(fx)
      local crit = nn.CrossEntropyLoss()
      if mode == "eval" then
        model:forward(x) -- one train-mode pass moves the running stats, as in the fixture script
        model:evaluate()
      end
      model:zero_grad()
      local logits = model:forward(x)
      local loss = crit:forward(logits, labels)
      local gx = model:backward(x, crit:backward(logits, labels), true)
      local k = mode .. "."
      close(model:get(1).output, fx[k .. "conv_out"])
      -- in training BatchNorm2d + ReLU run fused in one buffer: no separate BatchNorm output
      if mode == "eval" then close(model:get(2).output, fx[k .. "bn_out"]) else assert.is_nil(model:get(2).output) end
      close(model:get(3).output, fx[k .. "relu_out"])
      close(model:get(4).output, fx[k .. "maxpool_out"])
      close(model:get(4).indices, fx[k .. "maxpool_indices"], 0)
      close(model:get(5).output, fx[k .. "avgpool_out"])
      close(logits, fx[k .. "logits"])
      assert.is_true(math.abs(loss - fx[k .. "loss"][1]) < 1e-10)
      close(gx, fx[k .. "gx"])
      close(model:get(2).grad_input, fx[k .. "g_conv_out"])
      close(model:get(4).grad_input, fx[k .. "g_relu"]) -- ties routed to the first maximum
      close(model:get(1).weight_grad, fx[k .. "g_conv_weight"])
      close(model:get(1).bias_grad, fx[k .. "g_conv_bias"])
      close(model:get(2).weight_grad, fx[k .. "g_gamma"])
      close(model:get(2).bias_grad, fx[k .. "g_beta"])
      close(model:get(7).weight_grad, fx[k .. "g_lin_weight"])
      close(model:get(7).bias_grad, fx[k .. "g_lin_bias"])
      close(model:get(2).running_mean, fx.running_mean1)
      close(model:get(2).running_var, fx.running_var1)
    end)
  end

  it("float32 agrees with the float64 reference to float32 accuracy", function()
    local model = fixture_model(fx):to("float32")
    local crit = nn.CrossEntropyLoss()
    local x32 = x:to("float32")
    local logits = model:forward(x32)
    crit:forward(logits, labels)
    local gx = model:backward(x32, crit:backward(logits, labels), true)
    close(logits, fx["train.logits"], 1e-5)
    close(gx, fx["train.gx"], 1e-5)
    close(model:get(1).weight_grad, fx["train.g_conv_weight"], 1e-5)
  end)

  local lx = fixture.read("torch_conv/layers.txt")
  local function shape(name) return lx[name] end

  it("single layers: strided padded conv without bias and the direct 1x1 conv", function()
    for _, case in ipairs({ "conv_a", "conv_b" }) do
      local c = lx[case .. ".config"] -- cin cout kh kw stride padding bias
      local conv = nn.Conv2d(c[1], c[2], c[3], { stride = c[5], padding = c[6], bias = c[7] == 1, dtype = "float64" })
      conv.weight:copy(T(lx[case .. ".weight"], conv.weight:shape()))
      if conv.bias then conv.bias:copy(T(lx[case .. ".bias"], { c[2] })) end
      local xx = T(lx[case .. ".x"], shape(case .. ".x_shape"))
      local y = conv:forward(xx)
      assert.same(shape(case .. ".y_shape"), y:shape())
      close(y, lx[case .. ".y"])
      close(conv:backward(xx, T(lx[case .. ".r"], y:shape())), lx[case .. ".gx"])
      close(conv.weight_grad, lx[case .. ".g_weight"])
      if conv.bias then close(conv.bias_grad, lx[case .. ".g_bias"]) end
    end
  end)

  it("single layers: a rectangular kernel through the core binding", function()
    local c = lx["conv_c.config"]
    local core = collapse.core
    local w = T(lx["conv_c.weight"], { c[2], c[1], c[3], c[4] })
    local xx = T(lx["conv_c.x"], shape("conv_c.x_shape"))
    -- outputs and the columns scratch start empty: the kernel resizes them
    local y, col = core.conv2d_forward(xx, nil, w, T(lx["conv_c.bias"], { c[2] }), nil, c[5], c[6])
    assert.same(shape("conv_c.y_shape"), y:shape())
    close(y, lx["conv_c.y"])
    local gw, gb = collapse.zeros(w:shape(), "float64"), collapse.zeros({ c[2] }, "float64")
    local gx = core.conv2d_backward(xx, T(lx["conv_c.r"], y:shape()), false, w, gw, gb, col, c[5], c[6])
    close(gx, lx["conv_c.gx"])
    close(gw, lx["conv_c.g_weight"])
    close(gb, lx["conv_c.g_bias"])
  end)

  it("single layers: max pool on ties, avg pool with floor-mode leftovers", function()
    local c = lx["maxpool.config"]
    local mp = nn.MaxPool2d(c[1], c[2])
    local xx = T(lx["maxpool.x"], shape("maxpool.x_shape"))
    local y = mp:forward(xx)
    assert.same(shape("maxpool.y_shape"), y:shape())
    close(y, lx["maxpool.y"])
    close(mp.indices, lx["maxpool.indices"], 0)
    close(mp:backward(xx, T(lx["maxpool.r"], y:shape())), lx["maxpool.gx"])
    c = lx["avgpool.config"]
    local ap = nn.AvgPool2d(c[1], c[2])
    xx = T(lx["avgpool.x"], shape("avgpool.x_shape"))
    y = ap:forward(xx)
    assert.same(shape("avgpool.y_shape"), y:shape())
    close(y, lx["avgpool.y"])
    close(ap:backward(xx, T(lx["avgpool.r"], y:shape())), lx["avgpool.gx"])
  end)

  it("single layers: BatchNorm2d with two values per channel", function()
    local c = lx["bn2d.config"]
    local bn = nn.BatchNorm2d(3, { eps = c[1], momentum = c[2], dtype = "float64" })
    bn.weight:copy(T(lx["bn2d.gamma"], { 3 }))
    bn.bias:copy(T(lx["bn2d.beta"], { 3 }))
    bn.running_mean:copy(T(lx["bn2d.running_mean0"], { 3 }))
    bn.running_var:copy(T(lx["bn2d.running_var0"], { 3 }))
    local xx = T(lx["bn2d.x"], shape("bn2d.x_shape"))
    close(bn:forward(xx), lx["bn2d.y"])
    close(bn:backward(xx, T(lx["bn2d.r"], xx:shape())), lx["bn2d.gx"])
    close(bn.weight_grad, lx["bn2d.g_gamma"])
    close(bn.bias_grad, lx["bn2d.g_beta"])
    close(bn.running_mean, lx["bn2d.running_mean1"])
    close(bn.running_var, lx["bn2d.running_var1"])
  end)
end)

describe("conv modules", function()
  local function small_cnn(opts)
    return nn.Sequential{ nn.Conv2d(3, 4, 3, { padding = 1, rng = collapse.rng(1), dtype = opts and opts.dtype }),
      nn.BatchNorm2d(4, opts), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 2, 1, { bias = false, dtype = opts and opts.dtype }),
      nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2, 3, opts) }
  end

  it("parameters: modules in order, weight before bias, decay on, gradients of the same shape", function()
    local model = small_cnn()
    local names = {}
    for i, p in ipairs(model:parameters()) do
      names[i] = p.name
      assert.same(p.value:shape(), p.grad:shape())
      assert.is_true(p.decay)
    end
    assert.same({ "1.weight", "1.bias", "2.weight", "2.bias", "5.weight", "8.weight", "8.bias" }, names)
    assert.same({ 4, 3, 3, 3 }, model:get(1).weight:shape())
    assert.equal(4 * 3 * 9 + 4 + 4 + 4 + 2 * 4 + 2 * 3 + 3, model:num_parameters())
    local bnames = {}
    for i, b in ipairs(model:buffers()) do bnames[i] = b.name end
    assert.same({ "2.running_mean", "2.running_var" }, bnames)
    assert.same({}, nn.MaxPool2d(2):parameters())
    assert.same({}, nn.BatchNorm2d(3, { affine = false }):parameters())
    assert.equal(1, #model:find(nn.BatchNorm2d_class))
    assert.equal(2, #model:find(nn.Conv2d_class))
  end)

  it("PyTorch's default initialisation bound 1/sqrt(fan_in) and rng reproducibility", function()
    local a = nn.Conv2d(3, 8, 3, { rng = collapse.rng(7) })
    local b = nn.Conv2d(3, 8, 3, { rng = collapse.rng(7) })
    assert.same(a.weight:totable(), b.weight:totable())
    local bound = 1 / math.sqrt(3 * 9)
    local w = a.weight:reshape({ -1 }):totable()
    local lo, hi = math.huge, -math.huge
    for _, v in ipairs(w) do lo, hi = math.min(lo, v), math.max(hi, v) end
    assert.is_true(lo >= -bound and hi <= bound and hi - lo > bound) -- spread over the interval
    assert.is_true(a.bias:max() <= bound)
  end)

  it("describe() names the configuration", function()
    assert.equal("nn.Conv2d(3 -> 4, 3x3, stride=2, padding=1)", nn.Conv2d(3, 4, 3, { stride = 2, padding = 1 }):describe())
    assert.equal("nn.Conv2d(3 -> 4, 1x1, stride=1, padding=0, no bias)", tostring(nn.Conv2d(3, 4, 1, { bias = false })))
    assert.equal("nn.BatchNorm2d(4, eps=1e-05, momentum=0.1)", nn.BatchNorm2d(4):describe())
    assert.equal("nn.BatchNorm2d(4, eps=0.001, momentum=0.2, affine=false)",
      nn.BatchNorm2d(4, { eps = 1e-3, momentum = 0.2, affine = false }):describe())
    assert.equal("nn.MaxPool2d(2, stride=2)", nn.MaxPool2d(2):describe())
    assert.equal("nn.AvgPool2d(3, stride=1)", nn.AvgPool2d(3, 1):describe())
    assert.matches("(1) nn.Conv2d(3 -> 4, 3x3", tostring(small_cnn()), 1, true)
  end)

  it("forward shapes follow PyTorch's floor rule; buffers are reused across steps", function()
    local model = small_cnn()
    local x = collapse.randn({ 2, 3, 5, 4 }, { rng = collapse.rng(2) })
    local y = model:forward(x)
    assert.same({ 2, 3 }, y:shape())
    assert.same({ 2, 4, 5, 4 }, model:get(1).output:shape())
    assert.same({ 2, 4, 2, 2 }, model:get(4).output:shape()) -- floor(5 / 2) = 2
    assert.same({ 2, 2, 1, 1 }, model:get(6).output:shape())
    assert.same({ 2, 4, 4, 3 }, nn.MaxPool2d(2):forward(collapse.zeros({ 2, 4, 9, 7 })):shape())
    assert.same({ 2, 4, 7, 5 }, nn.AvgPool2d(3, 1):forward(collapse.zeros({ 2, 4, 9, 7 })):shape())
    local conv = model:get(1)
    local out1, col1 = conv.output, conv.columns
    model:forward(x)
    assert.equal(out1, conv.output)
    assert.equal(col1, conv.columns)
    assert.is_nil(model:get(5).columns) -- 1x1, stride 1, no padding: no im2col
    assert.same({ 2, 4, 3, 3 }, nn.Conv2d(4, 4, 3, { stride = 2 }):forward(collapse.zeros({ 2, 4, 8, 7 })):shape())
  end)

  it("backward accumulates parameter gradients; need_input_grad = false skips grad_input", function()
    local conv = nn.Conv2d(2, 3, 3, { stride = 2, padding = 1, dtype = "float64", rng = collapse.rng(3) })
    local x = collapse.randn({ 2, 2, 5, 6 }, { dtype = "float64", rng = collapse.rng(4) })
    local y = conv:forward(x)
    local gy = collapse.randn(y:shape(), { dtype = "float64", rng = collapse.rng(5) })
    local gx = conv:backward(x, gy)
    assert.same(x:shape(), gx:shape())
    local g1 = conv.weight_grad:clone()
    local b1 = conv.bias_grad:clone()
    local conv2 = nn.Conv2d(2, 3, 3, { stride = 2, padding = 1, dtype = "float64", rng = collapse.rng(3) })
    assert.is_nil(conv2:backward(x, gy, false))
    conv2:backward(x, gy, false)
    assert.is_true(fixture.max_err(conv2.weight_grad, (g1 * 2):reshape({ -1 }):totable()) < 1e-12)
    assert.is_true(fixture.max_err(conv2.bias_grad, (b1 * 2):totable()) < 1e-12)
    conv2:zero_grad()
    assert.equal(0, conv2.weight_grad:norm())
    -- the gradient of sum(y * gy) w.r.t. one input entry, by central differences
    local h, i = 1e-6, { 2, 1, 3, 4 }
    local function f(v)
      local xx = x:clone()
      xx:set(i[1], i[2], i[3], i[4], v)
      return conv:forward(xx):dot(gy)
    end
    local v = x:get(i[1], i[2], i[3], i[4])
    assert.is_true(math.abs((f(v + h) - f(v - h)) / (2 * h) - gx:get(i[1], i[2], i[3], i[4])) < 1e-8)
  end)

  it("BatchNorm2d: train normalises per channel, evaluate uses the running statistics", function()
    local bn = nn.BatchNorm2d(2, { dtype = "float64", momentum = 0.5 })
    -- channel 1 holds 1..4, channel 2 holds 10, 20, 30, 40 (over N = 2 samples of 1 x 2 planes)
    local x = collapse.tensor({ { { { 1, 2 } }, { { 10, 20 } } }, { { { 3, 4 } }, { { 30, 40 } } } }, "float64")
    assert.same({ 2, 2, 1, 2 }, x:shape())
    local y = bn:forward(x)
    local inv = 1 / math.sqrt(1.25 + 1e-5)
    assert.is_true(math.abs(y:get(1, 1, 1, 1) - (1 - 2.5) * inv) < 1e-12)
    assert.is_true(math.abs(y:get(2, 2, 1, 2) - (40 - 25) / math.sqrt(125 + 1e-5)) < 1e-12)
    assert.is_true(math.abs(bn.running_mean:get(1) - 1.25) < 1e-12)               -- 0.5 * 0 + 0.5 * 2.5
    assert.is_true(math.abs(bn.running_var:get(2) - (0.5 + 0.5 * 500 / 3)) < 1e-12) -- unbiased: 500 / 3
    assert.equal(1, bn.num_batches_tracked)
    bn:evaluate()
    local one = collapse.tensor({ { { { 5 } }, { { 7 } } } }, "float64")
    local ye = bn:forward(one)
    assert.is_true(math.abs(ye:get(1, 1, 1, 1) - (5 - 1.25) / math.sqrt(bn.running_var:get(1) + 1e-5)) < 1e-12)
    assert.equal(1, bn.num_batches_tracked)
    bn:train()
    expect_error("batchnorm2d: training needs at least 2 values per channel (N H W), got input [1 x 2 x 1 x 1]",
      bn.forward, bn, one)
  end)

  it("state() and load_state() round-trip through a checkpoint file", function()
    local a, b = small_cnn(), nn.Sequential{ nn.Conv2d(3, 4, 3, { padding = 1, rng = collapse.rng(9) }),
      nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 2, 1, { bias = false, rng = collapse.rng(8) }),
      nn.AvgPool2d(2), nn.Flatten(), nn.Linear(2, 3, { rng = collapse.rng(7) }) }
    a:forward(collapse.randn({ 4, 3, 5, 5 }, { rng = collapse.rng(3) })) -- moves the running stats
    local path = os.tmpname()
    collapse.save(path, a:state())
    b:load_state(collapse.load(path))
    os.remove(path)
    a:evaluate(); b:evaluate()
    local x = collapse.randn({ 2, 3, 4, 4 }, { rng = collapse.rng(4) })
    assert.same(a:forward(x):totable(), b:forward(x):totable())
    assert.same(a:get(2).running_var:totable(), b:get(2).running_var:totable())
    expect_error("load_state: missing entry '1.weight'", function() b:load_state({}) end)
  end)

  it("MaxPool2d backward recomputes its indices for a different input", function()
    local mp = nn.MaxPool2d(2)
    local x1 = collapse.tensor({ { { { 1, 0 }, { 0, 0 } } } }, "float64")
    local x2 = collapse.tensor({ { { { 0, 0 }, { 0, 1 } } } }, "float64")
    mp:forward(x1)
    local g = mp:backward(x2, collapse.tensor({ { { { 5 } } } }, "float64"))
    assert.same({ 0, 0, 0, 5 }, g:reshape({ -1 }):totable())
  end)

  it("errors name the module, the shapes and the dtypes", function()
    local conv = nn.Conv2d(3, 4, 3)
    -- the C kernels check what they rely on, naming themselves and the argument
    expect_error("conv2d_output_shape: input has 2 channels, weight expects 3", conv.forward, conv,
      collapse.zeros({ 2, 2, 5, 5 }))
    expect_error("conv2d_forward: size mismatch, input [2 x 3], expected [n x * x * x *]", conv.forward, conv,
      collapse.zeros({ 2, 3 }))
    expect_error("conv2d_forward: input is float64, expected float32", conv.forward, conv,
      collapse.zeros({ 1, 3, 5, 5 }, "float64"))
    expect_error("conv2d_output_shape: kernel 3 x 3 is larger than the padded input 2 x 5", conv.forward, conv,
      collapse.zeros({ 1, 3, 2, 5 }))
    expect_error("conv2d_forward: input must be a tensor, got table", conv.forward, conv, {})
    expect_error("Conv2d: kernel_size must be a positive integer, got 0", nn.Conv2d, 3, 4, 0)
    expect_error("Conv2d: stride must be a positive integer, got 0", nn.Conv2d, 3, 4, 3, { stride = 0 })
    expect_error("Conv2d: padding must be an integer >= 0, got -1", nn.Conv2d, 3, 4, 3, { padding = -1 })
    expect_error("Conv2d: unknown option 'pading'", nn.Conv2d, 3, 4, 3, { pading = 1 })
    expect_error("BatchNorm2d: eps must be > 0", nn.BatchNorm2d, 3, { eps = 0 })
    expect_error("BatchNorm2d: momentum must be in [0, 1], got 2", nn.BatchNorm2d, 3, { momentum = 2 })
    local bn = nn.BatchNorm2d(3)
    expect_error("batchnorm2d_forward: size mismatch, weight [3], expected [4]", bn.forward, bn,
      collapse.zeros({ 2, 4, 1, 1 }))
    expect_error("MaxPool2d: kernel_size must be a positive integer, got 1.5", nn.MaxPool2d, 1.5)
    expect_error("AvgPool2d: stride must be a positive integer, got 0", nn.AvgPool2d, 2, 0)
    local mp = nn.MaxPool2d(3)
    expect_error("pool2d_output_shape: kernel 3 x 3 is larger than the input planes 2 x 5",
      mp.forward, mp, collapse.zeros({ 1, 1, 2, 5 }))
    expect_error("maxpool2d_forward: input must be float32 or float64, got int32", mp.forward, mp,
      collapse.zeros({ 1, 1, 3, 3 }, "int32"))
    local model = nn.Sequential{ nn.Conv2d(3, 4, 3), nn.ReLU() }
    expect_error("Sequential: module 1 (nn.Conv2d(3 -> 4, 3x3, stride=1, padding=0)) failed in forward: ",
      model.forward, model, collapse.zeros({ 1, 2, 4, 4 }))
    -- the kernels called directly (the core binding): outputs are resized, inputs checked
    local core = collapse.core
    local x, w = collapse.zeros({ 2, 3, 7, 6 }), collapse.zeros({ 4, 4, 3, 3 })
    expect_error("conv2d_output_shape: input has 3 channels, weight expects 4", core.conv2d_forward, x, nil, w, nil,
      nil, 1, 0)
    w = collapse.zeros({ 4, 3, 3, 3 })
    local y, col = core.conv2d_forward(x, collapse.zeros({ 10 }), w, nil, collapse.zeros({ 5 }), 2, 1)
    assert.same({ 2, 4, 4, 3 }, y:shape())
    assert.same({ 27 * 12 }, col:shape())
    expect_error("conv2d_output_shape: stride must be positive, got 0", core.conv2d_forward, x, y, w, nil, col, 0, 1)
    expect_error("conv2d_forward: output: tensor_resize: cannot resize a view", core.conv2d_forward, x,
      collapse.zeros({ 100 }):narrow(1, 1, 10), w, nil, col, 2, 1)
    expect_error("maxpool2d_backward: indices is float32, expected int32", core.maxpool2d_backward,
      collapse.zeros({ 2, 3, 7, 6 }), collapse.zeros({ 2, 3, 3, 3 }), nil, collapse.zeros({ 2, 3, 3, 3 }), 2, 2)
    local bad = core.zeros({ 2, 3, 3, 3 }, "int32")
    bad:fill(99)
    expect_error("maxpool2d_backward: index 99 at position 0 is outside the 7 x 6 input plane (0..41)",
      core.maxpool2d_backward, collapse.zeros({ 2, 3, 7, 6 }), collapse.zeros({ 2, 3, 3, 3 }), nil, bad, 2, 2)
  end)

  it("converts to float64 with :to() and trains a few SGD steps on a toy problem", function()
    local model = small_cnn():to("float64")
    assert.equal("float64", model:get(1).weight:dtype())
    assert.equal("float64", model:get(2).running_var:dtype())
    local x = collapse.randn({ 6, 3, 6, 6 }, { dtype = "float64", rng = collapse.rng(11) })
    local labels = collapse.tensor({ 1, 2, 3, 1, 2, 3 }, "int32")
    local crit = nn.CrossEntropyLoss()
    local opt = collapse.optim.SGD(model:parameters(), { lr = 0.1, momentum = 0.9 })
    local first, last
    for step = 1, 30 do
      model:zero_grad()
      local logits = model:forward(x)
      local loss = crit:forward(logits, labels)
      model:backward(x, crit:backward(logits, labels))
      opt:step()
      if step == 1 then first = loss end
      last = loss
    end
    assert.is_true(last < first, ("loss %g -> %g"):format(first, last))
  end)
end)
