--- nn.Flatten(): [N x ...] -> [N x rest] as a view (no copy); backward reshapes the gradient back.
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Flatten = class("nn.Flatten", Module)
Flatten.pooled_grad_input = false -- its gradient is a view of grad_output (a sharing Sequential lends no buffer)

function Flatten:forward(x)
  checks.tensor("Flatten.forward", "input", x)
  self.output = x:reshape({ x:size(1), -1 })
  return self.output
end

function Flatten:backward(x, gy)
  self.grad_input = gy:reshape(x:shape())
  return self.grad_input
end

return Flatten
