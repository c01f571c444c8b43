-- Bad command lines: every one exits non-zero (2) with "collapse: <command>: ..." naming the flag
-- and what was expected; nothing is silently ignored. Each runs scripts/collapse in its own process.
local C = require("support.catalogue")

local function collapse_cmd(args)
  return function()
    local p = io.popen(("scripts/collapse %s 2>&1; echo \"exit=$?\""):format(args)) -- busted runs from the root
    local out = p:read("a")
    p:close()
    local rc = tonumber(out:match("exit=(%d+)%s*$"))
    if rc == 0 then return out end -- the catalogue fails: no error
    error(("[exit %d] %s"):format(rc, out), 0)
  end
end

local B = "bound --lambda 1e-3 --classes 10 --loss 0.5 "
local spec_file = C.file("return 42", ".lua")

local entries = {
  { "unknown command", collapse_cmd("frobnicate"), { "[exit 2]", "unknown command 'frobnicate'", "usage" } },
  { "bound: misspelt flag --lamda", collapse_cmd("bound --lamda 3 --classes 10 --loss 1"),
    { "[exit 2]", "bound: unknown flag --lamda", "--lambda" } },
  { "bound: --q abc", collapse_cmd(B .. "--q abc"), { "[exit 2]", "bound: --q expects a number, got 'abc'" } },
  { "bound: --per-class 1.5", collapse_cmd(B .. "--per-class 1.5"), { "[exit 2]", "bound: --per-class expects an integer, got '1.5'" } },
  { "bound: --classes ten", collapse_cmd("bound --lambda 1e-3 --classes ten --loss 1"),
    { "[exit 2]", "--classes expects an integer, got 'ten'" } },
  { "bound: --lambda 0x10 (hex)", collapse_cmd("bound --lambda 0x10 --classes 10 --loss 1"),
    { "[exit 2]", "--lambda expects a number, got '0x10'" } },
  { "bound: --loss inf", collapse_cmd("bound --lambda 1e-3 --classes 10 --loss 1e999"),
    { "[exit 2]", "--loss expects a number, got '1e999'" } },
  { "bound: --lambda missing", collapse_cmd("bound --classes 10 --loss 1"), { "[exit 2]", "bound: needs --lambda" } },
  { "bound: --lambda without a value", collapse_cmd("bound --classes 10 --loss 1 --lambda"),
    { "[exit 2]", "bound: --lambda needs a value" } },
  { "bound: --lambda given twice", collapse_cmd(B .. "--lambda 2"), { "[exit 2]", "--lambda given twice" } },
  { "bound: --no-bn=yes", collapse_cmd(B .. "--no-bn=yes"), { "[exit 2]", "--no-bn takes no value" } },
  { "bound: a stray argument", collapse_cmd(B .. "extra"), { "[exit 2]", "bound: unexpected argument 'extra'" } },
  { "bound: lambda 0 refused by the bound", collapse_cmd("bound --lambda 0 --classes 10 --loss 1"),
    { "[exit 2]", "lambda must be a positive number, got 0" } },
  { "run: no file", collapse_cmd("run"), { "[exit 2]", "run needs a FILE.lua" } },
  { "run: two files", collapse_cmd("run a.lua b.lua"), { "[exit 2]", "run: unexpected argument 'b.lua'" } },
  { "run: missing file", collapse_cmd("run /nonexistent/spec.lua"), { "[exit 2]", "/nonexistent/spec.lua" } },
  { "run: file returns a number", collapse_cmd("run " .. spec_file), { "[exit 2]", "must return an experiment or sweep spec table" } },
  { "run: --set without '='", collapse_cmd("run " .. spec_file .. " --set epochs"), { "[exit 2]", "--set expects key=value, got 'epochs'" } },
  { "run: unknown flag", collapse_cmd("run " .. spec_file .. " --epochs 3"), { "[exit 2]", "run: unknown flag --epochs" } },
  { "report: unknown flag", collapse_cmd("report /tmp --x weight_decay"), { "[exit 2]", "report: unknown flag --x" } },
  { "report: empty folder", collapse_cmd("report " .. C.dir()), { "[exit 2]", "no finished run found" } },
  { "demo: --quick=1", collapse_cmd("demo --quick=1"), { "[exit 2]", "--quick takes no value" } },
  { "demo: unknown flag", collapse_cmd("demo --fast"), { "[exit 2]", "demo: unknown flag --fast" } },
}

local valid = {
  { "bound with --flag=value and --per-class", function()
      local out = collapse_cmd("bound --lambda=1e-3 --classes 10 --loss 1 --per-class 100 --no-bn --q 0.1")()
      assert(out:find("optimal loss L*", 1, true), out)
    end },
  { "help", function() assert(collapse_cmd("help")():find("usage: collapse", 1, true)) end },
}

describe("bad input: the command line", function()
  C.run(it, entries)
  C.valid(it, valid)
  teardown(C.cleanup)
end)

return entries
