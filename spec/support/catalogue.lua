-- The bad-input catalogue (spec/bad_input/*_spec.lua): one entry = a call + what its error must say.
--   { "what is wrong", function() ... end, { "fn name", "argument", "what was expected" } }
-- Every listed piece of text (plain, not a Lua pattern) must appear in the error message, so an
-- entry asserts the error names the function, the argument and the expectation. An entry whose call
-- returns normally fails. `valid` entries are edge cases that must work: { "what", function() end }.
-- Usage in a spec: catalogue.run(it, entries) / catalogue.valid(it, entries).
local catalogue = {}

local function check(e)
  local ok, err = pcall(e[2])
  if ok then error(("%s: expected an error, the call returned normally"):format(e[1]), 0) end
  local msg = tostring(err)
  local want = type(e[3]) == "table" and e[3] or { e[3] }
  for _, piece in ipairs(want) do
    if not msg:find(piece, 1, true) then
      error(("%s: the error should contain %q, got %q"):format(e[1], piece, msg), 0)
    end
  end
  -- no Lua internals leaking out as the whole explanation (Lua patterns)
  for _, vague in ipairs({ "attempt to index", "attempt to perform", "attempt to compare", "attempt to call",
    "attempt to concatenate", "bad argument #%d+ to '", "not enough memory", "data string too short",
    "table index is", "stack overflow" }) do
    if msg:find(vague) then error(("%s: vague error %q"):format(e[1], msg), 0) end
  end
end

function catalogue.run(it, entries)
  for i, e in ipairs(entries) do
    it(("rejects #%d: %s"):format(i, e[1]), function() check(e) end)
  end
  return #entries
end

function catalogue.valid(it, entries)
  for _, e in ipairs(entries) do
    it("accepts: " .. e[1], function() e[2]() end)
  end
end

local made = {} -- temporary files and folders, removed by catalogue.cleanup (a spec's teardown)

function catalogue.cleanup()
  for _, p in ipairs(made) do os.execute("rm -rf '" .. p:gsub("'", "'\\''") .. "'") end
  made = {}
end

--- A fresh temporary file holding bytes; returns its path.
function catalogue.file(bytes, suffix)
  local base = os.tmpname()
  made[#made + 1] = base
  local p = base .. (suffix or "")
  made[#made + 1] = p
  local f = assert(io.open(p, "wb"))
  f:write(bytes)
  f:close()
  return p
end

--- A fresh temporary directory.
function catalogue.dir()
  local p = io.popen("mktemp -d")
  local d = p:read("l")
  p:close()
  made[#made + 1] = d
  return d
end

--- An NPY v1.0 file from a header dict text and data bytes.
function catalogue.npy(dict, bytes)
  local h = dict
  local total = 10 + #h + 1
  h = h .. (" "):rep((64 - total % 64) % 64) .. "\n"
  return "\147NUMPY\1\0" .. string.pack("<I2", #h) .. h .. (bytes or "")
end

--- An IDX file: type code, dims, then data bytes.
function catalogue.idx(code, dims, bytes)
  local s = string.pack("BBBB", 0, 0, code, #dims)
  for _, d in ipairs(dims) do s = s .. string.pack(">I4", d) end
  return s .. (bytes or "")
end

return catalogue
