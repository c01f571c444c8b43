--- nn.BatchNorm2d(channels, {eps = 1e-5, momentum = 0.1, affine = true, dtype =}): PyTorch's
-- BatchNorm2d on [N x C x H x W]: per-channel statistics over N, H, W. Everything but the kernels
-- (collapse_batchnorm2d_forward/backward) is nn.BatchNorm's. In training, followed by a ReLU in a
-- Sequential, the pair runs in ONE buffer (fuse_with): the ReLU is applied in place to the
-- normalised output and its gradient masked in place into the BatchNorm's input-gradient buffer,
-- so neither the BatchNorm's own output nor the ReLU's input gradient exists (two activation-sized
-- buffers fewer per pair; the same values as the two modules in turn).
local core = require("collapse.core")
local class = require("collapse.nn.class")
local BatchNorm = require("collapse.nn.BatchNorm")
local ReLU = require("collapse.nn.ReLU")

local BatchNorm2d = class("nn.BatchNorm2d", BatchNorm)
BatchNorm2d.size_field = "channels"
BatchNorm2d.forward_kernel, BatchNorm2d.backward_kernel = core.batchnorm2d_forward, core.batchnorm2d_backward

local Fused = {}
Fused.__index = Fused

function Fused:forward(x)
  local bn, relu = self.bn, self.relu
  local y
  y, bn.save_mean, bn.save_invstd = core.batchnorm2d_forward(x, relu.output, bn.weight, bn.bias, bn.running_mean,
    bn.running_var, bn.save_mean, bn.save_invstd, true, bn.momentum, bn.eps)
  relu.output = core.relu_forward(y, y) -- in place
  bn.num_batches_tracked = bn.num_batches_tracked + 1
  bn._fused_ran = true -- forward has run (need_forward), without a separate BatchNorm output
  return relu.output
end

function Fused:backward(x, gy, need_input_grad)
  local bn = self.bn
  -- the gradient at the BatchNorm's output, masked into its input-gradient buffer, then the
  -- BatchNorm's backward in place (gx may be gy)
  local g = core.relu_backward(self.relu.output, gy, bn.grad_input or false)
  g = bn.backward_kernel(x, g, need_input_grad ~= false and g or nil, bn.weight, bn.weight_grad, bn.bias_grad,
    bn.save_mean, bn.save_invstd, bn.running_mean, bn.running_var, true, bn.eps)
  bn.grad_input = g or bn.grad_input
  return g
end

function BatchNorm2d:fuse_with(nxt)
  if not (self.training and nxt and class.is(nxt, ReLU)) then return nil end
  local f = self._fused
  if not f or f.relu ~= nxt then
    f = setmetatable({ bn = self, relu = nxt }, Fused)
    self._fused = f
  end
  return f
end

return BatchNorm2d
