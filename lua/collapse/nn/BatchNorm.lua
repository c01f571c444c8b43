--- nn.BatchNorm(features, {eps = 1e-5, momentum = 0.1, affine = true, dtype =}): PyTorch's
-- BatchNorm1d on [n x features]: biased batch variance to normalise, unbiased for running_var.
-- Kernels: collapse_batchnorm_forward/backward (csrc/nn/batchnorm_tensor.c). In training it
-- offers Sequential a fusion with a following ReLU (fuse_with): one kernel for the pair.
local collapse = require("collapse")
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")
local ReLU = require("collapse.nn.ReLU")

local BatchNorm = class("nn.BatchNorm", Module)
BatchNorm.size_field = "features" -- BatchNorm2d: "channels"
BatchNorm.forward_kernel, BatchNorm.backward_kernel = core.batchnorm_forward, core.batchnorm_backward

--- Validated options, affine parameters and running statistics over `size` features/channels.
function BatchNorm:init(size, opts)
  local fn = self.__short -- "BatchNorm" / "BatchNorm2d"
  checks.positive_int(fn, self.size_field, size)
  opts = checks.options(fn, opts, { eps = true, momentum = true, affine = true, dtype = true })
  local eps, momentum = opts.eps or 1e-5, opts.momentum or 0.1
  if type(eps) ~= "number" or eps <= 0 then checks.fail(fn, "eps must be > 0, got %s", tostring(eps)) end
  if type(momentum) ~= "number" or momentum < 0 or momentum > 1 then
    checks.fail(fn, "momentum must be in [0, 1], got %s", tostring(momentum))
  end
  local dtype = opts.dtype and checks.float_dtype(fn, "dtype", opts.dtype) or collapse.default_dtype()
  self[self.size_field], self.eps, self.momentum, self.dtype = size, eps, momentum, dtype
  self.affine = opts.affine == nil or opts.affine
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
end

function BatchNorm:describe()
  return ("%s(%d, eps=%g, momentum=%g%s)"):format(self.__name, self[self.size_field], self.eps,
    self.momentum, self.affine and "" or ", affine=false")
end

function BatchNorm:buffers()
  return { { name = "running_mean", value = self.running_mean }, { name = "running_var", value = self.running_var } }
end

function BatchNorm:forward(x)
  local train = self.training
  self.output, self.save_mean, self.save_invstd = self.forward_kernel(x, self.output, self.weight, self.bias,
    self.running_mean, self.running_var, self.save_mean, self.save_invstd, train, self.momentum, self.eps)
  if train then self.num_batches_tracked = self.num_batches_tracked + 1 end
  return self.output
end

function BatchNorm:backward(x, gy, need_input_grad)
  self:need_forward("backward")
  local gx = nil -- nil: not wanted; false: wanted, made by the kernel on first use
  if need_input_grad ~= false then gx = self.grad_input or false end
  gx = self.backward_kernel(x, gy, gx, self.weight, self.weight_grad, self.bias_grad, self.save_mean,
    self.save_invstd, self.running_mean, self.running_var, self.training, self.eps)
  if gx then self.grad_input = gx end
  return gx
end

-- The fused BatchNorm (training) + ReLU step: relu.output = relu(bn(x)) by one kernel, the same
-- values as the two modules in turn; the BatchNorm's own output is never materialised.
local Fused = {}
Fused.__index = Fused

function Fused:forward(x)
  local bn, relu = self.bn, self.relu
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
  gx = core.batchnorm_relu_backward(x, self.relu.output, gy, gx, bn.weight, bn.weight_grad, bn.bias_grad,
    bn.save_mean, bn.save_invstd)
  if gx then bn.grad_input = gx end
  return gx
end

--- Offered to Sequential: in training mode, a BatchNorm directly followed by a ReLU runs fused.
function BatchNorm:fuse_with(nxt)
  if not (self.training and self.forward_kernel == core.batchnorm_forward and nxt and class.is(nxt, ReLU)) then
    return nil
  end
  local f = self._fused
  if not f or f.relu ~= nxt then
    f = setmetatable({ bn = self, relu = nxt }, Fused)
    self._fused = f
  end
  return f
end

return BatchNorm
