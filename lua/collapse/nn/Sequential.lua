--- nn.Sequential{m1, m2, ...}: modules applied in turn.
-- forward/backward run the whole loop inside ONE xpcall (a failing module is named with its index
-- and describe(), the original error's traceback is kept). Fusions are offered by the modules
-- themselves (m:fuse_with(next) returns a step object covering both, or nil): Sequential knows no
-- class pairs. backward(x, gy, need_input_grad): the model's input gradient only when
-- need_input_grad == true (else the first module skips it and backward returns nil).
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Sequential = class("nn.Sequential", Module)

function Sequential:init(modules)
  if type(modules) ~= "table" then checks.fail("Sequential", "expected a table of modules, got %s", type(modules)) end
  local list = {}
  for i, m in ipairs(modules) do
    if type(m) ~= "table" or type(m.forward) ~= "function" then
      checks.fail("Sequential", "entry %d is not a module (got %s)", i, type(m))
    end
    list[i] = m
  end
  self.modules, self._inputs, self._steps = list, {}, {}
end

function Sequential:describe()
  local lines = { "nn.Sequential {" }
  for i, m in ipairs(self.modules) do
    lines[#lines + 1] = ("  (%d) %s"):format(i, tostring(m):gsub("\n", "\n  "))
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

function Sequential:get(i) return self.modules[i] end
function Sequential:add(m) self.modules[#self.modules + 1] = m; return self end
function Sequential:size() return #self.modules end

-- The loops run inside xpcall; self._at is the index of the module running (for the message).
local function forward_loop(self, x, last)
  local mods, inputs, steps = self.modules, self._inputs, self._steps
  local i = 1
  while i <= last do
    local m = mods[i]
    self._at = i
    inputs[i] = x
    local step = i < last and m:fuse_with(mods[i + 1]) or false
    steps[i] = step
    if step then
      inputs[i + 1] = false -- the fused pair's intermediate output is never materialised
      x = step:forward(x)
      i = i + 2
    else
      x = m:forward(x)
      i = i + 1
    end
  end
  return x
end

local function backward_loop(self, gy, need_input_grad)
  local mods, inputs, steps = self.modules, self._inputs, self._steps
  local i = #mods
  while i >= 1 do
    local step = i >= 2 and steps[i - 1] or false
    local first = step and i - 1 or i
    self._at = first
    local need = first > 1 or need_input_grad
    if step then gy = step:backward(inputs[first], gy, need)
    else gy = mods[i]:backward(inputs[i], gy, need) end
    i = first - 1
  end
  if not need_input_grad then return nil end -- whatever a first module without the option gave
  return gy
end

-- The xpcall handler: the error, the user's line and the traceback at the point of failure.
local function handler(err)
  return { err = err, where = checks.where(), traceback = debug.traceback(tostring(err), 2) }
end

local function rethrow(self, phase, e)
  local m = self.modules[self._at]
  local msg = tostring(e.err):gsub("^[^\n]-:%d+: ", "", 1) -- the position goes in front, once
  error(("%sSequential: module %d (%s) failed in %s: %s\n%s"):format(e.where, self._at,
    m and m:describe() or "?", phase, msg, e.traceback), 0)
end

function Sequential:forward(x)
  local ok, out = xpcall(forward_loop, handler, self, x, #self.modules)
  if not ok then rethrow(self, "forward", out) end
  self.output = out
  return out
end

--- Backpropagates gy through every module (after forward(x); re-runs it for another x).
function Sequential:backward(x, gy, need_input_grad)
  checks.method("Sequential.backward", self, "model:backward(x, grad_output)")
  if self._inputs[1] ~= x then self:forward(x) end
  local ok, g = xpcall(backward_loop, handler, self, gy, need_input_grad == true)
  if not ok then rethrow(self, "backward", g) end
  self.grad_input = g
  return g
end

--- The final Linear (the classifier whose input the collapse analysis looks at).
function Sequential:classifier()
  local last = self.modules[#self.modules]
  if not (last and class.is(last, require("collapse.nn.Linear"))) then
    checks.fail("classifier", "the last module of the Sequential is %s, not an nn.Linear",
      last and last:describe() or "missing")
  end
  return last
end

--- Output of every layer but the final Linear: the features the classifier sees.
function Sequential:features(x)
  self:classifier()
  local ok, out = xpcall(forward_loop, handler, self, x, #self.modules - 1)
  if not ok then rethrow(self, "forward", out) end
  return out
end

function Sequential:parameters()
  local out = {}
  for i, m in ipairs(self.modules) do
    for _, p in ipairs(m:parameters()) do
      out[#out + 1] = { name = i .. "." .. p.name, value = p.value, grad = p.grad, decay = p.decay,
        requires_grad = p.requires_grad, module = p.module or m, key = p.key }
    end
  end
  return out
end

function Sequential:buffers()
  local out = {}
  for i, m in ipairs(self.modules) do
    for _, b in ipairs(m:buffers()) do out[#out + 1] = { name = i .. "." .. b.name, value = b.value } end
  end
  return out
end

function Sequential:train()
  self.training = true
  for _, m in ipairs(self.modules) do m:train() end
  return self
end

function Sequential:evaluate()
  self.training = false
  for _, m in ipairs(self.modules) do m:evaluate() end
  return self
end

function Sequential:to(dtype)
  checks.float_dtype("Sequential.to", "dtype", dtype)
  for _, m in ipairs(self.modules) do m:to(dtype) end
  self.output, self.grad_input = nil, nil
  return self
end

--- Modules of a class anywhere in the container (e.g. model:find(nn.BatchNorm)).
function Sequential:find(cls)
  local out = {}
  for _, m in ipairs(self.modules) do if getmetatable(m) == cls then out[#out + 1] = m end end
  return out
end

return Sequential
