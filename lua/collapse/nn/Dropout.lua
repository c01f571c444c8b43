--- nn.Dropout(p = 0.5, {rng =}): inverted dropout, PyTorch's semantics. In training mode each
-- element is kept with probability 1 - p and scaled by 1/(1-p), else zeroed; the mask is drawn
-- from the generator `rng` (collapse.rng; default collapse.rng(0)), one uniform per element in
-- memory order, so the same seed gives the same mask, and kept for the backward. In evaluate
-- mode, and for p = 0, forward returns its input and backward its grad_output (no copy, no
-- draw). p = 1 zeroes everything (as PyTorch). Kernels: collapse_dropout_forward / _backward
-- (csrc/nn/dropout.c): one call into C per forward and per backward.
local collapse = require("collapse")
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Dropout = class("nn.Dropout", Module)
Dropout.pooled_grad_input = false -- keeps its own _gx (grad_input may be grad_output itself)

function Dropout:init(p, opts)
  local fn = "Dropout"
  if p == nil then p = 0.5 end
  checks.number_in(fn, "p", p, 0, 1)
  opts = checks.options(fn, opts, { rng = true })
  self.p = p
  self.rng = checks.rng(fn, "rng", opts.rng, true) or collapse.rng(0)
  -- own buffers (_y, _gx) apart from output/grad_input, which may be borrowed tensors (the input
  -- after an identity forward) that must never be written
  self._outputs = { "output", "grad_input", "mask", "_y", "_gx" }
end

function Dropout:describe() return ("nn.Dropout(p=%g)"):format(self.p) end

-- true when this forward is the identity (nothing drawn, no mask kept)
local function identity(self) return not self.training or self.p == 0 end

function Dropout:forward(x)
  if identity(self) then
    checks.tensor("Dropout.forward", "input", x)
    self.output, self._identity = x, true
    return x
  end
  self._y, self.mask = core.dropout_forward(x, self._y or false, self.mask or false, self.p, self.rng)
  self.output, self._identity = self._y, false
  return self._y
end

--- grad_input = grad_output * mask of the last forward (grad_output itself after an identity
-- forward); nil when need_input_grad == false.
function Dropout:backward(_, gy, need_input_grad)
  self:need_forward("Dropout.backward")
  if need_input_grad == false then return nil end
  if self._identity then
    self.grad_input = gy
    return gy
  end
  self._gx = core.dropout_backward(gy, self._gx or false, self.mask)
  self.grad_input = self._gx
  return self._gx
end

return Dropout
