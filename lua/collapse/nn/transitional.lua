--- TRANSITIONAL (until each module has its own file and tensor-level kernels): BatchNorm,
-- the activations, Identity, Flatten and CrossEntropyLoss as they were in nn.lua, with the Lua
-- buffer helpers they still need. Adds them to the nn table given.
local collapse = require("collapse")
local core = require("collapse.core")
local checks = require("collapse.checks")
local newclass = require("collapse.nn.class")

return function(nn)
local Module = nn.Module
local ReLU -- defined below (BatchNorm:fuse_with refers to it)
local fail, positive_int, check_opts = checks.fail, checks.positive_int, checks.options
nn.checks = { fail = fail, positive_int = positive_int, check_opts = check_opts }

local function class(name) return newclass(name, Module) end

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

local function rows(m, key, n, f, dtype)
  local cur = m[key]
  if cur and cur:dim() == 2 and cur:size(1) == n and cur:size(2) == f and cur:dtype() == dtype then return cur end
  return core.zeros({ n, f }, dtype)
end

local function vector(old, f, dtype)
  if old and old:dim() == 1 and old:size(1) == f and old:dtype() == dtype then return old end
  return core.zeros({ f }, dtype)
end

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

local function check_input(self, x, fn, features)
  if not collapse.is_tensor(x) then fail(fn, "input must be a tensor, got %s", type(x)) end
  if x:dim() ~= 2 or x:size(2) ~= features then
    fail(fn, "size mismatch, input %s, expected [n x %d] for %s", shape_str(x), features, self:describe())
  end
  if x:dtype() ~= self.dtype then
    fail(fn, "input is %s but %s is %s (convert with x:to() or module:to())", x:dtype(), self:describe(), self.dtype)
  end
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
nn.BatchNorm = BatchNorm
function BatchNorm:init(features, opts)
  for k, v in pairs(nn.batchnorm_new("BatchNorm", BatchNorm, "features", features, opts)) do self[k] = v end
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
function BatchNorm:fuse_with(nxt)
  if not (self.training and nxt and newclass.is(nxt, ReLU)) then return nil end
  local f = self._fused
  if not f or f.relu ~= nxt then
    local bn = self
    f = { relu = nxt,
      forward = function(_, x) return bn:forward_relu(x, nxt) end,
      backward = function(_, x, gy, need) return bn:backward_relu(x, nxt, gy, need) end }
    self._fused = f
  end
  return f
end

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
  nn[name] = C
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
ReLU = activation("ReLU", core.relu_forward, core.relu_backward, true)
activation("Tanh", core.tanh_forward, core.tanh_backward, true)

local Identity = class("nn.Identity")
nn.Identity = Identity
Identity.describe = function() return "nn.Identity()" end
function Identity:forward(x) self.output = x; return x end
function Identity:backward(_, gy) self.grad_input = gy; return gy end

local Flatten = class("nn.Flatten")
nn.Flatten = Flatten
Flatten.describe = function() return "nn.Flatten()" end
function Flatten:forward(x)
  self.output = x:reshape({ x:size(1), -1 })
  return self.output
end
function Flatten:backward(x, gy)
  self.grad_input = gy:reshape(x:shape())
  return self.grad_input
end

-- Loss ---------------------------------------------------------------------------------------
local CrossEntropyLoss = class("nn.CrossEntropyLoss")

--- nn.CrossEntropyLoss(): mean cross-entropy of logits [n x C] against labels 1..C, computed by a
-- fused stable log-softmax that also yields the gradient.
nn.CrossEntropyLoss = CrossEntropyLoss
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


end
