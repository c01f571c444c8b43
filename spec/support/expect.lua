-- expect.error(pattern, f, ...): f(...) must raise an error whose message contains pattern
-- (plain text, not a Lua pattern). Plain Lua (required modules do not see busted's assert).
local expect = {}

function expect.error(pattern, f, ...)
  local ok, err = pcall(f, ...)
  if ok then error("expected an error containing: " .. pattern, 2) end
  if not tostring(err):find(pattern, 1, true) then
    error(("expected an error containing %q, got %q"):format(pattern, tostring(err)), 2)
  end
end

return expect
