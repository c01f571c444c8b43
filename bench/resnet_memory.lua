-- Where the memory of a ResNet18 training step goes (bench workload e without its inputs):
--   scripts/lua bench/resnet_memory.lua [WIDTH=16] [share|own]
-- Builds models.resnet18{width, last_bn = true} (float32), runs two SGD steps on a random
-- 128 x 3 x 32 x 32 batch and prints the peak resident set (VmHWM) after the model, the forward
-- and the backward of each step, then the bytes of the tensors the modules keep, by field, and
-- the shared gradient pool (docs/nn-buffers.md). "own": share_grads = false (one buffer per
-- module, the path before sharing). COLLAPSE_DNNL=0 shows oneDNN's part.
local collapse = require("collapse")
local nn, optim, core = collapse.nn, collapse.optim, collapse.core
local checks = require("collapse.checks")

local width, mode = tonumber(arg[1] or 16), arg[2] or "share"
assert(mode == "share" or mode == "own", "mode must be share or own, got " .. mode)
local function mb(kb) return ("%.0f MB"):format(kb / 1024) end
local g = collapse.rng(1)
local model = collapse.models.resnet18{ classes = 10, width = width, last_bn = true, rng = g }
model.share_grads = mode == "share"
local x = collapse.randn({ 128, 3, 32, 32 }, { rng = g })
local labels = {}
for i = 1, 128 do labels[i] = i % 10 + 1 end
local y = collapse.tensor(labels, "int32")
local opt = optim.SGD(model:parameters(), { lr = 0.01, momentum = 0.9, weight_decay = 5e-4 })
local crit = nn.CrossEntropyLoss()
print("peak after the model", mb(core.peak_rss_kb()))
for s = 1, 2 do
  crit:forward(model:forward(x), y)
  print(("step %d: peak after forward  %s"):format(s, mb(core.peak_rss_kb())))
  model:backward(x, crit.grad, false)
  opt:step{ zero_grad = true }
  print(("step %d: peak after backward %s"):format(s, mb(core.peak_rss_kb())))
end

-- distinct tensors the modules hold, by field name (nested Sequential / Residual walked)
local seen, by = {}, {}
local function walk(m)
  for k, v in pairs(m) do
    if checks.is_tensor(v) and not seen[v] then
      seen[v] = true
      by[k] = (by[k] or 0) + v:numel() * (v:dtype() == "float64" and 8 or 4)
    end
  end
  for _, c in ipairs(m.modules or {}) do walk(c) end
  if m.body then walk(m.body) end
  if m.shortcut then walk(m.shortcut) end
end
walk(model)
local keys = {}
for k, b in pairs(by) do if b >= 2^20 / 10 then keys[#keys + 1] = k end end
table.sort(keys, function(a, b) return by[a] > by[b] end)
for _, k in ipairs(keys) do print(("  %-12s %7.1f MB"):format(k, by[k] / 2^20)) end
local st = model:grad_buffer_stats()
print(("gradient pool: %d buffers, %.1f MB"):format(st.buffers, st.bytes / 2^20))
