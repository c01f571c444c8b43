--- nn.MaxPool2d(k, stride = k): window maxima; the gradient goes to the first maximum of each
-- window (PyTorch's tie rule), recorded by the forward in the int32 tensor self.indices.
-- Kernels: collapse_maxpool2d_forward/backward.
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Pool2d = require("collapse.nn.Pool2d")

local MaxPool2d = class("nn.MaxPool2d", Pool2d)
MaxPool2d._outputs = { "output", "grad_input", "indices" }

function MaxPool2d:forward(x)
  checks.method("MaxPool2d.forward", self, "m:forward(x)") -- pure Lua: no C call on the hot path
  self.output, self.indices = core.maxpool2d_forward(x, self.output, self.indices, self.kernel_size, self.stride)
  self._input = x
  return self.output
end

function MaxPool2d:backward(x, gy)
  checks.method("MaxPool2d.backward", self, "m:backward(x, grad_output)")
  if self._input ~= x then self:forward(x) end -- the indices must come from this input
  self.grad_input = core.maxpool2d_backward(x, gy, self.grad_input, self.indices, self.kernel_size, self.stride)
  return self.grad_input
end

return MaxPool2d
