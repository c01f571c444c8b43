--- Small file-system helpers used by every writer: nothing a user wrote is half-replaced.
local core = require("collapse.core")

local fs = {}

--- Writes content to path through a temporary file in the same directory, fsync and a rename
-- (C: collapse_write_file_atomic), so readers see either the old file or the complete new one.
function fs.write_atomic(path, content)
  core.write_file_atomic(path, content)
end

local counter = 0

-- Pure-Lua fallback kept for reference by tests of the C path (same contract, no fsync).
function fs.write_atomic_lua(path, content)
  counter = counter + 1
  local tmp = ("%s.tmp.%d.%d"):format(path, os.time(), counter)
  local f, err = io.open(tmp, "wb")
  if not f then error(("cannot write '%s': %s"):format(path, tostring(err)), 0) end
  local ok, werr = f:write(content)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    error(("cannot write '%s': %s"):format(path, tostring(werr or cerr)), 0)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    error(("cannot write '%s': %s"):format(path, tostring(rerr)), 0)
  end
end

function fs.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

function fs.read(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("a")
  f:close()
  return s
end

--- mkdir -p (POSIX shell; paths are quoted).
function fs.mkdir(path)
  local ok = os.execute("mkdir -p '" .. path:gsub("'", "'\\''") .. "'")
  if not ok then error("cannot create directory '" .. path .. "'", 0) end
end

return fs
