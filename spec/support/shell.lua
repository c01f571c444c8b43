-- Runs a shell command for a spec: its output (stdout and stderr), whether it exited 0, and its
-- exit code. One place for what several command-line specs did with io.popen.
local shell = {}

function shell.run(cmd)
  local p = io.popen(cmd .. " 2>&1")
  local out = p:read("a")
  local ok, _, code = p:close()
  return out, ok == true, code
end

return shell
