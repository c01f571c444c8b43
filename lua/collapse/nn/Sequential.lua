--- nn.Sequential{m1, m2, ...}: modules applied in turn.
-- forward/backward run the whole loop inside ONE xpcall (a failing module is named with its index
-- and describe(), the original error's traceback is kept). Fusions are offered by the modules
-- themselves (m:fuse_with(next) returns a step object covering both, or nil): Sequential knows no
-- class pairs. backward(x, gy, need_input_grad): the model's input gradient only when
-- need_input_grad == true (else the first module skips it and backward returns nil).
-- Input-gradient buffers are shared along the backward pass (nn.GradPool, docs/nn-buffers.md):
-- the top-level Sequential owns a pool and lends it to nested Sequential / Residual modules, so
-- an inner module's grad_input is only valid until the pass moves on (it is nil after it); the
-- returned gradient stays valid until the next backward. nn.Sequential(modules,
-- {share_grads = false}) keeps one buffer per module, for itself and every module inside it.
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")
local GradPool = require("collapse.nn.GradPool")

local Sequential = class("nn.Sequential", Module)

-- A parent lends its pool to a Sequential (GradPool:backward), which acquires its own buffers
-- from it: it needs no grad_input buffer of its own.
Sequential.pooled_grad_input, Sequential.grad_pool_container = false, true

function Sequential:init(modules, opts)
  opts = checks.options("Sequential", opts, { share_grads = true })
  if opts.share_grads ~= nil and type(opts.share_grads) ~= "boolean" then
    checks.fail("Sequential", "share_grads must be a boolean, got %s", checks.show(opts.share_grads))
  end
  self.share_grads = opts.share_grads ~= false
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

-- Without a pool: every module keeps its own buffer (nested containers are told so by
-- _grad_pool = false, the share_grads = false of the top level applying inside it too).
local function backward_own(self, gy, need_input_grad)
  local mods, inputs, steps = self.modules, self._inputs, self._steps
  local i = #mods
  while i >= 1 do
    local step = i >= 2 and steps[i - 1] or false
    local first = step and i - 1 or i
    self._at = first
    local need = first > 1 or need_input_grad
    local m = mods[first]
    m._grad_pool = false
    if step then gy = step:backward(inputs[first], gy, need)
    else gy = m:backward(inputs[i], gy, need) end
    m._grad_pool = nil
    i = first - 1
  end
  if not need_input_grad then return nil end -- whatever a first module without the option gave
  return gy
end

-- With a pool: each module writes its input gradient into a buffer of the pool; the buffer of
-- the gradient it consumed goes back to the pool once the next one exists. held is the buffer
-- behind gy that this Sequential may overwrite: at first the one its caller gave up (_grad_gy).
local function backward_pooled(self, gy, need_input_grad, pool)
  local mods, inputs, steps = self.modules, self._inputs, self._steps
  local held = self._grad_gy
  local i = #mods
  while i >= 1 do
    local step = i >= 2 and steps[i - 1] or false
    local first = step and i - 1 or i
    self._at = first
    local owner
    gy, owner = pool:backward(mods[first], step, inputs[first], gy, first > 1 or need_input_grad, held)
    if owner then
      if owner ~= held then pool:release(held) end
      held = owner
    end
    i = first - 1
  end
  if not need_input_grad then
    pool:release(held)
    return nil
  end
  return gy, held
end

local function backward_loop(self, gy, need_input_grad, pool)
  if pool then return backward_pooled(self, gy, need_input_grad, pool) end
  return backward_own(self, gy, need_input_grad)
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

-- The pool fields that a failed pass may have left on the modules inside (Sequential, Residual).
local function clear_lent(m)
  m._grad_pool, m._grad_owner, m._grad_gy = nil, nil, nil
  if type(m.modules) == "table" then for _, c in ipairs(m.modules) do clear_lent(c) end end
  if type(m.body) == "table" then clear_lent(m.body) end
  if type(m.shortcut) == "table" then clear_lent(m.shortcut) end
end

--- Backpropagates gy through every module (after forward(x); re-runs it for another x).
-- At the top level (no parent lent a pool) the returned gradient lives in this model's pool and
-- stays valid until its next backward; nested, the buffer holding it goes to the parent.
function Sequential:backward(x, gy, need_input_grad)
  checks.method("Sequential.backward", self, "model:backward(x, grad_output)")
  if self._inputs[1] ~= x then self:forward(x) end
  local pool, nested = self._grad_pool, self._grad_pool ~= nil
  if not nested and self.share_grads then
    pool = self._own_pool or GradPool.new()
    self._own_pool = pool
    pool:reset() -- the last pass's result (and a failed pass's buffers) given back
  end
  local ok, g, held = xpcall(backward_loop, handler, self, gy, need_input_grad == true, pool)
  if not ok then
    if not nested then clear_lent(self) end -- a failed pass leaves no module believing it is nested
    rethrow(self, "backward", g)
  end
  if nested then self._grad_owner = held end
  self.grad_input = (not (nested and pool)) and g or nil -- a nested pooled gradient is its parent's
  return g
end

--- The last module's spare output (Module:spare_output) when it ran alone (not the second
-- module of a fused pair, whose output belongs to the pair).
function Sequential:spare_output()
  local n = #self.modules
  if n == 0 or (n >= 2 and self._steps[n - 1]) then return nil end
  local m = self.modules[n]
  return m.spare_output and m:spare_output() or nil -- a module not derived from nn.Module may lack it
end

--- Bytes and number of the shared input-gradient buffers of this (top-level) model's pool:
-- {buffers = n, bytes = b}, zeros before the first backward or with share_grads = false.
function Sequential:grad_buffer_stats()
  if not self._own_pool then return { buffers = 0, bytes = 0 } end
  return self._own_pool:stats()
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
  self.output, self.grad_input, self._own_pool = nil, nil, nil
  return self
end

--- Modules of a class anywhere in the container (e.g. model:find(nn.BatchNorm)).
function Sequential:find(cls)
  local out = {}
  for _, m in ipairs(self.modules) do if getmetatable(m) == cls then out[#out + 1] = m end end
  return out
end

return Sequential
