--- nn.Linear(in, out, {bias = true, dtype =, rng =}): y = x W^T + b, W is [out x in], initialised
-- U(-1/sqrt(in), 1/sqrt(in)) like the bias (PyTorch's default). Kernels: collapse_linear_forward /
-- collapse_linear_backward (csrc/nn/linear_tensor.c), which check the input and resize the outputs.
local collapse = require("collapse")
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Linear = class("nn.Linear", Module)
-- backward reads the input, not the output: a Residual may sum in place into it (Module:spare_output)
function Linear:spare_output() return self.output end

function Linear:init(n_in, n_out, opts)
  local fn = "Linear"
  checks.positive_int(fn, "in_features", n_in)
  checks.positive_int(fn, "out_features", n_out)
  opts = checks.options(fn, opts, { bias = true, dtype = true, rng = true })
  local dtype = opts.dtype and checks.float_dtype(fn, "dtype", opts.dtype) or collapse.default_dtype()
  local rng = checks.rng(fn, "rng", opts.rng, true) or collapse.rng(0)
  self.in_features, self.out_features, self.dtype = n_in, n_out, dtype
  self:init_weight_bias({ n_out, n_in }, n_out, n_in, opts.bias == nil or opts.bias, dtype, rng)
end

function Linear:describe()
  return ("nn.Linear(%d -> %d%s)"):format(self.in_features, self.out_features, self.bias and "" or ", no bias")
end

function Linear:forward(x)
  checks.method("Linear.forward", self, "m:forward(x)") -- pure Lua: no C call on the hot path
  self.output = core.linear_forward(x, self.output, self.weight, self.bias)
  return self.output
end

--- grad_input only when need_input_grad ~= false (a first layer needs none).
function Linear:backward(x, gy, need_input_grad)
  checks.method("Linear.backward", self, "m:backward(x, grad_output)")
  local gx = nil
  if need_input_grad ~= false then gx = self.grad_input or false end
  local gw, gb = self:live_grads()
  gx = core.linear_backward(x, gy, gx, self.weight, gw, gb)
  if gx then self.grad_input = gx end
  return gx
end

return Linear
