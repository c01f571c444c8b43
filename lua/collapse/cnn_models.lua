--- The CNN builders of the paper's experiments (models.vgg, models.resnet18; collapse.models
-- re-exports them). Both return an nn.Sequential whose last module is the classifier Linear, so
-- model:features(x) (the classifier's input) and model:classifier() work, and whose top-level
-- modules are the layers nc.measure_layers looks at.
local collapse = require("collapse")
local checks = require("collapse.checks")
local nn = require("collapse.nn")

local cnn = {}

-- torchvision's vgg configurations (numbers: 3x3 conv output channels, "M": 2x2 max-pool)
local VGG_CFG = {
  [11] = { 64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M" },
  [13] = { 64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M" },
  [16] = { 64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M" },
  [19] = { 64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M" },
}

-- c * width rounded to the nearest integer (at least 1)
local function scaled(c, width) return math.max(1, math.floor(c * width + 0.5)) end

local function positive_number(fn, name, v)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
    checks.fail(fn, "%s must be a positive number, got %s", name, tostring(v))
  end
  return v
end

local function boolean(fn, name, v, default)
  if v == nil then return default end
  if type(v) ~= "boolean" then checks.fail(fn, "%s must be a boolean, got %s", name, checks.show(v)) end
  return v
end

-- The options every builder shares: classes, in_channels, dtype, rng.
local function common(fn, o)
  checks.positive_int(fn, "classes", o.classes)
  local cin = o.in_channels or 3
  checks.positive_int(fn, "in_channels", cin)
  local dtype = o.dtype and checks.float_dtype(fn, "dtype", o.dtype) or collapse.default_dtype()
  local rng = checks.rng(fn, "rng", o.rng, true) or collapse.rng(0)
  return cin, dtype, rng
end

-- torchvision's VGG initialisation (VGG._initialize_weights): conv weights N(0, 2 / fan_out)
-- (kaiming_normal_, mode fan_out, relu), conv biases 0, Linear weights N(0, 0.01^2), biases 0;
-- BN weight 1 and bias 0 (already so).
local function torchvision_init(model, rng)
  for _, m in ipairs(model.modules) do
    local name = getmetatable(m).__name
    if name == "nn.Conv2d" or name == "nn.Linear" then
      local shape = m.weight:shape()
      local std = 0.01
      if name == "nn.Conv2d" then std = math.sqrt(2 / (shape[1] * shape[3] * shape[4])) end
      m.weight:copy(collapse.randn(shape, { dtype = m.weight:dtype(), rng = rng }) * std)
      if m.bias then m.bias:fill(0) end
    end
  end
end

-- The feature layers: per number c, Conv2d(cin, c, 3, padding 1) [BatchNorm2d(c)] ReLU; per "M",
-- MaxPool2d(2, 2). Returns the layers and the last channel count.
local function vgg_features(cfg, width, cin, bn, dtype, rng)
  local layers = {}
  for _, c in ipairs(cfg) do
    if c == "M" then
      layers[#layers + 1] = nn.MaxPool2d(2, 2)
    else
      local cout = scaled(c, width)
      layers[#layers + 1] = nn.Conv2d(cin, cout, 3, { padding = 1, dtype = dtype, rng = rng })
      if bn then layers[#layers + 1] = nn.BatchNorm2d(cout, { dtype = dtype }) end
      layers[#layers + 1] = nn.ReLU()
      cin = cout
    end
  end
  return layers, cin
end

local VGG_OPTS = { depth = true, classes = true, in_channels = true, batchnorm = true, last_bn = true, width = true,
  classifier = true, dropout = true, rng = true, dtype = true, input_size = true, init = true }

--- models.vgg{depth = 11 | 13 | 16 | 19, classes =, in_channels = 3, batchnorm = true,
-- last_bn = false, width = 1, classifier = "torchvision" | "cifar", dropout = 0.5, rng =, dtype =,
-- input_size = 32, init = "torchvision" | "default"}.
-- torchvision's vgg<depth>_bn feature layers (vgg<depth> when batchnorm = false) with every
-- channel count times width (rounded, at least 1: width = 1/16 gives 4, 8, 16, 32, 32), then
-- Flatten and the head. "torchvision": Linear(d, 4096 w) ReLU Dropout Linear(4096 w, 4096 w) ReLU
-- Dropout Linear(4096 w, classes), where d = 512 w (input_size / 32)^2 is the flattened feature
-- size (torchvision's AdaptiveAvgPool2d(7) is left out: on 32 x 32 inputs it only copies the 1 x 1
-- map 49 times); "cifar": one Linear(d, classes). last_bn puts a BatchNorm1d right before the
-- final Linear. init = "torchvision" (default) as VGG._initialize_weights, "default" keeps
-- PyTorch's layer defaults.
function cnn.vgg(opts)
  local fn = "models.vgg"
  local o = checks.options(fn, opts, VGG_OPTS)
  local depth = o.depth or 11
  local cfg = VGG_CFG[depth]
  if not cfg then checks.fail(fn, "depth must be 11, 13, 16 or 19, got %s", tostring(depth)) end
  local cin, dtype, rng = common(fn, o)
  local width = positive_number(fn, "width", o.width or 1)
  local head = o.classifier or "torchvision"
  if head ~= "torchvision" and head ~= "cifar" then
    checks.fail(fn, "classifier must be 'torchvision' or 'cifar', got %s", checks.show(head))
  end
  local p = checks.number_in(fn, "dropout", o.dropout == nil and 0.5 or o.dropout, 0, 1)
  local size = checks.int_min(fn, "input_size", o.input_size or 32, 32)
  local init = o.init or "torchvision"
  if init ~= "torchvision" and init ~= "default" then
    checks.fail(fn, "init must be 'torchvision' or 'default', got %s", checks.show(init))
  end
  local layers, c = vgg_features(cfg, width, cin, boolean(fn, "batchnorm", o.batchnorm, true), dtype, rng)
  local side = size // 32
  local d = c * side * side
  layers[#layers + 1] = nn.Flatten()
  if head == "torchvision" then
    local h = scaled(4096, width)
    for _, n_in in ipairs({ d, h }) do
      layers[#layers + 1] = nn.Linear(n_in, h, { dtype = dtype, rng = rng })
      layers[#layers + 1] = nn.ReLU()
      if p > 0 then layers[#layers + 1] = nn.Dropout(p, { rng = rng }) end
    end
    d = h
  end
  if boolean(fn, "last_bn", o.last_bn, false) then layers[#layers + 1] = nn.BatchNorm(d, { dtype = dtype }) end
  layers[#layers + 1] = nn.Linear(d, o.classes, { dtype = dtype, rng = rng })
  local model = nn.Sequential(layers)
  if init == "torchvision" then torchvision_init(model, rng) end
  return model
end

-- The authors' BasicBlock as Sequential{Residual{body, shortcut}, ReLU}: body = conv3x3(stride)
-- BN ReLU conv3x3 BN; shortcut = conv1x1(stride) BN when the shape changes, else the identity.
local function basic_block(cin, c, stride, dtype, rng)
  local o = { padding = 1, bias = false, dtype = dtype, rng = rng }
  local body = nn.Sequential{
    nn.Conv2d(cin, c, 3, { stride = stride, padding = 1, bias = false, dtype = dtype, rng = rng }),
    nn.BatchNorm2d(c, { dtype = dtype }), nn.ReLU(),
    nn.Conv2d(c, c, 3, o), nn.BatchNorm2d(c, { dtype = dtype }) }
  local shortcut
  if stride ~= 1 or cin ~= c then
    shortcut = nn.Sequential{ nn.Conv2d(cin, c, 1, { stride = stride, bias = false, dtype = dtype, rng = rng }),
      nn.BatchNorm2d(c, { dtype = dtype }) }
  end
  return nn.Sequential{ nn.Residual{ body = body, shortcut = shortcut }, nn.ReLU() }
end

--- models.resnet18{classes =, in_channels = 3, width = 64, last_bn = true, rng =, dtype =}: the
-- authors' CIFAR ResNet18. Top-level modules: 1 Conv2d(in, w, 3, stride 1, padding 1, no bias),
-- 2 BatchNorm2d, 3 ReLU (no max-pool), 4-11 the BasicBlocks [2, 2, 2, 2] of widths w, 2w, 4w, 8w
-- (first block of each stage with stride 1, 2, 2, 2), 12 GlobalAvgPool2d, [13 BatchNorm1d(8 w)
-- when last_bn], then Linear(8 w, classes) with bias. PyTorch's default initialisation.
function cnn.resnet18(opts)
  local fn = "models.resnet18"
  local o = checks.options(fn, opts, { classes = true, in_channels = true, width = true, last_bn = true, rng = true,
    dtype = true })
  local cin, dtype, rng = common(fn, o)
  local w = checks.positive_int(fn, "width", o.width or 64)
  local layers = { nn.Conv2d(cin, w, 3, { padding = 1, bias = false, dtype = dtype, rng = rng }),
    nn.BatchNorm2d(w, { dtype = dtype }), nn.ReLU() }
  local c = w
  for stage, stride in ipairs({ 1, 2, 2, 2 }) do
    local out = w << (stage - 1)
    layers[#layers + 1] = basic_block(c, out, stride, dtype, rng)
    layers[#layers + 1] = basic_block(out, out, 1, dtype, rng)
    c = out
  end
  layers[#layers + 1] = nn.GlobalAvgPool2d()
  if boolean(fn, "last_bn", o.last_bn, true) then layers[#layers + 1] = nn.BatchNorm(c, { dtype = dtype }) end
  layers[#layers + 1] = nn.Linear(c, o.classes, { dtype = dtype, rng = rng })
  return nn.Sequential(layers)
end

return cnn
