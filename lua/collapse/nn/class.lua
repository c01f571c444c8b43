--- class(name, parent): a module class whose table is its constructor.
--   local Linear = class("nn.Linear", Module)
--   function Linear:init(n_in, n_out, opts) ... end      -- fills the new instance
--   local m = Linear(3, 4)                                 -- setmetatable({training = true}, Linear):init(...)
-- Instances have the class as metatable (getmetatable(m) == Linear, so Sequential:find(nn.Linear)
-- works); methods are inherited from parent through __index; tostring(m) is m:describe().
local function class(name, parent)
  -- __short: the name in messages ("Linear.backward: ..."), made once here, not on every call
  local c = { __name = name, __short = name:match("^nn%.(.+)$") or name, __collapse_object = true }
  c.__index = c
  c.__tostring = function(self) return self:describe() end
  return setmetatable(c, {
    __index = parent,
    __call = function(cls, ...)
      local self = setmetatable({ training = true }, cls)
      self:init(...)
      return self
    end,
  })
end

--- obj is an instance of exactly cls, in pure Lua (no call into C, unlike getmetatable): an
-- instance finds cls.__index == cls through its metatable. For checks on every training step.
local function is(obj, cls) return obj.__index == cls end

return setmetatable({ is = is }, { __call = function(_, name, parent) return class(name, parent) end })
