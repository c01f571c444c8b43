--- collapse.optim: SGD, Adam (coupled L2, the paper's choice), AdamW (decoupled), with PyTorch
-- semantics, over the fused C steps of csrc/optim (one call per parameter group and step, as
-- PyTorch's foreach optimisers); LR schedules.
-- The tensors of each group are prepared once into a C param list (core.param_list) and rebuilt
-- only when the group's parameters or the optimiser state change (load_state), so opt:step() and
-- opt:zero_grad() are one call into C each (opt:step{zero_grad = true}: one for both).
local collapse = require("collapse")
local core = require("collapse.core")
local checks = require("collapse.checks")
local Module = require("collapse.nn.Module") -- Module.freeze_version: frozen parameters changed

local optim = {}
local fail, number_in = checks.fail, checks.number_in

-- Normalises params into groups: a parameter list (model:parameters()) or a list of
-- {params = list, lr =, weight_decay =, ...} tables.
local function make_groups(fn, params, allowed)
  if type(params) ~= "table" or #params == 0 then
    fail(fn, "params must be a non-empty list of parameters (model:parameters()) or of groups")
  end
  local groups = {}
  if params[1].params then
    for gi, g in ipairs(params) do
      if type(g.params) ~= "table" then fail(fn, "group %d has no params list", gi) end
      local group = { params = g.params }
      for k, v in pairs(g) do
        if k ~= "params" then
          if allowed[k] == nil then fail(fn, "group %d: unknown option '%s'", gi, tostring(k)) end
          group[k] = v
        end
      end
      groups[gi] = group
    end
  else
    groups[1] = { params = params }
  end
  for gi, g in ipairs(groups) do
    for pi, p in ipairs(g.params) do
      if type(p) ~= "table" or not checks.is_tensor(p.value) or not checks.is_tensor(p.grad) then
        fail(fn, "group %d, parameter %d is not a {value =, grad =} entry of model:parameters()", gi, pi)
      end
    end
  end
  return groups
end

local Optimizer = { __collapse_object = true }
Optimizer.__index = Optimizer

local function new_optimizer(cls, fn, params, opts, defaults)
  opts = checks.options(fn, opts, defaults)
  local self = setmetatable({ name = fn, step_count = 0 }, cls)
  for k, def in pairs(defaults) do
    local v = opts[k]
    if v == nil then v = def end
    self[k] = v
  end
  if self.lr == nil then fail(fn, "lr is required") end
  self.groups = make_groups(fn, params, defaults)
  self.param_state = {}
  self:_validate(self, fn)
  for gi, g in ipairs(self.groups) do self:_validate(setmetatable(g, { __index = self }), fn .. " group " .. gi) end
  return self
end

-- The option value for group g: its own, else the optimiser's (each group's metatable falls back
-- to the optimiser, set by new_optimizer), read without a call into C: it runs on every step.
local function opt(g, k) return g[k] end

-- A parameter the optimiser updates: not frozen (PyTorch's requires_grad). The module's live flag
-- when the entry names its module (m:freeze after the optimiser was made), else the entry's own.
local function trainable(p)
  local m, key = p.module, p.key
  if m ~= nil and key ~= nil and type(m.requires_grad) == "function" then return m:requires_grad(key) end
  return p.requires_grad ~= false
end

-- Adds parameter p of group g (weight decay wd) to the list of its step count (made when new).
local function add_param(self, g, p, wd, by_step, lists)
  local st = self.param_state[p.value]
  if not st then st = self:_new_state(p, g); self.param_state[p.value] = st end
  local key = st.step or 0
  local l = by_step[key]
  if not l then
    l = { step = key, params = {}, x = {}, g = {}, a = {}, b = {}, wd = {}, ready = {} }
    by_step[key] = l
    lists[#lists + 1] = l
  end
  local i = #l.params + 1
  l.params[i], l.x[i], l.g[i], l.wd[i] = p, p.value, p.grad, p.decay == false and 0 or wd
  l.a[i], l.b[i], l.ready[i] = self:_state_tensors(st)
end

-- The C param lists of every group (g._lists: one per distinct step count, normally one) and of
-- all trainable gradients (self._grads), made when missing or stale (groups, weight decay or
-- frozen parameters changed). _new_state(p) makes a parameter's state.
local function prepare(self)
  local all = {}
  local version = Module.freeze_version
  for _, g in ipairs(self.groups) do
    local wd = opt(g, "weight_decay", self)
    if g._lists == nil or g._n ~= #g.params or g._wd ~= wd or g._fv ~= version then
      local by_step, lists = {}, {}
      for _, p in ipairs(g.params) do
        if trainable(p) then add_param(self, g, p, wd, by_step, lists) end -- frozen: no update, no decay
      end
      for _, l in ipairs(lists) do
        l.list = core.param_list(l.x, l.g, l.a, l.b, l.wd, l.ready)
        l.x, l.g, l.a, l.b = nil, nil, nil, nil
      end
      g._lists, g._n, g._wd, g._fv = lists, #g.params, wd, version
      self._grads = nil
    end
    for _, p in ipairs(g.params) do
      if trainable(p) then all[#all + 1] = p.grad end
    end
  end
  if not self._grads then self._grads, self._fv = core.param_list(all, all, nil, nil, {}), version end
end

-- Forget the prepared lists (after the state or the groups changed).
local function invalidate(self)
  for _, g in ipairs(self.groups) do g._lists = nil end
  self._grads = nil
end

-- step{zero_grad = true}: the update, then the gradients zeroed in the same pass over memory
-- (the same as step() followed by zero_grad(), one memory pass fewer).
local function zero_flag(fn, opts)
  if opts == nil then return false end
  if type(opts) ~= "table" then fail(fn, "options must be a table {zero_grad = true}, got %s", type(opts)) end
  for k in pairs(opts) do
    if k ~= "zero_grad" then fail(fn, "unknown option '%s' (zero_grad)", tostring(k)) end
  end
  return opts.zero_grad and true or false
end

--- opt:step(), opt:step{zero_grad = true}: one fused C call per group (and step count).
local function step(self, opts, fn)
  local zero = zero_flag(fn, opts)
  self.step_count = self.step_count + 1
  local groups = self.groups
  for gi = 1, #groups do
    local g = groups[gi]
    if g._lists == nil or g._n ~= #g.params or g._wd ~= opt(g, "weight_decay", self) or g._fv ~= Module.freeze_version then
      prepare(self)
    end
    local lists = g._lists
    for li = 1, #lists do
      local l = lists[li]
      l.step = l.step + 1
      self:_step(g, l, zero)
      local ps, pstate = l.params, self.param_state
      for i = 1, #ps do self:_stepped(pstate[ps[i].value], l.step) end
    end
  end
end

local function zero_grad(self)
  if not self._grads or self._fv ~= Module.freeze_version then prepare(self) end
  core.zero_grad_many(self._grads)
end

-- The public step / zero_grad of a class: the '.'-call check names the class ("Adam.step").
local function methods(cls, name)
  cls.step = function(self, opts)
    checks.method(name .. ".step", self, "opt:step()")
    return step(self, opts, name .. ".step")
  end
  cls.zero_grad = function(self)
    checks.method(name .. ".zero_grad", self, "opt:zero_grad()")
    return zero_grad(self)
  end
end

function Optimizer:parameters()
  local out = {}
  for _, g in ipairs(self.groups) do for _, p in ipairs(g.params) do out[#out + 1] = p end end
  return out
end

-- The checkpointable copy of one parameter's state (tensors cloned).
local function copy_state(ps)
  local copy = {}
  for k, v in pairs(ps) do copy[k] = checks.is_tensor(v) and v:clone() or v end
  return copy
end

--- Optimiser state (step count, per-parameter buffers) as a checkpointable table.
function Optimizer:state()
  local s = { step_count = self.step_count, lr = self.lr, params = {} }
  for i, p in ipairs(self:parameters()) do
    local ps = self.param_state[p.value]
    s.params[i] = ps and ps.started and copy_state(ps) or false -- as PyTorch: no entry before a step
  end
  return s
end

function Optimizer:load_state(s)
  if type(s) ~= "table" or type(s.params) ~= "table" then fail("load_state", "optimiser state table expected") end
  local params = self:parameters()
  if #params ~= #s.params then
    fail("load_state", "state has %d parameters, optimiser has %d", #s.params, #params)
  end
  self.step_count = s.step_count or 0
  self.lr = s.lr or self.lr
  for i, p in ipairs(params) do
    local ps = s.params[i]
    self.param_state[p.value] = ps and copy_state(ps) or nil
    if ps then self.param_state[p.value].started = true end
  end
  invalidate(self)
  return self
end

-- SGD ------------------------------------------------------------------------------------------
local SGD = setmetatable({}, { __index = Optimizer })
SGD.__index = SGD
methods(SGD, "SGD")

--- optim.SGD(params, {lr, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0})
function optim.SGD(params, opts)
  return new_optimizer(SGD, "SGD", params, opts,
    { lr = false, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0 })
end

function SGD:_validate(o, fn)
  if o.lr == false then fail(fn, "lr is required") end
  number_in(fn, "lr", o.lr, 0, math.huge)
  number_in(fn, "momentum", o.momentum, 0, math.huge)
  number_in(fn, "dampening", o.dampening, 0, 1)
  number_in(fn, "weight_decay", o.weight_decay, 0, math.huge)
  if o.nesterov and (o.momentum <= 0 or o.dampening ~= 0) then
    fail(fn, "nesterov momentum requires momentum > 0 and dampening = 0")
  end
end

-- The momentum buffer is made with the state when the group has momentum; first = no step yet.
function SGD:_new_state(p, g)
  local st = { first = true }
  if opt(g, "momentum", self) ~= 0 then st.momentum_buffer = core.zeros(p.value:shape(), p.value:dtype()) end
  return st
end
function SGD:_state_tensors(st) return st.momentum_buffer or false, false, not st.first end
function SGD:_stepped(st) st.first, st.started = false, true end

function SGD:_step(g, l, zero)
  core.sgd_step_many(l.list, opt(g, "lr", self), opt(g, "momentum", self), opt(g, "dampening", self),
    opt(g, "nesterov", self) and true or false, zero)
end

-- Adam / AdamW ------------------------------------------------------------------------------------
local Adam = setmetatable({}, { __index = Optimizer })
Adam.__index = Adam
methods(Adam, "Adam")

local function new_adam(fn, params, opts, decoupled, default_wd)
  local self = new_optimizer(Adam, fn, params, opts,
    { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = default_wd })
  self.decoupled = decoupled
  return self
end

--- optim.Adam(params, {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = 0}): L2 added
-- to the gradient (coupled), as torch.optim.Adam and the paper's experiments.
function optim.Adam(params, opts) return new_adam("Adam", params, opts, false, 0) end

--- optim.AdamW(params, {..., weight_decay = 1e-2}): decoupled weight decay (torch.optim.AdamW).
function optim.AdamW(params, opts) return new_adam("AdamW", params, opts, true, 1e-2) end

function Adam:_validate(o, fn)
  number_in(fn, "lr", o.lr, 0, math.huge)
  if type(o.betas) ~= "table" then fail(fn, "betas must be a table {beta1, beta2}") end
  number_in(fn, "betas[1]", o.betas[1], 0, 1, true)
  number_in(fn, "betas[2]", o.betas[2], 0, 1, true)
  number_in(fn, "eps", o.eps, 0, math.huge)
  number_in(fn, "weight_decay", o.weight_decay, 0, math.huge)
end

function Adam:_new_state(p)
  return { step = 0, exp_avg = core.zeros(p.value:shape(), p.value:dtype()),
    exp_avg_sq = core.zeros(p.value:shape(), p.value:dtype()) }
end
function Adam:_state_tensors(st) return st.exp_avg, st.exp_avg_sq, false end
function Adam:_stepped(st, step) st.step, st.started = step, true end

function Adam:_step(g, l, zero)
  local betas = opt(g, "betas", self)
  core.adam_step_many(l.list, l.step, opt(g, "lr", self), betas[1], betas[2], opt(g, "eps", self), self.decoupled,
    zero)
end

-- Schedules ----------------------------------------------------------------------------------------
-- A schedule remembers the initial lr of the optimiser and of each group, and sets
-- lr = lr_at(initial, epoch) for each at every :step() (call once per epoch, after training it).
-- lr_at takes the initial lr itself (not a factor of it), so an initial lr of 0 stays 0, never 0/0.
local function new_schedule(optimizer, lr_at, fn)
  if type(optimizer) ~= "table" or getmetatable(optimizer) == nil or type(optimizer.groups) ~= "table"
    or type(optimizer.step) ~= "function" then
    fail(fn, "first argument must be an optimiser (optim.SGD/Adam/AdamW), got %s", type(optimizer))
  end
  local s = { optimizer = optimizer, epoch = 0, base = optimizer.lr, group_base = {} }
  for i, g in ipairs(optimizer.groups) do s.group_base[i] = rawget(g, "lr") end
  s.step = function(self)
    checks.method(fn .. ".step", self, "sched:step()")
    self.epoch = self.epoch + 1
    self.optimizer.lr = lr_at(self.base, self.epoch)
    for i, g in ipairs(self.optimizer.groups) do
      if self.group_base[i] then rawset(g, "lr", lr_at(self.group_base[i], self.epoch)) end
    end
    return self.optimizer.lr
  end
  s.get_lr = function(self) return self.optimizer.lr end
  s.__collapse_object = true
  return s
end

--- optim.MultiStepLR(opt, {milestones = {...}, gamma = 0.1}): lr x gamma at each milestone epoch.
function optim.MultiStepLR(optimizer, opts)
  local fn = "MultiStepLR"
  opts = checks.options(fn, opts, { milestones = true, gamma = true })
  if type(opts.milestones) ~= "table" then fail(fn, "milestones (a list of epochs) required") end
  local gamma = opts.gamma or 0.1
  number_in(fn, "gamma", gamma, 0, math.huge)
  local ms = {}
  for i, m in ipairs(opts.milestones) do
    if math.type(m) ~= "integer" or m < 1 then fail(fn, "milestone %d must be a positive integer, got %s", i, tostring(m)) end
    ms[i] = m
  end
  return new_schedule(optimizer, function(base, epoch)
    local k = 0
    for _, m in ipairs(ms) do if epoch >= m then k = k + 1 end end
    return base * gamma ^ k
  end, fn)
end

--- optim.CosineLR(opt, {T_max = n, eta_min = 0}): cosine annealing over T_max epochs (PyTorch's
-- CosineAnnealingLR closed form: eta_min + (lr0 - eta_min) (1 + cos(pi e / T_max)) / 2, then
-- eta_min after T_max), for the optimiser's lr and each group's own.
function optim.CosineLR(optimizer, opts)
  local fn = "CosineLR"
  opts = checks.options(fn, opts, { T_max = true, eta_min = true })
  if math.type(opts.T_max) ~= "integer" or opts.T_max < 1 then
    fail(fn, "T_max must be a positive integer, got %s", tostring(opts.T_max))
  end
  local eta_min, T = opts.eta_min or 0, opts.T_max
  number_in(fn, "eta_min", eta_min, 0, math.huge)
  return new_schedule(optimizer, function(base, epoch)
    local e = math.min(epoch, T)
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / T)) / 2
  end, fn)
end

--- The paper's schedule: x0.1 at 25%, 50% and 75% of the epochs.
function optim.paper_schedule(optimizer, epochs)
  checks.positive_int("paper_schedule", "epochs", epochs)
  local ms = {}
  for _, f in ipairs({ 0.25, 0.5, 0.75 }) do
    local m = math.max(1, math.floor(epochs * f + 0.5))
    if #ms == 0 or m > ms[#ms] then ms[#ms + 1] = m end
  end
  return optim.MultiStepLR(optimizer, { milestones = ms, gamma = 0.1 })
end

return optim
