--- collapse.optim: SGD, Adam (coupled L2, the paper's choice), AdamW (decoupled), with PyTorch
-- semantics, as Lua objects over the pure C update rules of csrc/optim; LR schedules.
local collapse = require("collapse")
local core = require("collapse.core")

local optim = {}

local function fail(fn, msg, ...) error(("%s: " .. msg):format(fn, ...), 3) end

local function number_in(fn, name, v, lo, hi, open_hi)
  if type(v) ~= "number" or v ~= v or v < lo or (open_hi and v >= hi) or (not open_hi and v > hi) then
    fail(fn, "%s must be a number in [%g, %g%s, got %s", name, lo, hi, open_hi and ")" or "]", tostring(v))
  end
end

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
          if not allowed[k] then fail(fn, "group %d: unknown option '%s'", gi, tostring(k)) end
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
      if type(p) ~= "table" or not collapse.is_tensor(p.value) or not collapse.is_tensor(p.grad) then
        fail(fn, "group %d, parameter %d is not a {value =, grad =} entry of model:parameters()", gi, pi)
      end
    end
  end
  return groups
end

local Optimizer = {}
Optimizer.__index = Optimizer

local function new_optimizer(cls, fn, params, opts, defaults)
  if opts ~= nil and type(opts) ~= "table" then fail(fn, "options must be a table, got %s", type(opts)) end
  opts = opts or {}
  for k in pairs(opts) do
    if defaults[k] == nil then fail(fn, "unknown option '%s'", tostring(k)) end
  end
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

-- The option value for group g (its own, else the optimiser's).
local function opt(g, k, self)
  local v = rawget(g, k)
  if v == nil then return self[k] end
  return v
end

function Optimizer:zero_grad()
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do p.grad:fill(0) end
  end
end

function Optimizer:parameters()
  local out = {}
  for _, g in ipairs(self.groups) do for _, p in ipairs(g.params) do out[#out + 1] = p end end
  return out
end

--- Optimiser state (step count, per-parameter buffers) as a checkpointable table.
function Optimizer:state()
  local s = { step_count = self.step_count, lr = self.lr, params = {} }
  local i = 0
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do
      i = i + 1
      local ps = self.param_state[p.value]
      if ps then
        local copy = {}
        for k, v in pairs(ps) do copy[k] = collapse.is_tensor(v) and v:clone() or v end
        s.params[i] = copy
      else
        s.params[i] = false
      end
    end
  end
  return s
end

function Optimizer:load_state(s)
  if type(s) ~= "table" or type(s.params) ~= "table" then error("load_state: optimiser state table expected", 2) end
  self.step_count = s.step_count or 0
  self.lr = s.lr or self.lr
  local i = 0
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do
      i = i + 1
      local ps = s.params[i]
      if ps then
        local copy = {}
        for k, v in pairs(ps) do copy[k] = collapse.is_tensor(v) and v:clone() or v end
        self.param_state[p.value] = copy
      else
        self.param_state[p.value] = nil
      end
    end
  end
  if i ~= #s.params then error(("load_state: state has %d parameters, optimiser has %d"):format(#s.params, i), 2) end
  return self
end

-- SGD ------------------------------------------------------------------------------------------
local SGD = setmetatable({}, { __index = Optimizer })
SGD.__index = SGD

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

function SGD:step(opts)
  local zero = zero_flag("SGD.step", opts)
  self.step_count = self.step_count + 1
  for _, g in ipairs(self.groups) do
    local lr, mom, damp = opt(g, "lr", self), opt(g, "momentum", self), opt(g, "dampening", self)
    local nest, wd = opt(g, "nesterov", self), opt(g, "weight_decay", self)
    for _, p in ipairs(g.params) do
      local st = self.param_state[p.value]
      if not st then
        st = { first = true }
        if mom ~= 0 then st.momentum_buffer = core.zeros(p.value:shape(), p.value:dtype()) end
        self.param_state[p.value] = st
      end
      core.sgd_step(p.value, p.grad, st.momentum_buffer, st.first, lr, mom, damp, nest and true or false,
        p.decay == false and 0 or wd, zero)
      st.first = false
    end
  end
end

-- Adam / AdamW ------------------------------------------------------------------------------------
local Adam = setmetatable({}, { __index = Optimizer })
Adam.__index = Adam

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

function Adam:step(opts)
  local zero = zero_flag(self.name .. ".step", opts)
  self.step_count = self.step_count + 1
  for _, g in ipairs(self.groups) do
    local lr, betas, eps, wd = opt(g, "lr", self), opt(g, "betas", self), opt(g, "eps", self), opt(g, "weight_decay", self)
    for _, p in ipairs(g.params) do
      local st = self.param_state[p.value]
      if not st then
        st = { step = 0, exp_avg = core.zeros(p.value:shape(), p.value:dtype()),
          exp_avg_sq = core.zeros(p.value:shape(), p.value:dtype()) }
        self.param_state[p.value] = st
      end
      st.step = st.step + 1
      core.adam_step(p.value, p.grad, st.exp_avg, st.exp_avg_sq, st.step, lr, betas[1], betas[2], eps,
        p.decay == false and 0 or wd, self.decoupled, zero)
    end
  end
end

-- Schedules ----------------------------------------------------------------------------------------
-- A schedule remembers the initial lr of the optimiser and of each group, and sets
-- lr = initial * factor(epoch) at every :step() (call once per epoch, after training it).
local function new_schedule(optimizer, factor, fn)
  if type(optimizer) ~= "table" or type(optimizer.step) ~= "function" then fail(fn, "first argument must be an optimiser") end
  local s = { optimizer = optimizer, epoch = 0, factor = factor, base = optimizer.lr, group_base = {} }
  for i, g in ipairs(optimizer.groups) do s.group_base[i] = rawget(g, "lr") end
  s.step = function(self)
    self.epoch = self.epoch + 1
    local f = self.factor(self.epoch)
    self.optimizer.lr = self.base * f
    for i, g in ipairs(self.optimizer.groups) do
      if self.group_base[i] then rawset(g, "lr", self.group_base[i] * f) end
    end
    return self.optimizer.lr
  end
  s.get_lr = function(self) return self.optimizer.lr end
  return s
end

--- optim.MultiStepLR(opt, {milestones = {...}, gamma = 0.1}): lr x gamma at each milestone epoch.
function optim.MultiStepLR(optimizer, opts)
  local fn = "MultiStepLR"
  if type(opts) ~= "table" or type(opts.milestones) ~= "table" then fail(fn, "milestones (a list of epochs) required") end
  local gamma = opts.gamma or 0.1
  number_in(fn, "gamma", gamma, 0, math.huge)
  local ms = {}
  for i, m in ipairs(opts.milestones) do
    if math.type(m) ~= "integer" or m < 1 then fail(fn, "milestone %d must be a positive integer", i) end
    ms[i] = m
  end
  return new_schedule(optimizer, function(epoch)
    local k = 0
    for _, m in ipairs(ms) do if epoch >= m then k = k + 1 end end
    return gamma ^ k
  end, fn)
end

--- optim.CosineLR(opt, {T_max = n, eta_min = 0}): cosine annealing over T_max epochs.
function optim.CosineLR(optimizer, opts)
  local fn = "CosineLR"
  if type(opts) ~= "table" or math.type(opts.T_max) ~= "integer" or opts.T_max < 1 then
    fail(fn, "T_max must be a positive integer")
  end
  local eta_min = opts.eta_min or 0
  local base = optimizer.lr
  return new_schedule(optimizer, function(epoch)
    local e = math.min(epoch, opts.T_max)
    return (eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / opts.T_max)) / 2) / base
  end, fn)
end

--- The paper's schedule: x0.1 at 25%, 50% and 75% of the epochs.
function optim.paper_schedule(optimizer, epochs)
  local ms = {}
  for _, f in ipairs({ 0.25, 0.5, 0.75 }) do
    local m = math.max(1, math.floor(epochs * f + 0.5))
    if #ms == 0 or m > ms[#ms] then ms[#ms + 1] = m end
  end
  return optim.MultiStepLR(optimizer, { milestones = ms, gamma = 0.1 })
end

return optim
