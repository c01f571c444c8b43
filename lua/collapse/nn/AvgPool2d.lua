--- nn.AvgPool2d(k, stride = k): window means (divisor k^2). Kernels: collapse_avgpool2d_forward/backward.
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Pool2d = require("collapse.nn.Pool2d")

local AvgPool2d = class("nn.AvgPool2d", Pool2d)

function AvgPool2d:forward(x)
  checks.method("AvgPool2d.forward", self, "m:forward(x)")
  self.output = core.avgpool2d_forward(x, self.output, self.kernel_size, self.stride)
  return self.output
end

function AvgPool2d:backward(x, gy)
  checks.method("AvgPool2d.backward", self, "m:backward(x, grad_output)")
  self.grad_input = core.avgpool2d_backward(x, gy, self.grad_input, self.kernel_size, self.stride)
  return self.grad_input
end

return AvgPool2d
