--- collapse.nn: Torch-style modules over the C kernels of csrc/nn.
-- Every module has forward(x), backward(x, grad_output) (returns grad_input and accumulates
-- parameter gradients), parameters(), zero_grad(), train(), evaluate(), state(), load_state().
-- Output and gradient buffers are reused between calls of the same batch shape.
local collapse = require("collapse")
local core = require("collapse.core")

local nn = {}

local function fail(fn, msg, ...) error(("%s: " .. msg):format(fn, ...), 3) end

local function positive_int(fn, name, v)
  if math.type(v) ~= "integer" or v < 1 then fail(fn, "%s must be a positive integer, got %s", name, tostring(v)) end
end

local function check_opts(fn, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then fail(fn, "options must be a table, got %s", type(opts)) end
  for k in pairs(opts) do
    if not allowed[k] then fail(fn, "unknown option '%s'", tostring(k)) end
  end
  return opts
end

-- Argument checks shared with the modules of conv.lua.
nn.checks = { fail = fail, positive_int = positive_int, check_opts = check_opts }

-- A buffer of the given shape and dtype, reusing `old` when it already fits.
local function buffer(old, shape, dtype)
  if old and old:dtype() == dtype then
    local s = old:shape()
    if #s == #shape then
      local same = true
      for i = 1, #s do if s[i] ~= shape[i] then same = false break end end
      if same then return old end
    end
  end
  return core.zeros(shape, dtype)
end
nn.buffer = buffer

-- The same checks without building shape tables (no allocation once the buffer fits).
-- rows(m, key, n, f, dtype): m[key] as an [n x f] matrix. The storage of the largest batch seen
-- is kept in m._stores[key] and a smaller batch (an epoch's short last one) gets a view of its
-- first n rows, so alternating batch sizes allocate nothing but the view.
local function rows(m, key, n, f, dtype)
  local cur = m[key]
  if cur and cur:dim() == 2 and cur:size(1) == n and cur:size(2) == f and cur:dtype() == dtype then return cur end
  local stores = m._stores
  if not stores then stores = {}; m._stores = stores end
  local store = stores[key]
  if not (store and store:size(2) == f and store:dtype() == dtype and store:size(1) >= n) then
    store = core.zeros({ n, f }, dtype)
    stores[key] = store
  end
  if store:size(1) == n then return store end
  return store:narrow(1, 1, n)
end

local function vector(old, f, dtype)
  if old and old:dim() == 1 and old:size(1) == f and old:dtype() == dtype then return old end
  return core.zeros({ f }, dtype)
end

-- m[key] shaped like tensor x (rows() for matrices).
local function like(m, key, x)
  local dtype, d = x:dtype(), x:dim()
  if d == 2 then return rows(m, key, x:size(1), x:size(2), dtype) end
  local old = m[key]
  if old and old:dim() == d and old:dtype() == dtype then
    local same = true
    for i = 1, d do if old:size(i) ~= x:size(i) then same = false break end end
    if same then return old end
  end
  return core.zeros(x:shape(), dtype)
end

local function shape_str(t) return "[" .. table.concat(t:shape(), " x ") .. "]" end

-- Base module ---------------------------------------------------------------------------
local Module = {}
Module.__index = Module
nn.Module = Module

function Module:parameters() return {} end
function Module:buffers() return {} end
function Module:train() self.training = true; return self end
function Module:evaluate() self.training = false; return self end
function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad:fill(0) end
end
function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p.value:numel() end
  return n
end

--- Parameters and buffers by name, cloned (a checkpointable table of tensors).
function Module:state()
  local s = {}
  for _, p in ipairs(self:parameters()) do s[p.name] = p.value:clone() end
  for _, b in ipairs(self:buffers()) do s[b.name] = b.value:clone() end
  return s
end

function Module:load_state(s)
  if type(s) ~= "table" then error("load_state: table of tensors expected, got " .. type(s), 2) end
  local function load(list)
    for _, p in ipairs(list) do
      local src = s[p.name]
      if src == nil then error(("load_state: missing entry '%s'"):format(p.name), 3) end
      if not collapse.is_tensor(src) or src:numel() ~= p.value:numel() then
        error(("load_state: entry '%s' should be a tensor of shape %s"):format(p.name, shape_str(p.value)), 3)
      end
      p.value:copy(src)
    end
  end
  load(self:parameters())
  load(self:buffers())
  return self
end

--- Converts parameters and buffers to dtype ("float32"/"float64") in place.
function Module:to(dtype)
  for _, field in ipairs(self._tensors or {}) do
    if self[field] then self[field] = self[field]:to(dtype) end
  end
  self.dtype = dtype
  self.output, self.grad_input, self._stores = nil, nil, nil
  if self._refresh then self:_refresh() end
  return self
end

local function class(name, parent)
  local c = setmetatable({}, { __index = parent or Module })
  c.__index = c
  c.__name = name
  c.__tostring = function(self) return self:describe() end
  c.describe = function() return name .. "()" end
  return c
end

-- Uniform(-bound, bound) initialisation as PyTorch's Linear default.
local function uniform(shape, bound, dtype, rng)
  return core.rand(shape, dtype, rng) * (2 * bound) - bound
end

-- Linear ------------------------------------------------------------------------------------
local Linear = class("nn.Linear")
nn.Linear_class = Linear

--- nn.Linear(in, out, {bias = true, dtype =, rng =}): y = x W^T + b, W is out x in.
function nn.Linear(n_in, n_out, opts)
  local fn = "Linear"
  positive_int(fn, "in_features", n_in)
  positive_int(fn, "out_features", n_out)
  opts = check_opts(fn, opts, { bias = true, dtype = true, rng = true })
  local dtype = opts.dtype or collapse.default_dtype()
  local rng = opts.rng or collapse.rng(0)
  local bound = 1 / math.sqrt(n_in)
  local self = setmetatable({ in_features = n_in, out_features = n_out, dtype = dtype, training = true,
    _tensors = { "weight", "bias", "weight_grad", "bias_grad" } }, Linear)
  self.weight = uniform({ n_out, n_in }, bound, dtype, rng)
  self.weight_grad = core.zeros({ n_out, n_in }, dtype)
  if opts.bias == nil or opts.bias then
    self.bias = uniform({ n_out }, bound, dtype, rng)
    self.bias_grad = core.zeros({ n_out }, dtype)
  end
  return self
end

function Linear:describe()
  return ("nn.Linear(%d -> %d%s)"):format(self.in_features, self.out_features, self.bias and "" or ", no bias")
end

function Linear:parameters()
  local p = { { name = "weight", value = self.weight, grad = self.weight_grad, decay = true, module = self } }
  if self.bias then p[2] = { name = "bias", value = self.bias, grad = self.bias_grad, decay = true, module = self } end
  return p
end

local function check_input(self, x, fn, features)
  if not collapse.is_tensor(x) then fail(fn, "input must be a tensor, got %s", type(x)) end
  if x:dim() ~= 2 or x:size(2) ~= features then
    fail(fn, "size mismatch, input %s, expected [n x %d] for %s", shape_str(x), features, self:describe())
  end
  if x:dtype() ~= self.dtype then
    fail(fn, "input is %s but %s is %s (convert with x:to() or module:to())", x:dtype(), self:describe(), self.dtype)
  end
end

function Linear:forward(x)
  check_input(self, x, "Linear.forward", self.in_features)
  self.output = rows(self, "output", x:size(1), self.out_features, self.dtype)
  core.linear_forward(x, self.weight, self.bias, self.output)
  return self.output
end

function Linear:backward(x, gy, need_input_grad)
  check_input(self, x, "Linear.backward", self.in_features)
  if need_input_grad ~= false then
    self.grad_input = rows(self, "grad_input", x:size(1), self.in_features, self.dtype)
  end
  core.linear_backward(x, self.weight, gy, need_input_grad ~= false and self.grad_input or nil,
    self.weight_grad, self.bias_grad)
  return self.grad_input
end

-- BatchNorm (1-d) -----------------------------------------------------------------------------
local BatchNorm = class("nn.BatchNorm")

--- A new batch-normalisation object of class cls over `size` features or channels (stored as
-- self[size_field]): validated options, affine parameters, running statistics. Shared by
-- nn.BatchNorm and nn.BatchNorm2d (conv.lua), which also share parameters() and buffers().
function nn.batchnorm_new(fn, cls, size_field, size, opts)
  positive_int(fn, size_field, size)
  opts = check_opts(fn, opts, { eps = true, momentum = true, affine = true, dtype = true })
  local eps, momentum = opts.eps or 1e-5, opts.momentum or 0.1
  if type(eps) ~= "number" or eps <= 0 then fail(fn, "eps must be > 0, got %s", tostring(eps)) end
  if type(momentum) ~= "number" or momentum < 0 or momentum > 1 then
    fail(fn, "momentum must be in [0, 1], got %s", tostring(momentum))
  end
  local dtype = opts.dtype or collapse.default_dtype()
  local self = setmetatable({ [size_field] = size, eps = eps, momentum = momentum, dtype = dtype, training = true,
    affine = opts.affine == nil or opts.affine,
    _tensors = { "weight", "bias", "weight_grad", "bias_grad", "running_mean", "running_var" } }, cls)
  if self.affine then
    self.weight = core.full({ size }, 1, dtype)
    self.bias = core.zeros({ size }, dtype)
    self.weight_grad = core.zeros({ size }, dtype)
    self.bias_grad = core.zeros({ size }, dtype)
  end
  self.running_mean = core.zeros({ size }, dtype)
  self.running_var = core.full({ size }, 1, dtype)
  self.num_batches_tracked = 0
  return self
end

--- nn.BatchNorm(features, {eps = 1e-5, momentum = 0.1, affine = true, dtype =}): PyTorch's
-- BatchNorm1d on [n x features]: biased batch variance to normalise, unbiased for running_var.
function nn.BatchNorm(features, opts)
  return nn.batchnorm_new("BatchNorm", BatchNorm, "features", features, opts)
end

function BatchNorm:describe()
  return ("nn.BatchNorm(%d, eps=%g, momentum=%g%s)"):format(self.features, self.eps, self.momentum,
    self.affine and "" or ", affine=false")
end

function BatchNorm:parameters()
  if not self.affine then return {} end
  return { { name = "weight", value = self.weight, grad = self.weight_grad, decay = true, module = self },
    { name = "bias", value = self.bias, grad = self.bias_grad, decay = true, module = self } }
end

function BatchNorm:buffers()
  return { { name = "running_mean", value = self.running_mean }, { name = "running_var", value = self.running_var } }
end

function BatchNorm:forward(x)
  check_input(self, x, "BatchNorm.forward", self.features)
  local n = x:size(1)
  self.output = rows(self, "output", n, self.features, self.dtype)
  self.save_mean = vector(self.save_mean, self.features, self.dtype)
  self.save_invstd = vector(self.save_invstd, self.features, self.dtype)
  if self.training then
    if n < 2 then fail("BatchNorm.forward", "training needs a batch of at least 2 samples, got %d", n) end
    self.num_batches_tracked = self.num_batches_tracked + 1
  end
  core.batchnorm_forward(x, self.output, self.weight, self.bias, self.running_mean, self.running_var,
    self.training, self.momentum, self.eps, self.save_mean, self.save_invstd)
  return self.output
end

function BatchNorm:backward(x, gy, need_input_grad)
  check_input(self, x, "BatchNorm.backward", self.features)
  if need_input_grad ~= false then
    self.grad_input = rows(self, "grad_input", x:size(1), self.features, self.dtype)
  end
  core.batchnorm_backward(x, gy, need_input_grad ~= false and self.grad_input or nil, self.weight,
    self.save_mean, self.save_invstd, self.weight_grad, self.bias_grad, self.training,
    self.running_mean, self.running_var, self.eps)
  return self.grad_input
end

--- BatchNorm (training mode) and the ReLU after it in one fused kernel, as nn.Sequential runs
-- such a pair: returns relu.output = relu(bn(x)), the same values as bn:forward then
-- relu:forward; the BatchNorm's own output buffer is not filled (nor the ReLU's grad_input by
-- backward_relu).
function BatchNorm:forward_relu(x, relu)
  check_input(self, x, "BatchNorm.forward", self.features)
  local n = x:size(1)
  if n < 2 then fail("BatchNorm.forward", "training needs a batch of at least 2 samples, got %d", n) end
  relu.output = rows(relu, "output", n, self.features, self.dtype)
  self.save_mean = vector(self.save_mean, self.features, self.dtype)
  self.save_invstd = vector(self.save_invstd, self.features, self.dtype)
  self.num_batches_tracked = self.num_batches_tracked + 1
  core.batchnorm_relu_forward(x, relu.output, self.weight, self.bias, self.running_mean, self.running_var,
    self.momentum, self.eps, self.save_mean, self.save_invstd)
  return relu.output
end

--- The backward of forward_relu: gy is the gradient at relu.output; returns grad_input (nil
-- when need_input_grad == false) and accumulates the BatchNorm's parameter gradients.
function BatchNorm:backward_relu(x, relu, gy, need_input_grad)
  check_input(self, x, "BatchNorm.backward", self.features)
  if need_input_grad ~= false then
    self.grad_input = rows(self, "grad_input", x:size(1), self.features, self.dtype)
  end
  core.batchnorm_relu_backward(x, relu.output, gy, need_input_grad ~= false and self.grad_input or nil,
    self.weight, self.save_mean, self.save_invstd, self.weight_grad, self.bias_grad)
  if need_input_grad == false then return nil end
  return self.grad_input
end

-- Elementwise activations ---------------------------------------------------------------------
local function activation(name, fwd, bwd, uses_output)
  local C = class("nn." .. name)
  nn[name] = function() return setmetatable({ training = true }, C) end
  C.describe = function() return "nn." .. name .. "()" end
  function C:forward(x)
    if not collapse.is_tensor(x) then fail(name .. ".forward", "input must be a tensor, got %s", type(x)) end
    self.output = like(self, "output", x)
    fwd(x, self.output)
    return self.output
  end
  function C:backward(x, gy)
    self.grad_input = like(self, "grad_input", x)
    bwd(uses_output and self.output or x, gy, self.grad_input)
    return self.grad_input
  end
  return C
end
local ReLU = activation("ReLU", core.relu_forward, core.relu_backward, true)
nn.ReLU_class = ReLU
activation("Tanh", core.tanh_forward, core.tanh_backward, true)

local Identity = class("nn.Identity")
function nn.Identity() return setmetatable({ training = true }, Identity) end
Identity.describe = function() return "nn.Identity()" end
function Identity:forward(x) self.output = x; return x end
function Identity:backward(_, gy) self.grad_input = gy; return gy end

local Flatten = class("nn.Flatten")
function nn.Flatten() return setmetatable({ training = true }, Flatten) end
Flatten.describe = function() return "nn.Flatten()" end
function Flatten:forward(x)
  self.output = x:reshape({ x:size(1), -1 })
  return self.output
end
function Flatten:backward(x, gy)
  self.grad_input = gy:reshape(x:shape())
  return self.grad_input
end

-- Sequential ------------------------------------------------------------------------------------
local Sequential = class("nn.Sequential")

--- nn.Sequential{m1, m2, ...}
function nn.Sequential(modules)
  if type(modules) ~= "table" then fail("Sequential", "expected a table of modules, got %s", type(modules)) end
  for i, m in ipairs(modules) do
    if type(m) ~= "table" or type(m.forward) ~= "function" then
      fail("Sequential", "entry %d is not a module (got %s)", i, type(m))
    end
  end
  local list = {}
  for i, m in ipairs(modules) do list[i] = m end
  return setmetatable({ modules = list, training = true }, Sequential)
end

function Sequential:describe()
  local lines = { "nn.Sequential {" }
  for i, m in ipairs(self.modules) do
    lines[#lines + 1] = ("  (%d) %s"):format(i, tostring(m):gsub("\n", "\n  "))
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

function Sequential:get(i) return self.modules[i] end
function Sequential:add(m) self.modules[#self.modules + 1] = m; return self end
function Sequential:size() return #self.modules end

-- A BatchNorm in training mode directly followed by a ReLU runs as one fused kernel
-- (BatchNorm:forward_relu); fused[i] records it for backward.
local function fusable(m, nxt)
  return nxt ~= nil and m.training and getmetatable(m) == BatchNorm and getmetatable(nxt) == ReLU
end

local function run(self, x, last)
  local inputs = self._inputs or {}
  self._inputs = inputs
  local fused = self._fused or {}
  self._fused = fused
  local mods = self.modules
  local i = 1
  while i <= last do
    local m = mods[i]
    inputs[i] = x
    local ok, out
    if i < last and fusable(m, mods[i + 1]) then
      fused[i] = true
      inputs[i + 1] = false -- the BatchNorm output is never materialised
      ok, out = pcall(m.forward_relu, m, x, mods[i + 1])
    else
      fused[i] = false
      ok, out = pcall(m.forward, m, x)
    end
    if not ok then
      error(("Sequential: module %d (%s) failed in forward: %s"):format(i, m:describe(), tostring(out)), 0)
    end
    x = out
    i = fused[i] and i + 2 or i + 1
  end
  return x
end

function Sequential:forward(x)
  self.output = run(self, x, #self.modules)
  return self.output
end

--- Backpropagates grad_output gy through every module (after forward(x), which it re-runs when
-- x is another tensor) and returns grad_input. need_input_grad = false (opt-in) tells the first
-- module that x needs no gradient: a first Linear then skips its input-gradient product, and
-- backward returns nil.
function Sequential:backward(x, gy, need_input_grad)
  local inputs = self._inputs
  if not inputs or inputs[1] ~= x then run(self, x, #self.modules) end
  inputs = self._inputs
  local fused, mods = self._fused, self.modules
  local skip = need_input_grad == false
  local i = #mods
  while i >= 1 do
    local m = mods[i]
    local first, ok, g
    if i >= 2 and fused[i - 1] and getmetatable(m) == ReLU then
      first = i - 1 -- the fused BatchNorm + ReLU pair i-1, i
      local bn = mods[first]
      ok, g = pcall(bn.backward_relu, bn, inputs[first], m, gy, not (first == 1 and skip))
    else
      first = i
      if i == 1 and skip then ok, g = pcall(m.backward, m, inputs[i], gy, false)
      else ok, g = pcall(m.backward, m, inputs[i], gy) end
    end
    if not ok then
      error(("Sequential: module %d (%s) failed in backward: %s"):format(first, mods[first]:describe(), tostring(g)), 0)
    end
    gy = g
    i = first - 1
  end
  if skip then gy = nil end
  self.grad_input = gy
  return gy
end

--- The final Linear (the classifier whose input the collapse analysis looks at).
function Sequential:classifier()
  local last = self.modules[#self.modules]
  if getmetatable(last) ~= Linear then
    error("classifier: the last module of the Sequential is " .. (last and last:describe() or "missing")
      .. ", not an nn.Linear", 2)
  end
  return last
end

--- Output of every layer but the final Linear: the features the classifier sees.
function Sequential:features(x)
  self:classifier()
  return run(self, x, #self.modules - 1)
end

function Sequential:parameters()
  local out = {}
  for i, m in ipairs(self.modules) do
    for _, p in ipairs(m:parameters()) do
      out[#out + 1] = { name = i .. "." .. p.name, value = p.value, grad = p.grad, decay = p.decay, module = m }
    end
  end
  return out
end

function Sequential:buffers()
  local out = {}
  for i, m in ipairs(self.modules) do
    for _, b in ipairs(m:buffers()) do out[#out + 1] = { name = i .. "." .. b.name, value = b.value } end
  end
  return out
end

function Sequential:train()
  self.training = true
  for _, m in ipairs(self.modules) do m:train() end
  return self
end

function Sequential:evaluate()
  self.training = false
  for _, m in ipairs(self.modules) do m:evaluate() end
  return self
end

function Sequential:to(dtype)
  for _, m in ipairs(self.modules) do m:to(dtype) end
  return self
end

--- Modules of a class anywhere in the container (e.g. model:find(nn.BatchNorm_class)).
function Sequential:find(cls)
  local out = {}
  for _, m in ipairs(self.modules) do if getmetatable(m) == cls then out[#out + 1] = m end end
  return out
end

nn.BatchNorm_class = BatchNorm
nn.Sequential_class = Sequential

-- Loss ---------------------------------------------------------------------------------------
local CrossEntropyLoss = class("nn.CrossEntropyLoss")

--- nn.CrossEntropyLoss(): mean cross-entropy of logits [n x C] against labels 1..C, computed by a
-- fused stable log-softmax that also yields the gradient.
function nn.CrossEntropyLoss() return setmetatable({}, CrossEntropyLoss) end
CrossEntropyLoss.describe = function() return "nn.CrossEntropyLoss()" end

local function as_labels(labels)
  if collapse.is_tensor(labels) then
    if labels:dtype() ~= "int32" then return labels:to("int32") end
    return labels
  end
  if type(labels) ~= "table" then
    error("CrossEntropyLoss: labels must be an int32 tensor or an array of integers, got " .. type(labels), 3)
  end
  return core.tensor(labels, "int32")
end

function CrossEntropyLoss:forward(logits, labels)
  if not collapse.is_tensor(logits) or logits:dim() ~= 2 then
    error("CrossEntropyLoss.forward: logits must be a 2-d tensor [n x C]", 2)
  end
  labels = as_labels(labels)
  self.grad = like(self, "grad", logits)
  self.loss = core.cross_entropy(logits, labels, self.grad)
  self._logits, self._labels = logits, labels
  return self.loss
end

function CrossEntropyLoss:backward(logits, labels)
  if logits ~= self._logits or (labels ~= self._labels and collapse.is_tensor(labels)) then
    self:forward(logits, labels)
  end
  return self.grad
end

-- Convolutional layers (Conv2d, BatchNorm2d, MaxPool2d, AvgPool2d) live in conv.lua.
require("collapse.conv")(nn)

return nn
