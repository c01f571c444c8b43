--- nn.Identity(): y = x (a placeholder, e.g. a shortcut without projection).
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")
local checks = require("collapse.checks")

local Identity = class("nn.Identity", Module)
Identity.pooled_grad_input = false -- its gradient is grad_output itself (a sharing Sequential lends no buffer)

-- Checked like every other module's input, so a nil or a table is an error here rather than a
-- confusing one in the module after it.
function Identity:forward(x)
  checks.tensor("Identity:forward", "input", x)
  self.output = x
  return x
end

function Identity:backward(_, gy)
  checks.tensor("Identity:backward", "grad_output", gy)
  self.grad_input = gy
  return gy
end

return Identity
