--- Strict, table-driven parsing of the `collapse` command line.
-- Each command declares its flags once:
--   { name = "per-class", type = "integer", min = 1, required = false, help = "..." }
-- types: "string", "number" (finite), "integer", "boolean" (no value), "set" (repeatable key=value),
-- "pair" (repeatable, two words: `--shard FEATURES LABELS`; no `=` form). A flag may add
-- check = function(value) -> value, raising its own message for a bad one (error(msg, 0)).
-- decl.positional_name (e.g. "FILE") words the error for extra words when one is allowed;
-- decl.messages = {unknown = "...%s...%s", twice = "...%s..."} rewords those two errors (the flag
-- name, and for unknown the list of flags), for commands whose messages are fixed elsewhere.
-- A value that starts with "--" is taken as a missing value ("--out needs a value").
-- An unknown flag, a missing or malformed value, a repeated flag, a missing required flag or too
-- many positional words is an error naming the command, the flag and what was expected; nothing is
-- ever silently ignored. `--flag=value` and `--flag value` are both accepted.
local cli_flags = {}

--- The value of a --set key=value word: true/false, a number, else the string.
function cli_flags.scalar(s)
  if s == "true" then return true elseif s == "false" then return false end
  local n = tonumber(s)
  if n and n == n and n ~= math.huge and n ~= -math.huge and not s:find("^%s*0[xX]") then
    return math.tointeger(n) or n
  end
  return s
end

local function fail(cmd, msg)
  error(("%s: %s"):format(cmd, msg), 0)
end

local function names(decl)
  local out = {}
  for _, f in ipairs(decl.flags) do out[#out + 1] = "--" .. f.name end
  return table.concat(out, ", ")
end

-- Decimal numbers only (no hex, no inf/nan, no surrounding spaces).
local function number_of(s)
  if not s:match("^[-+]?%d*%.?%d*[eE]?[-+]?%d*$") or not s:find("%d") then return nil end
  local n = tonumber(s)
  if not n or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end

local CONVERT = {
  string = function(s) return s end,
  number = function(s) return number_of(s), "a number" end,
  integer = function(s)
    local n = number_of(s)
    return n and math.tointeger(n), "an integer"
  end,
}

local function convert(cmd, f, raw)
  if f.type == "set" then
    local k, v = raw:match("^([%w_%.]+)=(.*)$")
    if not k then fail(cmd, ("--%s expects key=value, got '%s'"):format(f.name, raw)) end
    return { k, cli_flags.scalar(v) }
  end
  local v, what = CONVERT[f.type](raw)
  if v == nil then fail(cmd, ("--%s expects %s, got '%s'"):format(f.name, what, raw)) end
  if f.min and v < f.min then fail(cmd, ("--%s expects %s >= %s, got %s"):format(f.name, what, f.min, raw)) end
  if f.check then v = f.check(v) end
  return v
end

--- Parses args (a list of words after the command) against decl = { flags = {...}, positionals = N }.
-- Returns positionals (list) and flags (by name with '-' turned into '_'; "set" flags are lists).
function cli_flags.parse(cmd, decl, args)
  local by_name = {}
  for _, f in ipairs(decl.flags) do by_name[f.name] = f end
  local pos, out = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a:sub(1, 2) == "--" then
      local name, inline = a:sub(3):match("^([^=]*)=(.*)$")
      name = name or a:sub(3)
      local f = by_name[name] or by_name[name:gsub("_", "-")]
      if not f then fail(cmd, ((decl.messages or {}).unknown or "unknown flag --%s (flags: %s)"):format(name, names(decl))) end
      local key = f.name:gsub("-", "_")
      if f.type == "pair" then
        if inline then fail(cmd, ("--%s takes two words (%s), not '=%s'"):format(f.name, f.words or "A B", inline)) end
        local x, y = args[i + 1], args[i + 2]
        if x == nil or y == nil or x:sub(1, 2) == "--" or y:sub(1, 2) == "--" then
          fail(cmd, ("--%s needs %s"):format(f.name, f.words or "two values"))
        end
        out[key] = out[key] or {}
        table.insert(out[key], { x, y })
        i = i + 3
      elseif f.type == "boolean" then
        if inline then fail(cmd, ("--%s takes no value, got '%s'"):format(f.name, inline)) end
        if out[key] then fail(cmd, ((decl.messages or {}).twice or "--%s given twice"):format(f.name)) end
        out[key] = true
        i = i + 1
      else
        local raw = inline or args[i + 1]
        if raw == nil or (not inline and raw:sub(1, 2) == "--") then fail(cmd, ("--%s needs a value"):format(f.name)) end
        local v = convert(cmd, f, raw)
        if f.type == "set" then
          out[key] = out[key] or {}
          table.insert(out[key], v)
        elseif out[key] ~= nil then fail(cmd, ((decl.messages or {}).twice or "--%s given twice"):format(f.name))
        else out[key] = v end
        i = i + (inline and 1 or 2)
      end
    else
      pos[#pos + 1] = a
      i = i + 1
    end
  end
  local max = decl.positionals or 0
  if #pos > max and max == 1 and decl.positional_name then
    fail(cmd, ("expected one %s, got '%s' and '%s'"):format(decl.positional_name, pos[1], pos[2]))
  end
  if #pos > max then
    fail(cmd, ("unexpected argument '%s' (%s)"):format(pos[max + 1],
      max == 0 and "this command takes only flags" or ("at most " .. max .. " argument" .. (max > 1 and "s" or ""))))
  end
  for _, f in ipairs(decl.flags) do
    if f.required and out[f.name:gsub("-", "_")] == nil then fail(cmd, ("needs --%s"):format(f.name)) end
  end
  return pos, out
end

return cli_flags
