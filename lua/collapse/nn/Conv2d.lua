--- nn.Conv2d(in_channels, out_channels, kernel_size, {stride = 1, padding = 0, bias = true,
-- dtype =, rng =}): PyTorch's Conv2d (square kernel, zero padding, no dilation or groups) on
-- [N x Cin x H x W]; weight [Cout x Cin x k x k] and bias initialised U(-1/sqrt(fan_in),
-- 1/sqrt(fan_in)), fan_in = Cin k k. Kernels: collapse_conv2d_forward/backward, which also size
-- the module's im2col scratch (self.columns).
local collapse = require("collapse")
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Conv2d = class("nn.Conv2d", Module)
-- backward reads the input, not the output: a Residual may sum in place into it (Module:spare_output)
function Conv2d:spare_output() return self.output end

function Conv2d:init(cin, cout, k, opts)
  local fn = "Conv2d"
  checks.positive_int(fn, "in_channels", cin)
  checks.positive_int(fn, "out_channels", cout)
  checks.positive_int(fn, "kernel_size", k)
  opts = checks.options(fn, opts, { stride = true, padding = true, bias = true, dtype = true, rng = true })
  local stride = checks.positive_int(fn, "stride", opts.stride or 1)
  local padding = checks.int_min(fn, "padding", opts.padding or 0, 0)
  local dtype = opts.dtype and checks.float_dtype(fn, "dtype", opts.dtype) or collapse.default_dtype()
  local rng = checks.rng(fn, "rng", opts.rng, true) or collapse.rng(0)
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, k
  self.stride, self.padding, self.dtype = stride, padding, dtype
  self._outputs = { "output", "grad_input", "columns" }
  self:_columns()
  self:init_weight_bias({ cout, cin, k, k }, cout, cin * k * k, opts.bias == nil or opts.bias, dtype, rng)
end

-- The im2col scratch: false = made by the first kernel call and kept (float64); nil for a 1x1
-- kernel with stride 1 and no padding, which reads the input directly, and for float32, whose
-- convolutions go through oneDNN when the library is built with it (no im2col at all; a kept
-- scratch would be resized but never read: 4 MB in a ResNet18 width 16 step); without oneDNN
-- the kernel then uses a temporary per call, so only one scratch exists at a time.
function Conv2d:_columns()
  if self.dtype == "float32" or (self.kernel_size == 1 and self.stride == 1 and self.padding == 0) then
    self.columns = nil
  else self.columns = false end
end

function Conv2d:to(dtype)
  Module.to(self, dtype)
  self:_columns()
  return self
end

function Conv2d:describe()
  return ("nn.Conv2d(%d -> %d, %dx%d, stride=%d, padding=%d%s)"):format(self.in_channels, self.out_channels,
    self.kernel_size, self.kernel_size, self.stride, self.padding, self.bias and "" or ", no bias")
end

function Conv2d:forward(x)
  checks.method("Conv2d.forward", self, "m:forward(x)") -- pure Lua: no C call on the hot path
  self.output, self.columns = core.conv2d_forward(x, self.output, self.weight, self.bias, self.columns, self.stride,
    self.padding)
  return self.output
end

function Conv2d:backward(x, gy, need_input_grad)
  checks.method("Conv2d.backward", self, "m:backward(x, grad_output)")
  local gx = nil -- nil: not wanted; false: wanted, made by the kernel on first use
  if need_input_grad ~= false then gx = self.grad_input or false end
  local gw, gb = self:live_grads()
  gx, self.columns = core.conv2d_backward(x, gy, gx, self.weight, gw, gb, self.columns,
    self.stride, self.padding)
  if gx then self.grad_input = gx end
  return gx
end

return Conv2d
