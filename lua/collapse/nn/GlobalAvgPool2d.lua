--- nn.GlobalAvgPool2d(): [N x C x H x W] -> [N x C], the mean of each H x W plane (the ResNet's
-- pooling before its classifier; PyTorch's out.mean(dim = (2, 3)) / AdaptiveAvgPool2d(1) then
-- flatten). Any float dtype (buffers follow the input). Kernels: collapse_global_avg_pool2d_forward
-- / _backward (csrc/nn/gap2d.c), one call into C each.
local core = require("collapse.core")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local GlobalAvgPool2d = class("nn.GlobalAvgPool2d", Module)

function GlobalAvgPool2d:forward(x)
  self.output = core.global_avg_pool2d_forward(x, self.output or false)
  return self.output
end

--- grad_input [N x C x H x W] (nil when need_input_grad == false: nothing to compute).
function GlobalAvgPool2d:backward(x, gy, need_input_grad)
  self:need_forward("GlobalAvgPool2d.backward")
  if need_input_grad == false then return nil end
  self.grad_input = core.global_avg_pool2d_backward(x, gy, self.grad_input or false)
  return self.grad_input
end

return GlobalAvgPool2d
