--- The base of the elementwise activations (nn.ReLU, nn.Tanh): any shape and float dtype; the
-- output follows the input's dtype. A subclass names its two kernels; the backwards take the
-- forward OUTPUT (so an activation needs no copy of its input).
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Activation = class("nn.Activation", Module)

function Activation:forward(x)
  checks.method("forward", self, "m:forward(x)") -- pure Lua: no C call on the hot path
  self.output = self.forward_kernel(x, self.output)
  return self.output
end

function Activation:backward(_, gy)
  checks.method("backward", self, "m:backward(x, grad_output)")
  self:need_forward("backward")
  self.grad_input = self.backward_kernel(self.output, gy, self.grad_input)
  return self.grad_input
end

return Activation
