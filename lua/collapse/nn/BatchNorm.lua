--- nn.BatchNorm(features, {eps = 1e-5, momentum = 0.1, affine = true, gamma =, dtype =}): PyTorch's
-- BatchNorm1d on [n x features]: biased batch variance to normalise, unbiased for running_var.
-- affine = "fixed_gamma" (with gamma = c, default 1): the weight is the constant c, frozen
-- (freeze("weight")), the bias still learned: the paper's fixed-gamma experiment, whose feature
-- norm is then about c * sqrt(features) (bn:fix_gamma(c) does the same to an existing module).
-- Kernels: collapse_batchnorm_forward/backward (csrc/nn/batchnorm_tensor.c). In training it
-- offers Sequential a fusion with a following ReLU (fuse_with): one kernel for the pair.
local collapse = require("collapse")
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")
local ReLU = require("collapse.nn.ReLU")

local BatchNorm = class("nn.BatchNorm", Module)
-- backward reads the input, not the output: a Residual may sum in place into it (Module:spare_output)
function BatchNorm:spare_output() return self.output end
BatchNorm.size_field = "features" -- BatchNorm2d: "channels"
BatchNorm.input_ndim = 2 -- [n x features]; BatchNorm2d: 4
BatchNorm.forward_kernel, BatchNorm.backward_kernel = core.batchnorm_forward, core.batchnorm_backward

--- Validated options, affine parameters and running statistics over `size` features/channels.
function BatchNorm:init(size, opts)
  local fn = self.__short -- "BatchNorm" / "BatchNorm2d"
  checks.positive_int(fn, self.size_field, size)
  opts = checks.options(fn, opts, { eps = true, momentum = true, affine = true, gamma = true, dtype = true })
  local affine = opts.affine
  if affine == nil then affine = true end
  if affine ~= true and affine ~= false and affine ~= "fixed_gamma" then
    checks.fail(fn, "affine must be true, false or 'fixed_gamma', got %s", checks.show(affine))
  end
  if opts.gamma ~= nil and affine ~= "fixed_gamma" then
    checks.fail(fn, "gamma is only an option with affine = 'fixed_gamma', got affine = %s", checks.show(affine))
  end
  local eps, momentum = opts.eps or 1e-5, opts.momentum or 0.1
  if type(eps) ~= "number" or eps <= 0 then checks.fail(fn, "eps must be > 0, got %s", tostring(eps)) end
  if type(momentum) ~= "number" or momentum < 0 or momentum > 1 then
    checks.fail(fn, "momentum must be in [0, 1], got %s", tostring(momentum))
  end
  local dtype = opts.dtype and checks.float_dtype(fn, "dtype", opts.dtype) or collapse.default_dtype()
  self[self.size_field], self.eps, self.momentum, self.dtype = size, eps, momentum, dtype
  self.affine = affine ~= false
  self._tensors = { "weight", "bias", "weight_grad", "bias_grad", "running_mean", "running_var" }
  self._outputs = { "output", "grad_input", "save_mean", "save_invstd" }
  if self.affine then
    self.weight = core.full({ size }, 1, dtype)
    self.bias = core.zeros({ size }, dtype)
    self.weight_grad = core.zeros({ size }, dtype)
    self.bias_grad = core.zeros({ size }, dtype)
  end
  self.running_mean = core.zeros({ size }, dtype)
  self.running_var = core.full({ size }, 1, dtype)
  self.num_batches_tracked = 0
  if affine == "fixed_gamma" then self:fix_gamma(opts.gamma == nil and 1 or opts.gamma) end
end

--- bn:fix_gamma(c): weight filled with the constant c and frozen; the bias stays learned.
function BatchNorm:fix_gamma(c)
  local fn = self.__short .. ".fix_gamma"
  checks.method(fn, self, "bn:fix_gamma(c)")
  if not self.affine then checks.fail(fn, "the module has affine = false: no weight to fix") end
  if type(c) ~= "number" or c ~= c or c == math.huge or c == -math.huge then
    checks.fail(fn, "gamma must be a finite number, got %s", checks.show(c))
  end
  self.weight:fill(c)
  self.fixed_gamma = c
  return self:freeze("weight")
end

function BatchNorm:describe()
  local extra = self.affine and "" or ", affine=false"
  if self.affine and not self:requires_grad("weight") then
    extra = self.fixed_gamma and (", gamma fixed at %g"):format(self.fixed_gamma) or ", weight frozen"
  end
  return ("%s(%d, eps=%g, momentum=%g%s)"):format(self.__name, self[self.size_field], self.eps, self.momentum, extra)
end

function BatchNorm:buffers()
  return { { name = "running_mean", value = self.running_mean }, { name = "running_var", value = self.running_var } }
end

function BatchNorm:forward(x)
  checks.method("BatchNorm.forward", self, "m:forward(x)") -- pure Lua: no C call on the hot path
  local train = self.training
  self.output, self.save_mean, self.save_invstd = self.forward_kernel(x, self.output, self.weight, self.bias,
    self.running_mean, self.running_var, self.save_mean, self.save_invstd, train, self.momentum, self.eps)
  if train then self.num_batches_tracked = self.num_batches_tracked + 1 end
  return self.output
end

function BatchNorm:backward(x, gy, need_input_grad)
  checks.method("BatchNorm.backward", self, "m:backward(x, grad_output)")
  self:need_forward("backward")
  local gx = nil -- nil: not wanted; false: wanted, made by the kernel on first use
  if need_input_grad ~= false then gx = self.grad_input or false end
  local gw, gb = self:live_grads()
  gx = self.backward_kernel(x, gy, gx, self.weight, gw, gb, self.save_mean,
    self.save_invstd, self.running_mean, self.running_var, self.training, self.eps)
  if gx then self.grad_input = gx end
  return gx
end

-- The fused BatchNorm (training) + ReLU step: relu.output = relu(bn(x)) by one kernel, the same
-- values as the two modules in turn; the BatchNorm's own output is never materialised. The same
-- for BatchNorm2d: the C pair takes [n x f] and [N x C x H x W] alike, so the module's own rank is
-- checked here (by its own kernel, for the unfused path's error).
local Fused = {}
Fused.__index = Fused

function Fused:forward(x)
  local bn, relu = self.bn, self.relu
  if x:dim() ~= bn.input_ndim then return bn:forward(x) end -- raises "batchnorm_forward: size mismatch ..."
  relu.output, bn.save_mean, bn.save_invstd = core.batchnorm_relu_forward(x, relu.output, bn.weight, bn.bias,
    bn.running_mean, bn.running_var, bn.save_mean, bn.save_invstd, bn.momentum, bn.eps)
  bn.num_batches_tracked = bn.num_batches_tracked + 1
  bn._fused_ran = true -- forward has run (need_forward), without a separate BatchNorm output
  return relu.output
end

function Fused:backward(x, gy, need_input_grad)
  local bn = self.bn
  local gx = nil -- nil: not wanted; false: wanted, made by the kernel on first use
  if need_input_grad ~= false then gx = bn.grad_input or false end
  local gw, gb = bn:live_grads()
  gx = core.batchnorm_relu_backward(x, self.relu.output, gy, gx, bn.weight, gw, gb,
    bn.save_mean, bn.save_invstd)
  if gx then bn.grad_input = gx end
  return gx
end

--- Offered to Sequential: in training mode, a BatchNorm (or BatchNorm2d) directly followed by a
-- ReLU runs fused.
function BatchNorm:fuse_with(nxt)
  if not (self.training and nxt and class.is(nxt, ReLU)) then return nil end
  local f = self._fused
  if not f or f.relu ~= nxt then
    f = setmetatable({ bn = self, relu = nxt }, Fused)
    self._fused = f
  end
  return f
end

return BatchNorm
