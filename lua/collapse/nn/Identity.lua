--- nn.Identity(): y = x (a placeholder, e.g. a shortcut without projection).
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Identity = class("nn.Identity", Module)
Identity.pooled_grad_input = false -- its gradient is grad_output itself (a sharing Sequential lends no buffer)

function Identity:forward(x) self.output = x; return x end
function Identity:backward(_, gy) self.grad_input = gy; return gy end

return Identity
