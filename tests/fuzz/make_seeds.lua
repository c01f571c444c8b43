-- Writes the checkpoint and JSON seeds of the fuzz corpus (tests/fuzz/corpus/{checkpoint,json}).
-- The checkpoint seeds are payloads only: the fuzz harness adds the header (length, CRC-32).
--   scripts/lua tests/fuzz/make_seeds.lua
local collapse = require("collapse")
local json = require("collapse.json")
local dir = "tests/fuzz/corpus/"

local function put(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local tables = {
  { a = 1 },
  { 1, 2.5, "three", true, false, { nested = { deeper = { 1 } } } },
  { w = collapse.tensor({ { 1, 2 }, { 3, 4 } }), b = collapse.tensor({ 1, 2, 3 }, "int32"),
    d = collapse.tensor({ 0.5 }, "float64"), e = collapse.zeros({ 0, 2 }) },
  { model = { ["1.weight"] = collapse.tensor({ { 0.1, 0.2, 0.3 } }) }, step = 12, lr = 1e-3, name = "adam" },
}
local tmp = os.tmpname()
for i, t in ipairs(tables) do
  collapse.save(tmp, t)
  local f = assert(io.open(tmp, "rb"))
  local s = f:read("a")
  f:close()
  put(("%scheckpoint/seed%d"):format(dir, i), s:sub(25)) -- drop the 24-byte header
end
os.remove(tmp)

local texts = {
  json.encode({ finished = true, name = "wd=1e-3", grid = { weight_decay = 1e-3, batchnorm = true },
    final = { train_loss = 0.01, intra_cos = 0.98, bound = { guaranteed = false, reason = "too far" } },
    history = { { epoch = 1, train_loss = 1.2 }, { epoch = 2, train_loss = 0.5 } } }, { indent = 1 }),
  '{"keys": ["weight_decay", "batchnorm"], "runs": 4, "seeds": [1, 2]}',
  '["a\\n\\"b\\\\", -1.5e-3, 0, null, true, false, {}, [], "\\u00e9"]',
}
for i, s in ipairs(texts) do put(("%sjson/seed%d.json"):format(dir, i), s) end
