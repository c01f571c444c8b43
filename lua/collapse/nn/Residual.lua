--- nn.Residual{body = m, shortcut = m_or_nil}: output = body(x) + shortcut(x), the shortcut
-- being the identity when nil (a ResNet BasicBlock is Sequential{Residual{...}, ReLU}).
-- backward sums the input gradients of the two branches. parameters(), buffers(), train(),
-- evaluate(), state(), load_state() and to() recurse, with names "body.<name>" and
-- "shortcut.<name>" (e.g. "body.1.weight"). A failing branch is named in the error ("Residual:
-- body failed in forward: ..."), the inner message (and its traceback) kept.
-- The sum (and the sum of gradients) is one call into C (collapse_add_forward, csrc/nn/residual.c);
-- Residual:fuse_with(nn.ReLU) offers the sum and the ReLU after it as one step for nn.Sequential.
-- Inside a sharing nn.Sequential (a parent lent its nn.GradPool as _grad_pool) the branches'
-- input gradients and the masked gradient of the fused step are pool buffers: the mask is
-- written in place into grad_output's buffer when the parent gave it up, the sum in place into
-- a branch's buffer, the rest given back; standalone, the Residual keeps its own buffers.
local core = require("collapse.core")
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Residual = class("nn.Residual", Module)
-- A sharing parent lends it the pool, not a buffer: its sum goes in place into a branch's buffer.
Residual.pooled_grad_input, Residual.grad_pool_container = false, true

local function is_module(m) return type(m) == "table" and type(m.forward) == "function" end

function Residual:init(opts)
  local fn = "Residual"
  if type(opts) ~= "table" then checks.fail(fn, "expected a table {body = module, shortcut = module or nil}, got %s", type(opts)) end
  checks.options(fn, opts, { body = true, shortcut = true })
  if not is_module(opts.body) then checks.fail(fn, "body must be a module, got %s", type(opts.body)) end
  if opts.shortcut ~= nil and not is_module(opts.shortcut) then
    checks.fail(fn, "shortcut must be a module or nil, got %s", type(opts.shortcut))
  end
  self.body, self.shortcut = opts.body, opts.shortcut
  self._outputs = { "output", "grad_input" }
end

local function indent(s) return (s:gsub("\n", "\n  ")) end

function Residual:describe()
  return ("nn.Residual {\n  body: %s\n  shortcut: %s\n}"):format(indent(tostring(self.body)),
    self.shortcut and indent(tostring(self.shortcut)) or "identity")
end

-- The xpcall handler (as Sequential's): the error and a traceback unless the message has one.
local function handler(err)
  local msg = tostring(err)
  if not msg:find("stack traceback:", 1, true) then msg = debug.traceback(msg, 2) end
  return { msg = msg, where = checks.where() }
end

-- Runs f(...) naming `part` of self in the error if it fails; f's first two results.
local function guarded(self, part, phase, f, ...)
  local ok, out, out2 = xpcall(f, handler, ...)
  if ok then return out, out2 end
  local msg = out.msg:gsub("^[^\n]-:%d+: ", "", 1)
  error(("%sResidual: %s (%s) failed in %s: %s"):format(out.where, part, self[part]:describe():match("[^\n]*"),
    phase, msg), 0)
end

local function fwd(m, x) return m:forward(x) end
-- A branch's backward; with a pool (a sharing parent's), also the pool buffer holding its result
-- (gy_buf: the buffer behind gy that the branch may overwrite). Without one the branch is told
-- not to share (false) when the parent said so, else left to decide.
local function bwd(m, x, gy, need, pool, gy_buf)
  if pool then return pool:backward(m, nil, x, gy, need, gy_buf) end
  m._grad_pool = pool
  local gx = m:backward(x, gy, need)
  m._grad_pool = nil
  return gx
end
-- body(x) and shortcut(x) (x itself for the identity)
local function branches(self, x)
  local a = guarded(self, "body", "forward", fwd, self.body, x)
  local b = x
  if self.shortcut then b = guarded(self, "shortcut", "forward", fwd, self.shortcut, x) end
  return a, b
end

-- Where the fused step's sum goes: in place into the body's output when nothing else needs it
-- (its last module's backward reads its input: Module:spare_output), so a BasicBlock keeps no
-- buffer for the body's last BatchNorm output and another for the sum; else the Residual's own
-- buffer (field), made afresh if it last was a spare output. Only inside a Sequential (the fused
-- step): there the body runs only through the Residual, so its output is the sum until the
-- next forward; a standalone Residual's output stays its own.
local function sum_target(self, a, x, field)
  local spare = self.body.spare_output and self.body:spare_output() or nil
  if spare ~= nil and spare == a and a ~= x then
    self._spare_sum = true
    return a
  end
  if self._spare_sum then self[field], self._spare_sum = nil, false end
  return self[field] or false
end

function Residual:forward(x)
  local a, b = branches(self, x)
  self.output = core.add_forward(a, b, self.output or false)
  self._input = x
  return self.output
end

-- The sum of the branches' gradients with a pool: in place into a buffer this Residual owns (the
-- body's, the shortcut's, g's own g_buf, else a new one), the others given back; that buffer is
-- reported to the parent (_grad_owner).
local function pooled_sum(self, pool, ga, oa, gb, ob, g_buf)
  local out
  if oa and ga == oa then out = oa -- == on tensors is identity (no __eq)
  elseif ob and gb == ob then out = ob
  elseif g_buf and gb == g_buf then out = g_buf
  else out = pool:acquire(pool:dtype_of(ga), self, "grad_input") end
  core.add_forward(ga, gb, out)
  pool:transfer(out, self, "grad_input")
  if oa ~= out then pool:release(oa) end
  if ob ~= out then pool:release(ob) end
  if g_buf ~= out then pool:release(g_buf) end
  self._grad_owner = out
  return out
end

-- The input gradient of both branches for gradient g at the sum (nil when need is false; the
-- branches still accumulate their parameter gradients). g_buf: the pool buffer holding g that
-- this Residual may overwrite (nil: none). The shortcut runs last, so it may take g_buf over.
local function backward_branches(self, x, g, need, g_buf)
  local pool = self._grad_pool
  local ga, oa = guarded(self, "body", "backward", bwd, self.body, x, g, need, pool, nil)
  local gb, ob = g, nil
  if self.shortcut then
    gb, ob = guarded(self, "shortcut", "backward", bwd, self.shortcut, x, g, need, pool, g_buf)
  end
  if pool then
    if need then return pooled_sum(self, pool, ga, oa, gb, ob, g_buf) end
    pool:release(oa); pool:release(ob); pool:release(g_buf)
    return nil
  end
  if not need then return nil end
  self.grad_input = core.add_forward(ga, gb, self.grad_input or false)
  return self.grad_input
end

--- backward(x, gy, need_input_grad): grad_input = body's + shortcut's input gradient (nil when
-- need_input_grad == false). After forward(x); re-runs it for another x.
function Residual:backward(x, gy, need_input_grad)
  self:need_forward("Residual.backward")
  if self._input ~= x then self:forward(x) end
  local g_buf = self._grad_pool and gy == self._grad_gy and gy or nil
  return backward_branches(self, x, gy, need_input_grad ~= false, g_buf)
end

--- The sum and a following nn.ReLU as one step of nn.Sequential: relu(body(x) + shortcut(x)) in one
-- pass (collapse_add_relu_forward), its gradient masked in one pass (collapse_relu_mask_backward).
-- The ReLU's output field holds the step's output; nothing else of the ReLU is filled.
function Residual:fuse_with(nxt)
  local nn = package.loaded["collapse.nn"]
  if not (nn and nxt and class.is(nxt, nn.ReLU)) then return nil end
  local f = self._fused
  if not f or f.relu ~= nxt then
    local res = self
    f = { relu = nxt,
      forward = function(_, x)
        local a, b = branches(res, x)
        res._fused_y = core.add_relu_forward(a, b, sum_target(res, a, x, "_fused_y"))
        res._input, nxt.output, res.output = x, res._fused_y, nil
        return res._fused_y
      end,
      backward = function(_, x, gy, need)
        if res._input ~= x then f:forward(x) end
        local pool, g_buf = res._grad_pool, nil
        if pool then -- the mask in place into grad_output's buffer when the parent gave it up
          if gy == res._grad_gy then g_buf = gy; pool:transfer(gy, res, "_fused_g")
          else g_buf = pool:acquire(pool:dtype_of(gy), res, "_fused_g") end
        end
        res._fused_g = core.relu_mask_backward(res._fused_y, gy, res._fused_g or false)
        return backward_branches(res, x, res._fused_g, need ~= false, g_buf)
      end }
    self._fused = f
  end
  return f
end

function Residual:parameters()
  local out = {}
  for _, part in ipairs({ "body", "shortcut" }) do
    local m = self[part]
    if m then
      for _, p in ipairs(m:parameters()) do
        out[#out + 1] = { name = part .. "." .. p.name, value = p.value, grad = p.grad, decay = p.decay, module = p.module }
      end
    end
  end
  return out
end

function Residual:buffers()
  local out = {}
  for _, part in ipairs({ "body", "shortcut" }) do
    local m = self[part]
    if m then
      for _, b in ipairs(m:buffers()) do out[#out + 1] = { name = part .. "." .. b.name, value = b.value } end
    end
  end
  return out
end

function Residual:train()
  self.training = true
  self.body:train()
  if self.shortcut then self.shortcut:train() end
  return self
end

function Residual:evaluate()
  self.training = false
  self.body:evaluate()
  if self.shortcut then self.shortcut:evaluate() end
  return self
end

function Residual:to(dtype)
  checks.float_dtype("Residual.to", "dtype", dtype)
  self.body:to(dtype)
  if self.shortcut then self.shortcut:to(dtype) end
  self.output, self.grad_input, self._fused_y, self._fused_g, self._input = nil, nil, nil, nil, nil
  return self
end

return Residual
