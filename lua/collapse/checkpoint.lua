--- collapse.save(path, tbl) / collapse.load(path): tables of numbers, strings, booleans and
-- tensors (nested), in the binary format of docs/checkpoint.md, written atomically.
local core = require("collapse.core")
local fs = require("collapse.fs")

local checkpoint = {}

local MAGIC, VERSION = "CLPSCKPT", 1
local DTYPES = { float32 = 1, float64 = 2, int32 = 3 }
local DTYPE_NAMES = { "float32", "float64", "int32" }

-- Tables nest at most this deep: save refuses deeper ones, so load (which enforces the same limit
-- against crafted files) reads back everything that save writes.
local MAX_DEPTH = 100
local ELEM_SIZE = { float32 = 4, float64 = 8, int32 = 4 }

local function encode(v, out, path, depth, open)
  local ty = type(v)
  if ty == "number" then
    if math.type(v) == "integer" then out[#out + 1] = "i" .. string.pack("<i8", v)
    else out[#out + 1] = "d" .. string.pack("<d", v) end
  elseif ty == "string" then out[#out + 1] = "s" .. string.pack("<s8", v)
  elseif ty == "boolean" then out[#out + 1] = v and "T" or "F"
  elseif ty == "table" then
    if open[v] then
      error(("save: the table at %s contains itself (a cycle through %s): only trees can be saved"):format(path,
        open[v]), 0)
    end
    if depth >= MAX_DEPTH then
      error(("save: tables nested deeper than %d levels at %s cannot be saved"):format(MAX_DEPTH, path), 0)
    end
    open[v] = path
    local keys = {}
    for k in pairs(v) do
      if type(k) ~= "string" and type(k) ~= "number" then
        error(("save: key of type %s at %s cannot be saved (strings and numbers only)"):format(type(k), path), 0)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys, function(a, b)
      if type(a) == type(b) then return a < b end
      return type(a) == "number"
    end)
    out[#out + 1] = "t" .. string.pack("<I8", #keys)
    for _, k in ipairs(keys) do
      encode(k, out, path, depth, open)
      encode(v[k], out, path .. "." .. tostring(k), depth + 1, open)
    end
    open[v] = nil
  elseif ty == "userdata" and getmetatable(v) == core.tensor_mt then
    local shape = v:shape()
    out[#out + 1] = "x" .. string.pack("<BB", DTYPES[v:dtype()], #shape)
    for _, s in ipairs(shape) do out[#out + 1] = string.pack("<i8", s) end
    out[#out + 1] = string.pack("<s8", v:tobytes())
  else
    error(("save: value of type %s at %s cannot be saved (numbers, strings, booleans, tables, tensors)")
      :format(ty, path), 0)
  end
end

--- Writes tbl to path atomically (a temporary file renamed into place).
function checkpoint.save(path, tbl)
  if type(path) ~= "string" then error("save: bad argument #1 (file path expected, got " .. type(path) .. ")", 2) end
  if type(tbl) ~= "table" then error("save: bad argument #2 (table expected, got " .. type(tbl) .. ")", 2) end
  local out = {}
  encode(tbl, out, "root", 0, {})
  local payload = table.concat(out)
  local header = MAGIC .. string.pack("<I4I8I4", VERSION, #payload, core.crc32(payload))
  fs.write_atomic(path, header .. payload)
end

local function corrupt(path, what)
  error(("load: '%s' is not a valid collapse checkpoint (%s)"):format(path, what), 0)
end

-- string.unpack that reports a short payload as a corrupt file (with the byte offset).
local function unpack(fmt, s, pos, path)
  local ok, a, b, c = pcall(string.unpack, fmt, s, pos)
  if not ok then corrupt(path, ("truncated value at payload byte %d"):format(pos)) end
  return a, b, c
end

local decode

local function decode_table(s, pos, path, depth)
  if depth >= MAX_DEPTH then corrupt(path, ("tables nested deeper than %d levels"):format(MAX_DEPTH)) end
  local n
  n, pos = unpack("<I8", s, pos, path)
  -- each entry takes at least 2 bytes: a count beyond that is corrupt, before any loop runs
  if n < 0 or n > (#s - pos + 1) // 2 then corrupt(path, ("table of %d entries in %d bytes"):format(n, #s - pos + 1)) end
  local t = {}
  for _ = 1, n do
    local at = pos
    local k, v
    k, pos = decode(s, pos, path, depth + 1)
    if type(k) ~= "string" and type(k) ~= "number" then
      corrupt(path, ("key of type %s at payload byte %d"):format(type(k), at))
    end
    if k ~= k then corrupt(path, ("NaN key at payload byte %d"):format(at)) end
    -- control characters of a string key shown as \ddd: no NUL or newline inside the message
    if t[k] ~= nil then corrupt(path, ("duplicate key %s at payload byte %d"):format(
      (tostring(k):gsub("%c", function(c) return "\\" .. c:byte() end)), at)) end
    v, pos = decode(s, pos, path, depth + 1)
    t[k] = v
  end
  return t, pos
end

local function decode_tensor(s, pos, path)
  local at = pos
  local dt, nd
  dt, nd, pos = unpack("<BB", s, pos, path)
  if not DTYPE_NAMES[dt] or nd > 8 then corrupt(path, ("bad tensor header at payload byte %d"):format(at)) end
  local shape, numel = {}, 1
  for i = 1, nd do
    shape[i], pos = unpack("<i8", s, pos, path)
    if shape[i] < 0 then corrupt(path, ("tensor dimension %d is negative (%d)"):format(i, shape[i])) end
    -- the tensor library's own limit (elements x 8 bytes fit int64), checked before multiplying
    -- so the product never overflows, also past a zero dimension
    if shape[i] > 0 and numel ~= math.maxinteger and numel > (math.maxinteger // 8) // shape[i] then
      numel = math.maxinteger
    elseif numel ~= math.maxinteger then numel = numel * shape[i] end
  end
  local bytes
  bytes, pos = unpack("<s8", s, pos, path)
  local name = DTYPE_NAMES[dt]
  if numel == math.maxinteger or #bytes ~= numel * ELEM_SIZE[name] then
    local dims = {}
    for i, d in ipairs(shape) do dims[i] = tostring(d) end
    if numel == math.maxinteger then
      corrupt(path, ("tensor [%s] has too many elements (the limit is 2^63 / 8)"):format(table.concat(dims, " x ")))
    end
    corrupt(path, ("tensor [%s] %s needs %d bytes, the file holds %d"):format(table.concat(dims, " x "), name,
      numel * ELEM_SIZE[name], #bytes))
  end
  return core.frombytes(bytes, shape, name), pos
end

function decode(s, pos, path, depth)
  if pos > #s then corrupt(path, ("truncated value at payload byte %d"):format(pos)) end
  local tag = s:sub(pos, pos)
  pos = pos + 1
  if tag == "i" then return unpack("<i8", s, pos, path)
  elseif tag == "d" then return unpack("<d", s, pos, path)
  elseif tag == "s" then return unpack("<s8", s, pos, path)
  elseif tag == "T" then return true, pos
  elseif tag == "F" then return false, pos
  elseif tag == "t" then return decode_table(s, pos, path, depth)
  elseif tag == "x" then return decode_tensor(s, pos, path)
  end
  corrupt(path, ("unknown tag %q at payload byte %d"):format(tag, pos - 1))
end

--- Reads a table written by save; a corrupt or truncated file gives a clear error.
function checkpoint.load(path)
  if type(path) ~= "string" then error("load: bad argument #1 (file path expected, got " .. type(path) .. ")", 2) end
  local f, err = io.open(path, "rb")
  if not f then error("load: cannot open '" .. path .. "': " .. tostring(err), 2) end
  local s = f:read("a")
  f:close()
  if #s < #MAGIC + 16 or s:sub(1, #MAGIC) ~= MAGIC then corrupt(path, "bad magic or too short") end
  local version, len, crc = string.unpack("<I4I8I4", s, #MAGIC + 1)
  if version ~= VERSION then corrupt(path, "unsupported version " .. version) end
  local payload = s:sub(#MAGIC + 17)
  if #payload ~= len then
    corrupt(path, ("truncated: %d payload bytes, expected %d"):format(#payload, len))
  end
  if core.crc32(payload) ~= crc then corrupt(path, "checksum mismatch") end
  local ok, v, pos = pcall(decode, payload, 1, path, 0)
  if not ok then error(v, 0) end
  if type(v) ~= "table" then corrupt(path, "the root value is a " .. type(v) .. ", expected a table") end
  if pos ~= #payload + 1 then
    corrupt(path, ("%d trailing bytes after the root value"):format(#payload + 1 - pos))
  end
  return v
end

return checkpoint
