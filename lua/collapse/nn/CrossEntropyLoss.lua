--- nn.CrossEntropyLoss(): mean cross-entropy of logits [n x C] against labels 1..C (an int32
-- tensor, or a Lua array of integers), by the fused stable log-softmax kernel
-- collapse_cross_entropy, which also yields the gradient (crit.grad).
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local CrossEntropyLoss = class("nn.CrossEntropyLoss", Module)

function CrossEntropyLoss:forward(logits, labels)
  checks.method("CrossEntropyLoss.forward", self, "crit:forward(logits, labels)")
  if labels ~= self._labels_in then -- the same labels object as last time needs no new check
    -- a Lua array is checked here against the logits' classes (1-based indices in the message);
    -- a label tensor goes to the kernel, which checks its range
    self._labels = checks.labels("CrossEntropyLoss.forward", labels, function()
      return checks.is_tensor(logits) and logits:dim() == 2 and logits:size(2) or nil
    end)
    self._labels_in = labels
  end
  self.loss, self.grad = core.cross_entropy(logits, self._labels, self.grad or false)
  self._logits = logits
  return self.loss
end

--- The gradient of the last forward (re-run for other logits or labels).
function CrossEntropyLoss:backward(logits, labels)
  checks.method("CrossEntropyLoss.backward", self, "crit:backward(logits, labels)")
  if logits == nil and self._logits == nil then checks.fail("CrossEntropyLoss.backward", "call forward first") end
  if logits ~= self._logits or labels ~= self._labels_in then self:forward(logits, labels) end
  return self.grad
end

function CrossEntropyLoss:to() return self end

return CrossEntropyLoss
