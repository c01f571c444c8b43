-- models.vgg and models.resnet18 against the PyTorch 1.13 fixtures of issue 9
-- (spec/fixtures/torch_cnn, made by spec/fixtures/make_cnn_fixtures.py, float64): the fixture's
-- weights loaded by name with load_state, then the train-mode logits, loss, every parameter
-- gradient and the BN running statistics after one forward, and the eval-mode logits, to 1e-10
-- relative. Also the builders' layouts, sizes and option checks.
local collapse = require("collapse")
local fixture = require("support.fixture")
local expect = require("support.expect")
local nn, models = collapse.nn, collapse.models

local DIR = fixture.root .. "/spec/fixtures/torch_cnn/"

-- {kind =, name =} per line of the names file, in PyTorch's parameters() then buffers() order.
local function names(model)
  local out = {}
  for line in io.lines(DIR .. model .. ".names.txt") do
    local kind, name = line:match("^(%a+) (%S+)")
    if kind == "param" or kind == "buffer" then out[#out + 1] = { kind = kind, name = name } end
  end
  return out
end

local function max_rel(a, b)
  local x, y = a:reshape({ -1 }):totable(), b:reshape({ -1 }):totable()
  assert.are.equal(#y, #x)
  local worst = 0
  for i = 1, #y do
    local e = math.abs(x[i] - y[i]) / math.max(1, math.abs(y[i]))
    if e > worst or e ~= e then worst = e end
  end
  return worst
end

-- PyTorch state_dict name -> this library's parameter / buffer name.
local VGG_LINEAR = 31 -- 29 feature layers (8 x conv, BN, ReLU + 5 pools), Flatten, Linear
local function vgg_name(name)
  local i, rest = name:match("^features%.(%d+)%.(.+)$")
  if i then return (tonumber(i) + 1) .. "." .. rest end
  return VGG_LINEAR .. "." .. name:match("^classifier%.0%.(.+)$")
end

local BLOCK = { conv1 = "body.1", bn1 = "body.2", conv2 = "body.4", bn2 = "body.5", ["shortcut.0"] = "shortcut.1",
  ["shortcut.1"] = "shortcut.2" }
local function resnet_name(name)
  local top = { conv1 = 1, bn1 = 2, last_bn = 13, fc = 14 }
  local head, rest = name:match("^([%w_]+)%.([%w_]+)$")
  if head and top[head] then return top[head] .. "." .. rest end
  local layer, block, part, field = name:match("^layer(%d)%.(%d)%.(.+)%.([%w_]+)$")
  local index = 3 + 2 * (tonumber(layer) - 1) + tonumber(block) + 1
  return ("%d.1.%s.%s"):format(index, assert(BLOCK[part], part), field)
end

local function by_name(list)
  local out = {}
  for _, e in ipairs(list) do out[e.name] = e end
  return out
end

local function check_against(file, model, map)
  local z = collapse.data.npz(DIR .. file .. ".npz")
  local list = names(file)
  -- the same parameters in the same order as PyTorch's model.parameters() (and buffers)
  local ours = {}
  for _, p in ipairs(model:parameters()) do ours[#ours + 1] = p.name end
  for _, b in ipairs(model:buffers()) do ours[#ours + 1] = b.name end
  local theirs = {}
  for _, e in ipairs(list) do theirs[#theirs + 1] = map(e.name) end
  assert.are.same(theirs, ours)
  local state = {}
  for _, e in ipairs(list) do state[map(e.name)] = z[(e.kind == "param" and "param." or "buffer0.") .. e.name] end
  model:load_state(state)
  model:train()
  model:zero_grad()
  local crit = nn.CrossEntropyLoss()
  local logits = model:forward(z.input)
  local loss = crit:forward(logits, z.labels)
  model:backward(z.input, crit:backward(logits, z.labels))
  assert.is_true(max_rel(logits, z.logits) < 1e-10)
  assert.is_true(math.abs(loss - z.loss:totable()[1]) < 1e-10)
  local params, buffers = by_name(model:parameters()), by_name(model:buffers())
  for _, e in ipairs(list) do
    if e.kind == "param" then
      local err = max_rel(params[map(e.name)].grad, z["grad." .. e.name])
      assert.is_true(err < 1e-10, e.name .. (" gradient error %.3g"):format(err))
    else
      local err = max_rel(buffers[map(e.name)].value, z["buffer1." .. e.name])
      assert.is_true(err < 1e-10, e.name .. (" running statistic error %.3g"):format(err))
    end
  end
  model:evaluate()
  assert.is_true(max_rel(model:forward(z.input), z.eval_logits) < 1e-10)
  -- features = the input of the final Linear, the classifier that Linear
  local feats = model:features(z.input)
  local W, b = model:classifier().weight, model:classifier().bias
  assert.is_true(max_rel(feats:matmul(W:t()) + b, z.eval_logits) < 1e-10)
end

describe("models.vgg against PyTorch (vgg11_w16 fixture, float64, 1e-10)", function()
  it("logits, loss, every gradient, running statistics, eval logits", function()
    local model = models.vgg{ depth = 11, width = 1 / 16, classes = 10, classifier = "cifar", dtype = "float64" }
    assert.are.equal(VGG_LINEAR, model:size())
    check_against("vgg11_w16", model, vgg_name)
  end)
end)

describe("models.resnet18 against PyTorch (resnet18_w4 fixture, float64, 1e-10)", function()
  it("logits, loss, every gradient, running statistics, eval logits", function()
    local model = models.resnet18{ width = 4, classes = 10, dtype = "float64" }
    assert.are.equal(14, model:size())
    check_against("resnet18_w4", model, resnet_name)
  end)
end)

-- Parameter counts by closed form: conv c_in c_out 9 (+ c_out bias), BN 2 c, Linear in out + out.
local function vgg_count(cfg, width, bn, head, classes, side)
  local n, cin = 0, 3
  for _, c in ipairs(cfg) do
    if c ~= "M" then
      local cout = math.max(1, math.floor(c * width + 0.5))
      n = n + cin * cout * 9 + cout + (bn and 2 * cout or 0)
      cin = cout
    end
  end
  local d = cin * side * side
  if head == "torchvision" then
    local h = math.floor(4096 * width + 0.5)
    return n + d * h + h + h * h + h + h * classes + classes
  end
  return n + d * classes + classes
end

describe("model builders: layouts and sizes", function()
  local CFG19 = { 64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M" }
  it("vgg19, width 1/16, torchvision head with dropout and last BN", function()
    local m = models.vgg{ depth = 19, width = 1 / 16, classes = 7, last_bn = true, rng = collapse.rng(3) }
    assert.are.equal(vgg_count(CFG19, 1 / 16, true, "torchvision", 7, 1) + 2 * 256, m:num_parameters())
    local kinds = {}
    for i = m:size() - 8, m:size() do kinds[#kinds + 1] = getmetatable(m:get(i)).__name end
    assert.are.same({ "nn.Flatten", "nn.Linear", "nn.ReLU", "nn.Dropout", "nn.Linear", "nn.ReLU", "nn.Dropout",
      "nn.BatchNorm", "nn.Linear" }, kinds)
    assert.are.same({ 5, 7 }, m:forward(collapse.randn({ 5, 3, 32, 32 })):shape())
    assert.are.same({ 5, 256 }, m:features(collapse.randn({ 5, 3, 32, 32 })):shape())
  end)
  it("vgg11 without BN, 64 x 64 inputs (4 x 4 features flattened), one input channel, no dropout", function()
    local cfg = { 64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M" }
    local m = models.vgg{ depth = 11, width = 1 / 32, batchnorm = false, in_channels = 1, input_size = 64, dropout = 0,
      classes = 3 }
    assert.are.same({}, m:find(nn.Dropout))
    assert.are.same({}, m:find(nn.BatchNorm2d_class or nn.BatchNorm2d))
    local n = vgg_count(cfg, 1 / 32, false, "torchvision", 3, 2) - 2 * 2 * 9 -- one input channel, not 3
    assert.are.equal(n, m:num_parameters())
    assert.are.same({ 2, 3 }, m:forward(collapse.randn({ 2, 1, 64, 64 })):shape())
  end)
  it("vgg init: torchvision's conv N(0, 2 / fan_out) and Linear N(0, 0.01^2), zero biases", function()
    local m = models.vgg{ depth = 11, width = 1 / 4, classes = 10, classifier = "cifar", dtype = "float64" }
    local conv = m:get(1 + 3 + 1) -- the second conv: 16 -> 32 channels, fan_out 32 * 9
    local w = conv.weight
    local std = math.sqrt((w * w):mean())
    assert.is_true(math.abs(std / math.sqrt(2 / (32 * 9)) - 1) < 0.05)
    assert.are.equal(0, conv.bias:norm())
    local fc = m:classifier()
    assert.is_true(math.abs(math.sqrt((fc.weight * fc.weight):mean()) / 0.01 - 1) < 0.15)
  end)
  it("resnet18 width 64: the authors' 11,173,962 parameters plus 1,024 for the last BN", function()
    -- 11,173,962 is the CIFAR ResNet18 of 10 classes (torch's count for that architecture)
    local m = models.resnet18{ classes = 10, last_bn = false }
    assert.are.equal(11173962, m:num_parameters())
    assert.are.equal(11173962 + 1024, models.resnet18{ classes = 10 }:num_parameters())
  end)
  it("resnet18 on 28 x 28 single-channel inputs; the same seed gives the same weights", function()
    local a = models.resnet18{ classes = 10, width = 2, in_channels = 1, rng = collapse.rng(5) }
    local b = models.resnet18{ classes = 10, width = 2, in_channels = 1, rng = collapse.rng(5) }
    assert.are.same({ 3, 10 }, a:forward(collapse.randn({ 3, 1, 28, 28 })):shape())
    assert.are.same({ 3, 16 }, a:features(collapse.randn({ 3, 1, 28, 28 })):shape())
    for i, p in ipairs(a:parameters()) do assert.are.equal(0, (p.value - b:parameters()[i].value):norm()) end
  end)
  it("refuses bad options, naming the builder and the option", function()
    expect.error("models.vgg: depth must be 11, 13, 16 or 19, got 12", models.vgg, { depth = 12, classes = 2 })
    expect.error("models.vgg: classes must be a positive integer, got nil", models.vgg, {})
    expect.error("models.vgg: classifier must be 'torchvision' or 'cifar', got 'big'", models.vgg,
      { classes = 2, classifier = "big" })
    expect.error("models.vgg: width must be a positive number, got 0", models.vgg, { classes = 2, width = 0 })
    expect.error("models.vgg: dropout must be a number in [0, 1], got 2", models.vgg, { classes = 2, dropout = 2 })
    expect.error("models.vgg: input_size must be an integer >= 32, got 28", models.vgg, { classes = 2, input_size = 28 })
    expect.error("models.vgg: unknown option 'bn'", models.vgg, { classes = 2, bn = true })
    expect.error("models.vgg: last_bn must be a boolean, got 'yes'", models.vgg, { classes = 2, last_bn = "yes" })
    expect.error("models.resnet18: width must be a positive integer, got 1.5", models.resnet18, { classes = 2, width = 1.5 })
    expect.error("models.resnet18: dtype must be 'float32' or 'float64', got 'half'", models.resnet18,
      { classes = 2, dtype = "half" })
    expect.error("models.resnet18: rng must be a generator", models.resnet18, { classes = 2, rng = 3 })
  end)
end)
