--- Minimal JSON for result files: encode (sorted keys, exact numbers) and decode.
-- Arrays are tables with keys 1..n; NaN and infinities are written as null.
local json = {}

-- Arrays/objects nest at most this deep, both ways: a crafted "[[[[..." is a clear error, not a
-- Lua stack overflow, and encode never writes what decode refuses.
local MAX_DEPTH = 200

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function is_array(t)
  local n = #t
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

local function encode(v, indent, depth, seen)
  local ty = type(v)
  if v == nil or v == json.null then return "null"
  elseif ty == "boolean" then return tostring(v)
  elseif ty == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    if math.type(v) == "integer" then return tostring(v) end
    local s = ("%.17g"):format(v)
    if tonumber(("%.15g"):format(v)) == v then s = ("%.15g"):format(v) end
    if not s:find("[%.eEn]") then s = s .. ".0" end
    return s
  elseif ty == "string" then return encode_string(v)
  elseif ty == "table" then
    if seen[v] then error("json.encode: cyclic table (a table that contains itself)", 0) end
    if depth >= MAX_DEPTH then error(("json.encode: tables nested deeper than %d levels"):format(MAX_DEPTH), 0) end
    seen[v] = true
    local nl, pad, pad_in = "", "", ""
    if indent then nl = "\n"; pad = (" "):rep(indent * depth); pad_in = (" "):rep(indent * (depth + 1)) end
    local parts = {}
    local out
    if is_array(v) and (#v > 0 or next(v) == nil) then
      for i = 1, #v do parts[i] = pad_in .. encode(v[i], indent, depth + 1, seen) end
      out = #parts == 0 and "[]" or "[" .. nl .. table.concat(parts, "," .. nl) .. nl .. pad .. "]"
    else
      local keys = {}
      for k in pairs(v) do
        if type(k) ~= "string" and type(k) ~= "number" then
          error("json.encode: table key of type " .. type(k) .. " cannot be written", 0)
        end
        keys[#keys + 1] = k
      end
      -- 1 and "1" would both be written as the key "1", which decode refuses as a duplicate
      local names = {}
      for _, k in ipairs(keys) do
        local name = tostring(k)
        if names[name] then error(("json.encode: two keys both written as \"%s\""):format(name), 0) end
        names[name] = true
      end
      table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
      for i, k in ipairs(keys) do
        parts[i] = pad_in .. encode_string(tostring(k)) .. (indent and ": " or ":") .. encode(v[k], indent, depth + 1, seen)
      end
      out = "{" .. nl .. table.concat(parts, "," .. nl) .. nl .. pad .. "}"
    end
    seen[v] = nil
    return out
  end
  error("json.encode: cannot write a value of type " .. ty, 0)
end

--- Encodes v; opts.indent (number of spaces) pretty-prints.
function json.encode(v, opts)
  return encode(v, opts and opts.indent, 0, {})
end

--- A unique value standing for JSON null inside arrays (decode maps null to it in arrays).
json.null = setmetatable({}, { __tostring = function() return "null" end })

local function decode_error(s, pos, what)
  local line = select(2, s:sub(1, pos):gsub("\n", "")) + 1
  error(("json.decode: %s at line %d (byte %d)"):format(what, line, pos), 0)
end

local decode_value

-- A key or bad token inside an error message: printable ASCII kept, anything else as \xNN.
local function printable(k)
  k = #k > 40 and k:sub(1, 40) .. "..." or k
  return (k:gsub("[^%g ]", function(ch) return ("\\x%02x"):format(ch:byte()) end))
end

-- The JSON number at pos, by the grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][-+]?[0-9]+)?, or nil
-- when the text there is no JSON number (a leading zero, "1.", ".5", "1e" and the like).
local function number_at(s, pos)
  local int = s:match("^-?0", pos) or s:match("^-?[1-9]%d*", pos)
  if not int then return nil end
  local e = pos + #int
  local frac = s:match("^%.%d+", e)
  if frac then e = e + #frac elseif s:sub(e, e) == "." then return nil end
  local exp = s:match("^[eE][-+]?%d+", e)
  if exp then e = e + #exp elseif s:match("^[eE]", e) then return nil end
  if s:match("^[%w.]", e) then return nil end -- "01", "1.2.3", "12abc"
  return s:sub(pos, e - 1)
end

local function skip(s, pos)
  return s:find("[^ \t\r\n]", pos) or #s + 1
end

local function decode_string(s, pos)
  local buf, i = {}, pos + 1
  while true do
    local c = s:sub(i, i)
    if c == "" then decode_error(s, i, "unterminated string") end
    if c == '"' then return table.concat(buf), i + 1 end
    if c == "\\" then
      local e = s:sub(i + 1, i + 1)
      local map = { b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", ['"'] = '"', ["\\"] = "\\", ["/"] = "/" }
      if map[e] then buf[#buf + 1] = map[e]; i = i + 2
      elseif e == "u" then
        local hex = s:sub(i + 2, i + 5)
        if not hex:match("^%x%x%x%x$") then decode_error(s, i, "bad \\u escape") end
          local code = tonumber(hex, 16)
        i = i + 6
        if code >= 0xD800 and code <= 0xDBFF then
          -- a UTF-16 surrogate pair stands for one code point beyond the BMP
          local low = s:match("^\\u(%x%x%x%x)", i)
          local lc = low and tonumber(low, 16)
          if not lc or lc < 0xDC00 or lc > 0xDFFF then decode_error(s, i - 6, "unpaired \\u surrogate") end
          code = 0x10000 + (code - 0xD800) * 0x400 + (lc - 0xDC00)
          i = i + 6
        elseif code >= 0xDC00 and code <= 0xDFFF then
          decode_error(s, i - 6, "unpaired \\u surrogate")
        end
        buf[#buf + 1] = utf8.char(code)
      else decode_error(s, i, "bad escape") end
    elseif c:byte() < 0x20 then
      -- JSON forbids raw control characters in strings (encode always escapes them)
      decode_error(s, i, ("raw control character 0x%02x in a string"):format(c:byte()))
    else
      buf[#buf + 1] = c; i = i + 1
    end
  end
end

function decode_value(s, pos, depth)
  pos = skip(s, pos)
  local c = s:sub(pos, pos)
  if (c == "{" or c == "[") and depth >= MAX_DEPTH then
    decode_error(s, pos, ("nesting deeper than %d levels"):format(MAX_DEPTH))
  end
  if c == "" then decode_error(s, pos, "unexpected end of text, expected a value") end
  if c == "{" then
    local obj, seen_keys = {}, {}
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == "}" then return obj, pos + 1 end
    while true do
      if s:sub(pos, pos) ~= '"' then decode_error(s, pos, "expected a string key") end
      local k
      k, pos = decode_string(s, pos)
      pos = skip(s, pos)
      if s:sub(pos, pos) ~= ":" then decode_error(s, pos, "expected ':'") end
      local v
      v, pos = decode_value(s, pos + 1, depth + 1)
      -- a repeated key would silently drop one of the two values: refuse it
      if seen_keys[k] then decode_error(s, pos, ("duplicate key '%s'"):format(printable(k))) end
      seen_keys[k] = true
      if v ~= json.null then obj[k] = v end
      pos = skip(s, pos)
      local d = s:sub(pos, pos)
      if d == "}" then return obj, pos + 1 end
      if d ~= "," then decode_error(s, pos, "expected ',' or '}'") end
      pos = skip(s, pos + 1)
    end
  elseif c == "[" then
    local arr = {}
    pos = skip(s, pos + 1)
    if s:sub(pos, pos) == "]" then return arr, pos + 1 end
    while true do
      local v
      v, pos = decode_value(s, pos, depth + 1)
      arr[#arr + 1] = v
      pos = skip(s, pos)
      local d = s:sub(pos, pos)
      if d == "]" then return arr, pos + 1 end
      if d ~= "," then decode_error(s, pos, "expected ',' or ']'") end
      pos = pos + 1
    end
  elseif c == '"' then return decode_string(s, pos)
  elseif s:sub(pos, pos + 3) == "true" then return true, pos + 4
  elseif s:sub(pos, pos + 4) == "false" then return false, pos + 5
  elseif s:sub(pos, pos + 3) == "null" then return json.null, pos + 4
  else
    local num = number_at(s, pos)
    if not num and c:match("[-%d]") then
      decode_error(s, pos, ("bad number '%s' (expected -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][-+]?[0-9]+)?)"):format(
        printable(s:match("^[-+.%w]*", pos))))
    end
    if not num then
      -- a control or non-ASCII byte is shown by its code, never raw inside the message
      decode_error(s, pos, "unexpected character " .. (c:match("^[%g ]$") and ("'" .. c .. "'")
        or ("byte 0x%02x"):format(c:byte())))
    end
    local v = tonumber(num)
    if v == nil then decode_error(s, pos, "bad number '" .. num .. "'") end
    return v, pos + #num
  end
end

--- Decodes a JSON text; null becomes nil in objects and json.null in arrays.
function json.decode(s)
  if type(s) ~= "string" then error("json.decode: string expected, got " .. type(s), 2) end
  local v, pos = decode_value(s, 1, 0)
  pos = skip(s, pos)
  if pos <= #s then decode_error(s, pos, "trailing characters") end
  return v
end

return json
