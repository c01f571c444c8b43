--- nn.Module: the base class. A module has forward(x) and backward(x, grad_output,
-- need_input_grad) (returns grad_input, or nil when need_input_grad == false, and accumulates
-- the parameter gradients), parameters(), buffers(), zero_grad(), train(), evaluate(), state(),
-- load_state(), to(dtype), num_parameters(), describe(), freeze(name) / unfreeze(name) /
-- requires_grad(name).
-- Output and gradient tensors (self.output, self.grad_input, ...) are created by the first kernel
-- call and then resized in C by every later one (collapse_tensor_resize): no Lua buffer code.
local checks = require("collapse.checks")
local class = require("collapse.nn.class")

local Module = class("nn.Module")

--- Modules without options (ReLU, Tanh, Identity, Flatten, CrossEntropyLoss) take no arguments:
-- nn.CrossEntropyLoss{reduction = "sum"} is refused, not silently a mean.
function Module:init(...)
  local n = select("#", ...)
  if n > 0 then checks.fail(self.__short, "takes no arguments, got %d (%s)", n, checks.show((...))) end
end
function Module:describe() return self.__name .. "()" end
--- weight then bias when the module has them (Linear, Conv2d, an affine BatchNorm), else none.
function Module:parameters()
  local p = {}
  if self.weight then p[1] = self:param("weight", self.weight, self.weight_grad) end
  if self.bias then p[#p + 1] = self:param("bias", self.bias, self.bias_grad) end
  return p
end
function Module:buffers() return {} end
function Module:train() self.training = true; return self end
function Module:evaluate() self.training = false; return self end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p.grad:fill(0) end
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p.value:numel() end
  return n
end

--- A parameter entry of parameters(): weight decay applies (decay = true) unless told otherwise;
-- requires_grad is false for a frozen parameter (freeze). module and key (the field name in that
-- module) let an optimiser read the live flag when freeze() is called after it was made.
function Module:param(name, value, grad)
  return { name = name, value = value, grad = grad, decay = true, module = self, key = name,
    requires_grad = not (self.frozen and self.frozen[name]) }
end

-- Bumped by every freeze/unfreeze anywhere: an optimiser rebuilds its prepared lists when it
-- changed (one number compare per group and step instead of a walk over the parameters).
Module.freeze_version = 0

local function set_frozen(self, fn, name, frozen)
  checks.method(fn, type(self) == "table" and self or nil, "m:" .. fn .. "('weight')") -- no class known yet
  fn = self.__short .. "." .. fn
  if type(name) ~= "string" or not checks.is_tensor(self[name]) or not checks.is_tensor(self[name .. "_grad"]) then
    local names = {}
    for _, p in ipairs(self:parameters()) do names[#names + 1] = p.key or p.name end
    checks.fail(fn, "name must be a parameter of %s (%s), got %s", self.__name,
      #names > 0 and table.concat(names, ", ") or "it has none", checks.show(name))
  end
  self.frozen = self.frozen or {}
  self.frozen[name] = frozen or nil
  if frozen then self[name .. "_grad"]:fill(0) end -- as PyTorch's grad None: nothing stale left to apply
  Module.freeze_version = Module.freeze_version + 1
  return self
end

--- m:freeze("weight"): the parameter keeps its value (PyTorch's requires_grad = False): backward
-- computes no gradient for it (the kernel is given no gradient tensor) and the optimisers neither
-- update nor weight-decay it. m:unfreeze(name) undoes it.
function Module:freeze(name) return set_frozen(self, "freeze", name, true) end
function Module:unfreeze(name) return set_frozen(self, "unfreeze", name, false) end
function Module:requires_grad(name) return not (self.frozen and self.frozen[name]) end

--- The gradient tensors backward accumulates into: weight_grad, bias_grad, nil for a frozen (or
-- missing) parameter. Pure Lua: it runs on every backward.
function Module:live_grads()
  local gw, gb, f = self.weight_grad, self.bias_grad, self.frozen
  if f then
    if f.weight then gw = nil end
    if f.bias then gb = nil end
  end
  return gw, gb
end

--- Raises "Name.method: call forward first" unless forward has run (self.output set, or a
-- fused step ran this module's forward). For the modules whose backward uses what forward left
-- (an activation's output, BatchNorm's batch statistics); Linear, Conv2d and the pooling layers
-- compute theirs from x alone. Pure Lua: it runs on every backward.
function Module:need_forward(method)
  if self.output == nil and not self._fused_ran then checks.fail(self.__short .. "." .. method, "call forward first") end
end

--- Parameters and buffers by name, cloned (a checkpointable table of tensors).
function Module:state()
  local s = {}
  for _, p in ipairs(self:parameters()) do s[p.name] = p.value:clone() end
  for _, b in ipairs(self:buffers()) do s[b.name] = b.value:clone() end
  return s
end

local function shape_str(t) return "[" .. table.concat(t:shape(), " x ") .. "]" end

local function load_entries(s, list)
  for _, p in ipairs(list) do
    local src = s[p.name]
    if src == nil then checks.fail("load_state", "missing entry '%s'", p.name) end
    if not checks.is_tensor(src) then
      checks.fail("load_state", "entry '%s' must be a tensor of shape %s, got %s", p.name, shape_str(p.value), type(src))
    end
    local a, b = shape_str(src), shape_str(p.value)
    if a ~= b then checks.fail("load_state", "entry '%s' has shape %s, expected %s", p.name, a, b) end
    p.value:copy(src)
  end
end

--- Copies a state() table into the parameters and buffers (shapes must match exactly).
function Module:load_state(s)
  if type(s) ~= "table" then checks.fail("load_state", "table of tensors expected, got %s", type(s)) end
  load_entries(s, self:parameters())
  load_entries(s, self:buffers())
  return self
end

--- Converts parameters and buffers (the fields listed in self._tensors) to a float dtype in place;
-- outputs and gradient buffers are dropped (the next kernel call makes them in the new dtype).
function Module:to(dtype)
  checks.float_dtype(self.__short .. ".to", "dtype", dtype)
  for _, field in ipairs(self._tensors or {}) do
    if self[field] then self[field] = self[field]:to(dtype) end
  end
  if self.dtype then self.dtype = dtype end
  for _, field in ipairs(self._outputs or { "output", "grad_input" }) do self[field] = nil end
  return self
end

--- Uniform(-bound, bound) initialisation as PyTorch's Linear/Conv2d default (bound = 1/sqrt(fan_in)).
function Module.uniform(shape, bound, dtype, rng)
  return require("collapse.core").rand(shape, dtype, rng) * (2 * bound) - bound
end

--- A weight of weight_shape and (when with_bias) a bias [bias_size] drawn from PyTorch's default
-- U(-1/sqrt(fan_in), 1/sqrt(fan_in)), weight first, with zero gradients: Linear's and Conv2d's.
function Module:init_weight_bias(weight_shape, bias_size, fan_in, with_bias, dtype, rng)
  local core = require("collapse.core")
  local bound = 1 / math.sqrt(fan_in)
  self.weight = Module.uniform(weight_shape, bound, dtype, rng)
  self.weight_grad = core.zeros(weight_shape, dtype)
  if with_bias then
    self.bias = Module.uniform({ bias_size }, bound, dtype, rng)
    self.bias_grad = core.zeros({ bias_size }, dtype)
  end
  self._tensors = { "weight", "bias", "weight_grad", "bias_grad" }
end

--- The output of the last forward when nothing needs it after the next module has read it (the
-- backward of this module reads its input, not its output; the tensor is the module's own):
-- nn.Residual then writes its sum in place into it instead of a buffer of its own. nil (the
-- default: an activation's backward reads its output, Flatten/Identity/Dropout return views or
-- their input); BatchNorm, Conv2d and Linear offer theirs; Sequential its last module's.
function Module:spare_output() return nil end

--- Offered fusion with the next module: nil (none) unless a class overrides it; see
-- BatchNorm:fuse_with. Sequential asks every module; it knows no class pairs itself.
function Module:fuse_with(_) return nil end

return Module
