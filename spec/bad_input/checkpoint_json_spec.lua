-- Bad inputs to collapse.save / collapse.load (crafted checkpoint files) and collapse.json.
local collapse = require("collapse")
local core = require("collapse.core")
local json = require("collapse.json")
local C = require("support.catalogue")

-- A checkpoint file around a hand-made payload (valid header and CRC, so the decoder is reached).
local function ckpt(payload, opts)
  opts = opts or {}
  local header = "CLPSCKPT" .. string.pack("<I4I8I4", opts.version or 1, opts.len or #payload,
    opts.crc or core.crc32(payload))
  return C.file(header .. payload)
end
local I8 = function(v) return "i" .. string.pack("<i8", v) end
local S = function(s) return "s" .. string.pack("<s8", s) end
local T = function(n, body) return "t" .. string.pack("<I8", n) .. body end
local tensor = function(dt, shape, bytes)
  local s = "x" .. string.pack("<BB", dt, #shape)
  for _, d in ipairs(shape) do s = s .. string.pack("<i8", d) end
  return s .. string.pack("<s8", bytes)
end
local function nest(n) local t = {} local r = t for _ = 2, n do t.a = {} t = t.a end return r end
local function nested_payload(n)
  local p = ""
  for _ = 1, n - 1 do p = p .. T(1, S("a")) end
  return p .. T(0, "")
end
local good = C.file("")
collapse.save(good, { a = 1 })

local entries = {
  -- load
  { "load: path not a string", function() collapse.load(1) end, { "load", "argument #1", "file path expected" } },
  { "load: missing file", function() collapse.load("/nonexistent.ckpt") end, { "load", "/nonexistent.ckpt", "cannot open" } },
  { "load: empty file", function() collapse.load(C.file("")) end, { "load", "not a valid collapse checkpoint", "too short" } },
  { "load: foreign file", function() collapse.load(C.file(("PK"):rep(40))) end, { "load", "bad magic" } },
  { "load: version 2", function() collapse.load(ckpt(T(0, ""), { version = 2 })) end, { "load", "unsupported version 2" } },
  { "load: truncated payload", function() collapse.load(ckpt(T(0, ""), { len = 100 })) end, { "load", "truncated", "expected 100" } },
  { "load: checksum mismatch", function() collapse.load(ckpt(T(0, ""), { crc = 1 })) end, { "load", "checksum mismatch" } },
  { "load: trailing bytes after the root", function() collapse.load(ckpt(T(0, "") .. "T")) end,
    { "load", "1 trailing bytes after the root value" } },
  { "load: root not a table", function() collapse.load(ckpt(I8(3))) end, { "load", "root value is a number, expected a table" } },
  { "load: duplicate key", function() collapse.load(ckpt(T(2, S("k") .. I8(1) .. S("k") .. I8(2)))) end,
    { "load", "duplicate key k" } },
  { "load: 1 and 1.0 as two keys", function()
      collapse.load(ckpt(T(2, I8(1) .. I8(1) .. "d" .. string.pack("<d", 1.0) .. I8(2))))
    end, { "load", "duplicate key 1" } },
  { "load: NaN key", function() collapse.load(ckpt(T(1, "d" .. string.pack("<d", 0 / 0) .. I8(1)))) end, { "load", "NaN key" } },
  { "load: boolean key", function() collapse.load(ckpt(T(1, "T" .. I8(1)))) end, { "load", "key of type boolean" } },
  { "load: table key", function() collapse.load(ckpt(T(1, T(0, "") .. I8(1)))) end, { "load", "key of type table" } },
  { "load: unknown tag", function() collapse.load(ckpt(T(1, S("k") .. "Z"))) end, { "load", "unknown tag \"Z\"" } },
  { "load: count beyond the payload", function() collapse.load(ckpt(T(1 << 40, ""))) end, { "load", "entries in 0 bytes" } },
  { "load: value cut inside a string", function() collapse.load(ckpt(T(1, S("k") .. "s" .. string.pack("<I8", 99) .. "ab"))) end,
    { "load", "truncated value at payload byte" } },
  { "load: missing value", function() collapse.load(ckpt(T(1, S("k")))) end, { "load", "truncated value" } },
  { "load: tensor bytes do not match its shape", function()
      collapse.load(ckpt(T(1, S("w") .. tensor(1, { 2, 3 }, ("\0"):rep(20)))))
    end, { "load", "tensor [2 x 3] float32 needs 24 bytes, the file holds 20" } },
  { "load: tensor shape product overflows", function()
      collapse.load(ckpt(T(1, S("w") .. tensor(2, { 1 << 40, 1 << 40, 1 << 40 }, ""))))
    end, { "load", "too many elements" } },
  { "load: 2^56 float64 elements declared", function()
      collapse.load(ckpt(T(1, S("w") .. tensor(2, { 1 << 56 }, ""))))
    end, { "load", "needs 576460752303423488 bytes, the file holds 0" } },
  { "load: too many elements after a large first dimension", function()
      collapse.load(ckpt(T(1, S("w") .. tensor(1, { 1 << 62, 0 }, ""))))
    end, { "load", "has too many elements" } },
  { "load: negative tensor dimension", function() collapse.load(ckpt(T(1, S("w") .. tensor(1, { -1 }, "")))) end,
    { "load", "dimension 1 is negative" } },
  { "load: unknown tensor dtype", function() collapse.load(ckpt(T(1, S("w") .. tensor(9, { 1 }, "\0\0\0\0")))) end,
    { "load", "bad tensor header" } },
  { "load: tensor rank 20", function()
      local sh = {} for i = 1, 20 do sh[i] = 1 end
      collapse.load(ckpt(T(1, S("w") .. tensor(1, sh, "\0\0\0\0"))))
    end, { "load", "bad tensor header" } },
  { "load: nesting deeper than save allows", function() collapse.load(ckpt(nested_payload(101))) end,
    { "load", "nested deeper than 100" } },
  -- save
  { "save: path not a string", function() collapse.save(nil, {}) end, { "save", "argument #1", "file path expected" } },
  { "save: value not a table", function() collapse.save(good, 3) end, { "save", "argument #2", "table expected" } },
  { "save: a table containing itself", function() local t = { x = {} } t.x.y = t collapse.save(good, t) end,
    { "save", "root.x.y contains itself", "cycle" } },
  { "save: 101 levels deep", function() collapse.save(good, nest(101)) end, { "save", "nested deeper than 100 levels" } },
  { "save: a function value", function() collapse.save(good, { f = print }) end,
    { "save", "value of type function at root.f", "cannot be saved" } },
  { "save: a boolean key", function() collapse.save(good, { [true] = 1 }) end, { "save", "key of type boolean", "strings and numbers only" } },
  { "save: into a missing folder", function() collapse.save("/nonexistent/dir/c.ckpt", {}) end,
    { "/nonexistent/dir/c.ckpt", "cannot create temporary file" } },
  -- json
  { "json.decode: not a string", function() json.decode(12) end, { "json.decode", "string expected, got number" } },
  { "json.decode: empty text", function() json.decode("") end, { "json.decode", "unexpected end of text", "expected a value" } },
  { "json.decode: trailing text", function() json.decode("{} x") end, { "json.decode", "trailing characters", "line 1" } },
  { "json.decode: unterminated string", function() json.decode('{"a": "b') end, { "json.decode", "unterminated string" } },
  { "json.decode: bad escape", function() json.decode('"\\q"') end, { "json.decode", "bad escape" } },
  { "json.decode: bad unicode escape", function() json.decode('"\\u12G4"') end, { "json.decode", "bad \\u escape" } },
  { "json.decode: key not a string", function() json.decode("{1: 2}") end, { "json.decode", "expected a string key" } },
  { "json.decode: missing colon", function() json.decode('{"a" 2}') end, { "json.decode", "expected ':'" } },
  { "json.decode: missing comma in an array", function() json.decode("[1 2]") end, { "json.decode", "expected ',' or ']'" } },
  { "json.decode: missing brace", function() json.decode('{"a": 1') end, { "json.decode", "expected ',' or '}'" } },
  { "json.decode: a bare word", function() json.decode("nope") end, { "json.decode", "unexpected character 'n'" } },
  { "json.decode: bad number", function() json.decode("1e") end, { "json.decode", "bad number '1e'" } },
  { "json.decode: 100000 nested arrays", function() json.decode(("["):rep(100000)) end,
    { "json.decode", "nesting deeper than 200 levels" } },
  { "json.decode: error on line 3", function() json.decode('{\n"a": 1,\n"b": ?}') end, { "json.decode", "line 3" } },
  { "json.encode: cyclic table", function() local t = {} t[1] = t json.encode(t) end, { "json.encode", "cyclic table" } },
  { "json.encode: function value", function() json.encode({ f = print }) end, { "json.encode", "type function" } },
  { "json.encode: boolean key", function() json.encode({ [true] = 1 }) end, { "json.encode", "key of type boolean" } },
  { "json.encode: 300 levels deep", function() json.encode(nest(300)) end, { "json.encode", "nested deeper than 200 levels" } },
}

local valid = {
  { "save/load: exactly 100 levels deep", function() collapse.save(good, nest(100)) assert(collapse.load(good).a.a) end },
  { "save/load: an empty table", function() collapse.save(good, {}) assert(next(collapse.load(good)) == nil) end },
  { "save/load: the same subtable twice (a DAG, not a cycle)", function()
      local s = { 1, 2 }
      collapse.save(good, { a = s, b = s })
      local r = collapse.load(good)
      assert(r.a[2] == 2 and r.b[2] == 2)
    end },
  { "save/load: an empty tensor and integer/float keys", function()
      collapse.save(good, { e = collapse.zeros({ 0, 3 }), [1] = "one", [2.5] = "x" })
      local r = collapse.load(good)
      assert(r.e:size(2) == 3 and r[1] == "one" and r[2.5] == "x")
    end },
  { "json: 200 levels round trip", function()
      local text = ("["):rep(200) .. ("]"):rep(200)
      assert(json.encode(json.decode(text)) == text)
    end },
  { "json: text with quotes, backslashes and newlines round trips", function()
      local s = "a\"b\\c\nd\0e`$(x)`"
      assert(json.decode(json.encode({ s = s })).s == s)
    end },
}

describe("bad input: checkpoints and JSON", function()
  C.run(it, entries)
  C.valid(it, valid)
  teardown(C.cleanup)
end)

return entries
