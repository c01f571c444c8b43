--- Small file-system helpers used by every writer: nothing a user wrote is half-replaced.
local core = require("collapse.core")

local fs = {}

--- Writes content to path through a temporary file in the same directory, fsync and a rename
-- (C: collapse_write_file_atomic), so readers see either the old file or the complete new one.
-- Temporaries left by a writer that was killed (kill -9) before its rename are removed by the next
-- successful write of the same path.
function fs.write_atomic(path, content)
  core.write_file_atomic(path, content)
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
