-- Temporary folders and folder listings for the specs that run commands and sweeps.
local tmp = {}

--- A new empty directory (mktemp -d); the spec removes it when done.
function tmp.dir()
  local p = io.popen("mktemp -d")
  local d = p:read("l")
  p:close()
  return d
end

--- The names in dir (none when it does not exist), sorted.
function tmp.list(dir)
  local p = io.popen("ls -1 '" .. dir .. "' 2>/dev/null")
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  table.sort(out)
  return out
end

return tmp
