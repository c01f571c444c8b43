--- collapse.save(path, tbl) / collapse.load(path): tables of numbers, strings, booleans and
-- tensors (nested), in the binary format of docs/checkpoint.md, written atomically.
local core = require("collapse.core")
local fs = require("collapse.fs")

local checkpoint = {}

local MAGIC, VERSION = "CLPSCKPT", 1
local DTYPES = { float32 = 1, float64 = 2, int32 = 3 }
local DTYPE_NAMES = { "float32", "float64", "int32" }

local function encode(v, out, path)
  local ty = type(v)
  if ty == "number" then
    if math.type(v) == "integer" then out[#out + 1] = "i" .. string.pack("<i8", v)
    else out[#out + 1] = "d" .. string.pack("<d", v) end
  elseif ty == "string" then out[#out + 1] = "s" .. string.pack("<s8", v)
  elseif ty == "boolean" then out[#out + 1] = v and "T" or "F"
  elseif ty == "table" then
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
      encode(k, out, path)
      encode(v[k], out, path .. "." .. tostring(k))
    end
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
  encode(tbl, out, "root")
  local payload = table.concat(out)
  local header = MAGIC .. string.pack("<I4I8I4", VERSION, #payload, core.crc32(payload))
  fs.write_atomic(path, header .. payload)
end

local function corrupt(path, what)
  error(("load: '%s' is not a valid collapse checkpoint (%s)"):format(path, what), 0)
end

local function decode(s, pos, path, depth)
  if depth > 200 then corrupt(path, "nesting too deep") end
  local tag = s:sub(pos, pos)
  pos = pos + 1
  local ok, a, b = pcall(function()
    if tag == "i" then return string.unpack("<i8", s, pos)
    elseif tag == "d" then return string.unpack("<d", s, pos)
    elseif tag == "s" then return string.unpack("<s8", s, pos)
    elseif tag == "T" then return true, pos
    elseif tag == "F" then return false, pos
    end
    return nil
  end)
  if not ok then corrupt(path, "truncated value") end
  if tag == "i" or tag == "d" or tag == "s" or tag == "T" or tag == "F" then return a, b end
  if tag == "t" then
    local n
    n, pos = string.unpack("<I8", s, pos)
    local t = {}
    for _ = 1, n do
      local k, v
      k, pos = decode(s, pos, path, depth + 1)
      v, pos = decode(s, pos, path, depth + 1)
      t[k] = v
    end
    return t, pos
  elseif tag == "x" then
    local dt, nd
    dt, nd, pos = string.unpack("<BB", s, pos)
    if not DTYPE_NAMES[dt] or nd > 8 then corrupt(path, "bad tensor header") end
    local shape = {}
    for i = 1, nd do shape[i], pos = string.unpack("<i8", s, pos) end
    local bytes
    bytes, pos = string.unpack("<s8", s, pos)
    return core.frombytes(bytes, shape, DTYPE_NAMES[dt]), pos
  end
  corrupt(path, ("unknown tag %q"):format(tag))
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
  local ok, v = pcall(decode, payload, 1, path, 0)
  if not ok then error(v, 0) end
  return v
end

return checkpoint
