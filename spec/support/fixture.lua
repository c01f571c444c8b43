-- Reads the plain-text fixtures of spec/fixtures (lines "name count v1 ... vn", '#' comments).
local collapse = require("collapse")

local fixture = {}

local function root()
  local src = debug.getinfo(1, "S").source:sub(2)
  return (src:match("^(.*)/spec/support/") or ".")
end
fixture.root = root()

function fixture.read(rel)
  local path = fixture.root .. "/spec/fixtures/" .. rel
  local f = assert(io.open(path), "missing fixture " .. path)
  local out = {}
  for line in f:lines() do
    if not line:match("^#") and line:match("%S") then
      local name, count, rest = line:match("^(%S+)%s+(%d+)%s*(.*)$")
      local values = {}
      for v in rest:gmatch("%S+") do values[#values + 1] = tonumber(v) end
      assert(#values == tonumber(count), "fixture " .. name .. ": count mismatch")
      out[name] = values
    end
  end
  f:close()
  return out
end

--- A float64 tensor of the given shape from a flat array.
function fixture.tensor(values, shape, dtype)
  return collapse.core.frombytes(string.pack(("<" .. ("d"):rep(#values)), table.unpack(values)), shape, "float64")
    :to(dtype or "float64")
end

--- Largest |a - b| / max(1, |b|) between a tensor and a flat array.
function fixture.max_err(t, ref)
  local got = t:reshape({ -1 }):totable()
  assert(#got == #ref, ("size %d vs reference %d"):format(#got, #ref))
  local worst = 0
  for i = 1, #ref do
    local e = math.abs(got[i] - ref[i]) / math.max(1, math.abs(ref[i]))
    if e > worst or e ~= e then worst = e end
  end
  return worst
end

return fixture
