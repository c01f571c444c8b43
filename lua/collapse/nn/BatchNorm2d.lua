--- nn.BatchNorm2d(channels, {eps = 1e-5, momentum = 0.1, affine = true, dtype =}): PyTorch's
-- BatchNorm2d on [N x C x H x W]: per-channel statistics over N, H, W. Everything but the kernels
-- (collapse_batchnorm2d_forward/backward) is nn.BatchNorm's. In training, followed by a ReLU in a
-- Sequential, the pair runs as ONE kernel each way in one buffer (fuse_with): the ReLU is applied
-- as the normalised output is written and its gradient masked as it is read, so neither the
-- BatchNorm's own output nor the ReLU's input gradient exists (two activation-sized buffers and
-- two passes over memory fewer per pair; the same values as the two modules in turn).
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
  -- one kernel: the ReLU applied as each normalised value is written
  relu.output, bn.save_mean, bn.save_invstd = core.batchnorm_relu_forward(x, relu.output, bn.weight, bn.bias,
    bn.running_mean, bn.running_var, bn.save_mean, bn.save_invstd, bn.momentum, bn.eps)
  bn.num_batches_tracked = bn.num_batches_tracked + 1
  bn._fused_ran = true -- forward has run (need_forward), without a separate BatchNorm output
  return relu.output
end

function Fused:backward(x, gy, need_input_grad)
  local bn = self.bn
  -- one kernel: gy masked by the ReLU's output as it is read, the BatchNorm's backward into its
  -- input-gradient buffer
  local gx = nil -- nil: not wanted; false: wanted, made by the kernel on first use
  if need_input_grad ~= false then gx = bn.grad_input or false end
  local gw, gb = bn:live_grads()
  gx = core.batchnorm_relu_backward(x, self.relu.output, gy, gx, bn.weight, gw, gb, bn.save_mean, bn.save_invstd)
  if gx then bn.grad_input = gx end
  return gx
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
