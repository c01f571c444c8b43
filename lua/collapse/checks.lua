--- collapse.checks: the one argument-check module of the Lua layer.
-- Every check names the function, the argument and what was expected, and raises with an error
-- level that blames the USER's line: the first stack frame outside the collapse library (the same
-- rule as the C binding's errors, csrc/lua/binding.c), so a check may sit in a helper at any depth.
-- Checks that the C kernels already make (shapes, dtypes, contiguity of kernel arguments) are not
-- repeated here; these are for what only Lua sees (options tables, Lua numbers, label arrays, ...).
local core = require("collapse.core")

local checks = {}

-- A chunk of the library: a .lua file directly in a directory named collapse or collapse/nn.
local function library_source(src)
  return src:find("/collapse/[%w_]+%.lua$") ~= nil or src:find("/collapse/nn/[%w_]+%.lua$") ~= nil
end

--- The error level (for error(msg, level) called by the caller of level()) of the first frame
-- outside the library.
function checks.user_level()
  local level = 3 -- 1 = user_level, 2 = its caller (the check), 3 = the check's caller
  while true do
    local info = debug.getinfo(level, "S")
    if not info then return 1 end
    if info.what ~= "C" and not library_source(info.source) then return level - 1 end
    level = level + 1
  end
end

--- "file:line: " of the user's frame ("" when none), for messages raised with level 0.
function checks.where()
  local level = 2
  while true do
    local info = debug.getinfo(level, "Sl")
    if not info then return "" end
    if info.what ~= "C" and not library_source(info.source) then
      return info.currentline > 0 and ("%s:%d: "):format(info.short_src, info.currentline) or ""
    end
    level = level + 1
  end
end

--- Raises "fn: msg" (msg formatted with ...) blaming the user's line.
function checks.fail(fn, msg, ...)
  local text = ("%s: " .. msg):format(fn, ...)
  error(checks.where() .. text, 0)
end
local fail = checks.fail

-- A value for messages: strings quoted, tables, functions and userdata by type (no addresses),
-- everything else tostring'd.
local function show(v)
  local t = type(v)
  if t == "string" then return ("'%s'"):format(v) end
  if t == "table" or t == "function" or t == "userdata" or t == "thread" then return "a " .. t end
  return tostring(v)
end
checks.show = show

function checks.positive_int(fn, name, v)
  if math.type(v) ~= "integer" or v < 1 then fail(fn, "%s must be a positive integer, got %s", name, show(v)) end
  return v
end

--- An integer >= lo.
function checks.int_min(fn, name, v, lo)
  if math.type(v) ~= "integer" or v < lo then fail(fn, "%s must be an integer >= %d, got %s", name, lo, show(v)) end
  return v
end

--- A number in [lo, hi] (or [lo, hi) when open_hi); NaN fails.
function checks.number_in(fn, name, v, lo, hi, open_hi)
  if type(v) ~= "number" or v ~= v or v < lo or (open_hi and v >= hi) or (not open_hi and v > hi) then
    fail(fn, "%s must be a number in [%g, %g%s, got %s", name, lo, hi, open_hi and ")" or "]", show(v))
  end
  return v
end

--- An options table (nil gives {}); keys not in `allowed` (a set) are rejected.
function checks.options(fn, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then fail(fn, "options must be a table, got %s", type(opts)) end
  for k in pairs(opts) do
    if allowed[k] == nil then fail(fn, "unknown option '%s'", tostring(k)) end
  end
  return opts
end

function checks.is_tensor(x) return getmetatable(x) == core.tensor_mt end

--- A live tensor argument: "fn: x must be a tensor, got number" / "fn: x is a closed tensor".
function checks.tensor(fn, name, v)
  if getmetatable(v) ~= core.tensor_mt then fail(fn, "%s must be a tensor, got %s", name, type(v)) end
  if not core.is_live(v) then fail(fn, "%s is a closed tensor", name) end
  return v
end

local FLOAT = { float32 = true, float64 = true }
--- A float dtype name ("float32" or "float64").
function checks.float_dtype(fn, name, v)
  if not FLOAT[v] then fail(fn, "%s must be 'float32' or 'float64', got %s", name, show(v)) end
  return v
end

--- A generator made by collapse.rng (or nil when optional).
function checks.rng(fn, name, v, optional)
  if v == nil and optional then return nil end
  if getmetatable(v) ~= core.rng_mt then fail(fn, "%s must be a generator (collapse.rng(seed)), got %s", name, type(v)) end
  return v
end

--- Labels as an int32 tensor, the one label conversion of the library (Dataset, the loss): an
-- int32 tensor passes as it is (the C kernels check the range 1..C); a 1-d tensor of another dtype
-- or a Lua array only when every entry is a whole number in the int32 range (1.5, NaN, inf or "2"
-- is an error naming the first bad entry, never truncated), in 1..classes when classes (a number,
-- or a function giving it, called only when converting) is given. name: the argument ("labels").
function checks.labels(fn, labels, classes, name)
  name = name or "labels"
  local is_t = getmetatable(labels) == core.tensor_mt
  if is_t and labels:dtype() == "int32" then return labels end
  if not is_t and type(labels) ~= "table" then
    fail(fn, "%s must be an int32 tensor or a list of integer labels, got %s", name, type(labels))
  end
  if is_t and labels:dim() ~= 1 then fail(fn, "%s must be 1-d, got %d dimensions", name, labels:dim()) end
  local values = is_t and labels:totable() or labels
  for k in pairs(values) do
    if math.type(k) ~= "integer" or k < 1 or k > #values then
      fail(fn, "%s must be a list of labels, got key %s", name, tostring(k))
    end
  end
  if type(classes) == "function" then classes = classes() end
  for i = 1, #values do
    local v = values[i]
    local k = type(v) == "number" and math.tointeger(v)
    if not k or k < -2147483648 or k > 2147483647 then
      fail(fn, "label %s at index %d is not an integer (labels are whole numbers 1..C)",
        type(v) == "string" and ("%q"):format(v) or tostring(v), i)
    end
    if classes and (k < 1 or k > classes) then fail(fn, "label %d at index %d is outside 1..%d", k, i, classes) end
  end
  return is_t and labels:to("int32") or core.tensor(values, "int32")
end

--- A method called as obj.f() instead of obj:f(): self is nil or not an object of the library (a
-- plain table, e.g. an options table that took self's place). `usage` is shown, e.g. "opt:step()".
-- Pure Lua (no call into C): it runs on every step.
function checks.method(fn, self, usage)
  if self == nil or self.__collapse_object == nil then fail(fn, "call with ':' (%s)", usage) end
end

return checks
