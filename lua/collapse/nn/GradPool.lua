--- The input-gradient buffers of one backward pass, shared along a model (internal to nn).
-- An input gradient is dead once the module before it has consumed it, so a pass needs a few
-- buffers (about four for a ResNet block), not one per module. The top-level nn.Sequential owns
-- a pool and lends it, for the duration of one child's backward, to nested Sequential and
-- Residual modules (field _grad_pool; false = "do not share", nil = "no parent: decide
-- yourself"). A buffer is lent to one field of one module (conv.grad_input, res._fused_g, ...)
-- and released when the pass moves on: the release clears that field, so no module keeps a
-- reference to a buffer that another module may overwrite (a later standalone call makes its
-- own buffer, as before).
-- Tensors have no __eq metamethod, so == on them is identity, in pure Lua (no call into C on the
-- hot path, docs/architecture.md); dtypes come from the pool's own records where it can.
local core = require("collapse.core")

local GradPool = {}
GradPool.__index = GradPool

function GradPool.new()
  return setmetatable({ all = {}, free = {}, busy = {}, user = {}, field = {},
    known = setmetatable({}, { __mode = "k" }) }, GradPool)
end

--- A buffer not in use, of dtype (a [0] tensor the first time: the kernels resize what they are
-- given and keep its capacity), lent to user[field].
function GradPool:acquire(dtype, user, field)
  local list = self.free[dtype]
  local t = list and list[#list]
  if t then list[#list] = nil
  else
    t = core.zeros({ 0 }, dtype)
    self.all[#self.all + 1] = t
  end
  self.busy[t], self.user[t], self.field[t] = dtype, user, field
  user[field] = t
  return t
end

--- The dtype of gradient t: a pool buffer's record, else asked once per tensor (the loss's
-- gradient tensor is the same object every step).
function GradPool:dtype_of(t)
  local dt = self.busy[t] or self.known[t]
  if not dt then
    dt = t:dtype()
    self.known[t] = dt
  end
  return dt
end

--- Gives t back (nil, a tensor not of this pool or one already free: nothing) and clears the
-- field it was lent to when that still holds it.
function GradPool:release(t)
  local dtype = t ~= nil and self.busy[t]
  if not dtype then return end
  local user, field = self.user[t], self.field[t]
  if user[field] == t then user[field] = nil end
  self.busy[t], self.user[t], self.field[t] = nil, nil, nil
  local list = self.free[dtype]
  if not list then list = {}; self.free[dtype] = list end
  list[#list + 1] = t
end

--- Lends the busy buffer t to user[field] instead (the old field is cleared when it still holds
-- t): a module that writes its result in place into a buffer it was given (nn.Residual).
function GradPool:transfer(t, user, field)
  local old, f = self.user[t], self.field[t]
  if old[f] == t then old[f] = nil end
  self.user[t], self.field[t] = user, field
  user[field] = t
end

--- Every buffer free again (the start of a top-level backward; also undoes a pass that failed).
function GradPool:reset()
  local all = self.all
  for i = 1, #all do self:release(all[i]) end -- a numeric loop: ipairs is a call into C
end

--- Number of buffers and their bytes (the capacity the kernels grew them to, read as numel of
-- the last shape: a lower bound; tests and docs use it to show the sharing).
function GradPool:stats()
  local bytes = 0
  for _, t in ipairs(self.all) do bytes = bytes + t:numel() * (t:dtype() == "float64" and 8 or 4) end
  return { buffers = #self.all, bytes = bytes }
end

--- One child's backward with pool buffers: m (or the fused step `step` that starts with m) gets
-- a buffer as m.grad_input unless its class says it needs none (m.pooled_grad_input == false:
-- Sequential, Residual, Flatten, Identity, Dropout), and the pool as m._grad_pool. gy_buf is
-- the pool buffer behind gy when the caller gives it up: a container (Sequential, Residual:
-- m.grad_pool_container) may overwrite or release it (m._grad_gy). Returns gx and the pool
-- buffer holding it, which the caller now owns (nil: gx is gy, a view of gy, nil, or the
-- module's own tensor); the caller releases gy_buf unless it is that buffer.
function GradPool:backward(m, step, x, gy, need, gy_buf)
  local buf = nil
  if need and m.pooled_grad_input ~= false then buf = self:acquire(self:dtype_of(gy), m, "grad_input") end
  m._grad_pool = self
  if m.grad_pool_container then m._grad_gy = gy_buf end
  local gx
  if step then gx = step:backward(x, gy, need) else gx = m:backward(x, gy, need) end
  m._grad_pool, m._grad_gy = nil, nil
  local owner = m._grad_owner -- a container's: the buffer its result ended in
  m._grad_owner = nil
  if buf then
    if gx == buf then owner = buf else self:release(buf) end
  end
  return gx, owner
end

return GradPool
