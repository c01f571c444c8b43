-- collapse.save / collapse.load (docs/checkpoint.md) and the JSON used for results.
local collapse = require("collapse")
local json = require("collapse.json")
local expect_error = require("support.expect").error

local function tmp()
  local p = os.tmpname()
  return p
end

local function read(p)
  local f = io.open(p, "rb")
  local s = f:read("a")
  f:close()
  return s
end

local function write(p, s)
  local f = io.open(p, "wb")
  f:write(s)
  f:close()
end

describe("checkpoints", function()
  it("round-trip numbers, strings, booleans, nested tables and tensors of every dtype", function()
    local p = tmp()
    local t = { n = 1.25, i = 42, s = "hé\0llo", b = true, f = false, list = { 3, 2, 1 },
      nested = { x = collapse.randn({ 3, 2 }, { dtype = "float64" }), y = collapse.tensor({ 1, 2 }, "int32") },
      f32 = collapse.full({ 2, 2 }, 0.5) }
    collapse.save(p, t)
    local r = collapse.load(p)
    assert.equal(1.25, r.n)
    assert.equal(42, r.i)
    assert.equal("integer", math.type(r.i))
    assert.equal("hé\0llo", r.s)
    assert.is_true(r.b)
    assert.is_false(r.f)
    assert.same({ 3, 2, 1 }, r.list)
    assert.same(t.nested.x:totable(), r.nested.x:totable())
    assert.equal("int32", r.nested.y:dtype())
    assert.equal("float32", r.f32:dtype())
    os.remove(p)
  end)

  it("detects corrupt, truncated and foreign files", function()
    local p = tmp()
    collapse.save(p, { w = collapse.randn({ 10 }) })
    local good = read(p)
    write(p, good:sub(1, #good - 3))
    expect_error("truncated", collapse.load, p)
    write(p, good:sub(1, 30) .. string.char((good:byte(31) + 1) % 256) .. good:sub(32))
    expect_error("checksum mismatch", collapse.load, p)
    write(p, "hello world, not a checkpoint at all")
    expect_error("is not a valid collapse checkpoint (bad magic", collapse.load, p)
    expect_error("load: cannot open '/nonexistent/ck'", collapse.load, "/nonexistent/ck")
    os.remove(p)
  end)

  it("refuses values it cannot store, naming where, and leaves an existing file intact", function()
    local p = tmp()
    collapse.save(p, { a = 1 })
    expect_error("save: value of type function at root.model.hook cannot be saved", collapse.save, p,
      { model = { hook = print } })
    assert.equal(1, collapse.load(p).a)
    os.remove(p)
  end)
end)

describe("json", function()
  it("round-trips results exactly and writes NaN as null", function()
    local v = { a = { 1, 2.5, 1 / 3, -0.0 }, b = "quote \" and \n", c = { d = true, e = 1e-300 }, empty = {} }
    local back = json.decode(json.encode(v, { indent = 2 }))
    assert.same(v.a, back.a)
    assert.equal(v.b, back.b)
    assert.equal(1e-300, back.c.e)
    assert.same({}, back.empty)
    assert.equal("[null]", json.encode({ 0 / 0 }))
    assert.equal(json.null, json.decode("[null]")[1])
  end)
  it("reports malformed text with its position", function()
    expect_error("json.decode: expected ',' or '}' at line 2", json.decode, '{"a": 1\n "b": 2}')
    expect_error("unterminated string", json.decode, '"abc')
  end)
end)
