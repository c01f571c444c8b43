-- collapse.json against the RFC 8259 grammar: what it must accept, and what it must refuse with a
-- message that names the problem and its position (result files are re-read by report, measure and
-- resume, so a file edited by hand must not be half-understood).
local json = require("collapse.json")
local expect_error = require("support.expect").error

describe("json.decode numbers", function()
  it("accepts every form of the grammar with the value Lua's tonumber gives", function()
    for _, text in ipairs{ "0", "-0", "7", "-12", "10", "0.5", "-0.25", "1e3", "1E+3", "2.5e-3", "0e0",
      "123456789012", "1.7976931348623157e308", "4.9e-324" } do
      local v = json.decode(text)
      assert.equal(tonumber(text), v, text)
      assert.equal(tonumber(text), json.decode("[" .. text .. "]")[1], text)
    end
  end)
  it("refuses numbers outside the grammar, naming the token", function()
    for _, text in ipairs{ "01", "-01", "00", "1.", ".5", "1e", "1e+", "+1", "1.2.3", "12abc", "0x10", "-" } do
      local ok, err = pcall(json.decode, "[" .. text .. "]")
      assert.is_false(ok, text)
      assert.matches("json.decode: ", err, 1, true)
      assert.is_truthy(err:find("bad number", 1, true) or err:find("unexpected character", 1, true), text .. ": " .. err)
    end
    expect_error("bad number '01'", json.decode, '{"a": 01}')
  end)
end)

describe("json.decode objects and strings", function()
  it("refuses a repeated key instead of keeping one of the two values", function()
    expect_error("json.decode: duplicate key 'a' at line 2", json.decode, '{"a": 1,\n "a": 2}')
    expect_error("duplicate key 'b'", json.decode, '{"x": {"b": null, "b": 1}}')
    assert.same({ a = { a = 1 } }, json.decode('{"a": {"a": 1}}')) -- the same key at two levels is fine
  end)
  it("combines UTF-16 surrogate pairs and refuses lone surrogates", function()
    assert.equal("\u{1F600}", json.decode('"\\ud83d\\ude00"'))
    assert.equal("é", json.decode('"\\u00e9"'))
    expect_error("unpaired \\u surrogate", json.decode, '"\\ud83d"')
    expect_error("unpaired \\u surrogate", json.decode, '"\\ude00x"')
    expect_error("unpaired \\u surrogate", json.decode, '"\\ud83d\\u0041"')
  end)
  it("refuses raw control characters in strings, which encode always escapes", function()
    expect_error("raw control character 0x0a in a string", json.decode, '"a\nb"')
    expect_error("raw control character 0x01", json.decode, '["\1"]')
    local s = "tab\t nl\n bell\7"
    assert.equal(s, json.decode(json.encode(s)))
  end)
end)

describe("json.encode", function()
  it("refuses a table whose keys 1 and \"1\" would collide in the text", function()
    expect_error('json.encode: two keys both written as "1"', json.encode, { [1] = "a", ["1"] = "b", x = 0 })
  end)
  it("writes what decode reads back, for every number class", function()
    local v = { 0, -0.0, 1, -1, 0.1, 1 / 3, 1e300, -1e-300, 2 ^ 53, math.maxinteger, math.mininteger, 5e-324 }
    local back = json.decode(json.encode(v))
    for i = 1, #v do assert.equal(v[i], back[i], tostring(v[i])) end
  end)
end)
