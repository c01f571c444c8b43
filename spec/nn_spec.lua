-- collapse.nn modules against PyTorch 1.13 (spec/fixtures/torch, made by make_torch_fixtures.py),
-- module semantics and error messages.
local collapse = require("collapse")
local fixture = require("support.fixture")
local nn = collapse.nn

local expect_error = require("support.expect").error

-- The fixture network Linear(5,7)-BatchNorm1d(7)-ReLU-Linear(7,4) with PyTorch's initial values.
local function fixture_model(fx)
  local model = nn.Sequential{ nn.Linear(5, 7, { dtype = "float64" }), nn.BatchNorm(7, { dtype = "float64" }),
    nn.ReLU(), nn.Linear(7, 4, { dtype = "float64" }) }
  local T = fixture.tensor
  model:get(1).weight:copy(T(fx.W1, { 7, 5 }))
  model:get(1).bias:copy(T(fx.b1, { 7 }))
  model:get(2).weight:copy(T(fx.gamma, { 7 }))
  model:get(2).bias:copy(T(fx.beta, { 7 }))
  model:get(2).running_mean:copy(T(fx.running_mean0, { 7 }))
  model:get(2).running_var:copy(T(fx.running_var0, { 7 }))
  model:get(4).weight:copy(T(fx.W2, { 4, 7 }))
  model:get(4).bias:copy(T(fx.b2, { 4 }))
  return model
end

describe("nn against PyTorch (float64, 1e-10)", function()
  local fx = fixture.read("torch/nn_mlp.txt")
  local x = fixture.tensor(fx.x, { 8, 5 })
  local labels = collapse.tensor(fx.labels, "int32")

  for _, mode in ipairs({ "train", "eval" }) do
    it(mode .. " mode: logits, loss, every gradient and the running statistics", function()
      local model = fixture_model(fx)
      local crit = nn.CrossEntropyLoss()
      if mode == "eval" then
        model:forward(x) -- one train-mode pass updates the running stats, as in the fixture script
        model:evaluate()
      end
      model:zero_grad()
      local logits = model:forward(x)
      local loss = crit:forward(logits, labels)
      local gx = model:backward(x, crit:backward(logits, labels), true)
      local p = fx
      local k = mode .. "."
      assert.is_true(fixture.max_err(model:get(1).output, p[k .. "h1"]) < 1e-10)
      assert.is_true(fixture.max_err(logits, p[k .. "logits"]) < 1e-10)
      assert.is_true(math.abs(loss - p[k .. "loss"][1]) < 1e-10)
      assert.is_true(fixture.max_err(gx, p[k .. "gx"]) < 1e-10)
      assert.is_true(fixture.max_err(model:get(1).weight_grad, p[k .. "gW1"]) < 1e-10)
      assert.is_true(fixture.max_err(model:get(1).bias_grad, p[k .. "gb1"]) < 1e-10)
      assert.is_true(fixture.max_err(model:get(2).weight_grad, p[k .. "ggamma"]) < 1e-10)
      assert.is_true(fixture.max_err(model:get(2).bias_grad, p[k .. "gbeta"]) < 1e-10)
      assert.is_true(fixture.max_err(model:get(4).weight_grad, p[k .. "gW2"]) < 1e-10)
      assert.is_true(fixture.max_err(model:get(4).bias_grad, p[k .. "gb2"]) < 1e-10)
      assert.is_true(fixture.max_err(model:get(2).running_mean, p.running_mean1) < 1e-10)
      assert.is_true(fixture.max_err(model:get(2).running_var, p.running_var1) < 1e-10)
    end)
  end
end)

describe("nn modules", function()
  it("parameters list modules in order, weight before bias, with gradients", function()
    local model = nn.Sequential{ nn.Linear(3, 4), nn.BatchNorm(4), nn.ReLU(), nn.Linear(4, 2, { bias = false }) }
    local names = {}
    for i, p in ipairs(model:parameters()) do
      names[i] = p.name
      assert.same(p.value:shape(), p.grad:shape())
      assert.is_true(p.decay)
    end
    assert.same({ "1.weight", "1.bias", "2.weight", "2.bias", "4.weight" }, names)
    assert.equal(3 * 4 + 4 + 4 + 4 + 4 * 2, model:num_parameters())
  end)

  it("features() is the input of the final Linear and classifier() is that Linear", function()
    local model = nn.Sequential{ nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2) }
    local x = collapse.randn({ 6, 3 }, { rng = collapse.rng(1) })
    local out = model:forward(x)
    local f = model:features(x)
    assert.same({ 6, 5 }, f:shape())
    local again = model:classifier():forward(f)
    assert.same(out:totable(), again:totable())
    expect_error("not an nn.Linear", function() return nn.Sequential{ nn.Linear(2, 2), nn.ReLU() }:classifier() end)
  end)

  it("state() and load_state() round-trip through a checkpoint file", function()
    local a = nn.Sequential{ nn.Linear(3, 4, { rng = collapse.rng(1) }), nn.BatchNorm(4), nn.Linear(4, 2) }
    local b = nn.Sequential{ nn.Linear(3, 4, { rng = collapse.rng(2) }), nn.BatchNorm(4), nn.Linear(4, 2) }
    a:forward(collapse.randn({ 8, 3 }, { rng = collapse.rng(3) })) -- moves running stats
    local path = os.tmpname()
    collapse.save(path, a:state())
    b:load_state(collapse.load(path))
    os.remove(path)
    local x = collapse.randn({ 5, 3 }, { rng = collapse.rng(4) })
    a:evaluate(); b:evaluate()
    assert.same(a:forward(x):totable(), b:forward(x):totable())
    expect_error("load_state: missing entry '1.weight'", function() b:load_state({}) end)
  end)

  it("BatchNorm evaluate mode uses running statistics; training needs 2 samples", function()
    local bn = nn.BatchNorm(2, { dtype = "float64" })
    bn.running_mean:copy(collapse.tensor({ 1, 2 }, "float64"))
    bn.running_var:copy(collapse.tensor({ 4, 9 }, "float64"))
    bn:evaluate()
    local y = bn:forward(collapse.tensor({ { 3, 5 } }, "float64"))
    assert.is_true(math.abs(y:get(1, 1) - 2 / math.sqrt(4 + 1e-5)) < 1e-12)
    assert.is_true(math.abs(y:get(1, 2) - 3 / math.sqrt(9 + 1e-5)) < 1e-12)
    bn:train()
    expect_error("training needs a batch of at least 2 samples, got 1", bn.forward, bn,
      collapse.tensor({ { 3, 5 } }, "float64"))
  end)

  it("errors name the module, the shapes and the dtypes", function()
    local model = nn.Sequential{ nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2) }
    expect_error("Sequential: module 1 (nn.Linear(3 -> 4)) failed in forward: ", model.forward, model,
      collapse.zeros({ 2, 5 }))
    expect_error("size mismatch, input [2 x 5], expected [n x 3]", model.forward, model, collapse.zeros({ 2, 5 }))
    expect_error("linear_forward: input is float64, expected float32", model.forward, model,
      collapse.zeros({ 2, 3 }, "float64"))
    expect_error("Linear: in_features must be a positive integer, got 0", nn.Linear, 0, 3)
    expect_error("Linear: unknown option 'bais'", nn.Linear, 2, 3, { bais = false })
    expect_error("BatchNorm: eps must be > 0", nn.BatchNorm, 3, { eps = 0 })
    local crit = nn.CrossEntropyLoss()
    expect_error("label 5 at index 2 is outside 1..2", crit.forward, crit, collapse.zeros({ 2, 2 }), { 1, 5 })
    expect_error("label 0 at index 1 is outside 1..2", crit.forward, crit, collapse.zeros({ 2, 2 }), { 0, 1 })
  end)

  it("buffers are reused across steps of the same batch size", function()
    local lin = nn.Linear(4, 3)
    local x = collapse.zeros({ 5, 4 })
    local y1 = lin:forward(x)
    local y2 = lin:forward(x)
    assert.equal(y1, y2)
  end)

  it("converts to float64 with :to()", function()
    local model = nn.Sequential{ nn.Linear(3, 4), nn.BatchNorm(4), nn.Linear(4, 2) }:to("float64")
    assert.equal("float64", model:get(1).weight:dtype())
    assert.equal("float64", model:get(2).running_var:dtype())
    assert.same({ 2, 2 }, model:forward(collapse.zeros({ 2, 3 }, "float64")):shape())
  end)

  it("module defects of the reliability review are errors naming the function and argument", function()
    for _, name in ipairs({ "Tanh", "ReLU" }) do
      local m = nn[name]()
      expect_error(name .. ".backward: call forward first", m.backward, m, collapse.zeros({ 2 }), collapse.zeros({ 2 }))
    end
    local bn = nn.BatchNorm(3)
    expect_error("BatchNorm.backward: call forward first", bn.backward, bn, collapse.zeros({ 2, 3 }),
      collapse.zeros({ 2, 3 }))
    local lin = nn.Linear(3, 4)
    -- a transposed weight has the right element count but the wrong shape
    expect_error("load_state: entry 'weight' has shape [3 x 4], expected [4 x 3]", lin.load_state, lin,
      { weight = collapse.zeros({ 3, 4 }), bias = collapse.zeros({ 4 }) })
    expect_error("Linear.to: dtype must be 'float32' or 'float64', got 'int32'", lin.to, lin, "int32")
    local crit = nn.CrossEntropyLoss()
    expect_error("CrossEntropyLoss.forward: label 1.5 at index 1 is not an integer", crit.forward, crit,
      collapse.zeros({ 2, 2 }), { 1.5, 1 })
    expect_error("Flatten.forward: input must be a tensor, got number", nn.Flatten().forward, nn.Flatten(), 3)
    local x = collapse.zeros({ 2, 3 })
    x:close()
    expect_error("linear_forward: input is a closed tensor", lin.forward, lin, x)
    expect_error("linear_forward: input must be a tensor, got number", lin.forward, lin, 3)
  end)

  it("errors blame the caller's line, not the library", function()
    local lin = nn.Linear(3, 4)
    local ok, err = pcall(function() return lin:forward(collapse.zeros({ 2, 5 })) end)
    assert.is_false(ok)
    assert.matches("^spec/nn_spec%.lua:%d+: linear_forward: size mismatch, input %[2 x 5%], expected %[n x 3%] "
      .. "%(weight is %[4 x 3%]%)", err)
    ok, err = pcall(function() return nn.Linear(0, 3) end)
    assert.matches("^spec/nn_spec%.lua:%d+: Linear: in_features", err)
    -- inside a Sequential: the user's line first, the failing module, then the original traceback
    local model = nn.Sequential{ nn.Linear(3, 4), nn.Tanh() }
    ok, err = pcall(function() return model:forward(collapse.zeros({ 2, 5 })) end)
    assert.matches("^spec/nn_spec%.lua:%d+: Sequential: module 1 %(nn%.Linear%(3 %-> 4%)%) failed in forward: "
      .. "linear_forward", err)
    assert.matches("stack traceback:.*Linear%.lua", err)
  end)

  it("class tables are constructors; the _class names are aliases; a first module skips its input gradient", function()
    assert.equal(nn.Linear, nn.Linear_class)
    assert.equal(nn.BatchNorm, nn.BatchNorm_class)
    local lin = nn.Linear(3, 4)
    assert.equal(nn.Linear, getmetatable(lin))
    local model = nn.Sequential{ lin, nn.ReLU() }
    assert.equal(1, #model:find(nn.Linear))
    local x = collapse.randn({ 2, 3 }, { rng = collapse.rng(1) })
    model:forward(x)
    assert.is_nil(model:backward(x, collapse.zeros({ 2, 4 }))) -- default: no model input gradient
    assert.is_nil(lin.grad_input)
    assert.same({ 2, 3 }, model:backward(x, collapse.zeros({ 2, 4 }), true):shape())
  end)

  it("outputs are made once and resized in C for another batch size", function()
    local lin = nn.Linear(4, 3)
    local y1 = lin:forward(collapse.zeros({ 5, 4 }))
    local y2 = lin:forward(collapse.zeros({ 2, 4 }))
    assert.equal(y1, y2)
    assert.same({ 2, 3 }, y2:shape())
    local relu = nn.ReLU()
    local r1 = relu:forward(collapse.zeros({ 2, 2 }))
    local r2 = relu:forward(collapse.zeros({ 3 }, "float64")) -- another dtype: a new output
    assert.are_not.equal(r1, r2)
    assert.equal("float64", r2:dtype())
  end)
end)
