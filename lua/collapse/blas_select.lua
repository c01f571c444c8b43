--- Picks OpenBLAS's kernel ("core") before collapse.core loads OpenBLAS; collapse.blas_info()
-- reports the result. OpenBLAS reads OPENBLAS_CORETYPE once, when the library is loaded, so this
-- runs first (lua/collapse/init.lua). The rule, in order:
--   1. OPENBLAS_CORETYPE set by the user: it wins, always.
--   2. COLLAPSE_BLAS_AUTO=0: opt-out, OpenBLAS chooses by itself.
--   3. OpenBLAS already in the process (loaded by the host program): too late, say so.
--   4. The CPU supports a better core than OpenBLAS 0.3.21 would pick (collapse.cpu): set it.
-- A choice made here is marked in COLLAPSE_BLAS_CHOSEN, so child processes (sweep workers)
-- inherit it and report it as collapse's, not as the user's.
local cpu = require("collapse.cpu")

local M = {}
local chosen -- cached: one decision per process (the environment is per process)

local function decide(features)
  local env, marker = os.getenv("OPENBLAS_CORETYPE"), os.getenv("COLLAPSE_BLAS_CHOSEN")
  local pick = cpu.openblas_pick(features)
  local best, feature = cpu.best_core(features)
  local d = { openblas_pick = pick, cpu_best = best }
  local why = ("CPU has %s; OpenBLAS 0.3.21 would pick %s"):format(feature, pick)
  if env and env ~= "" and env == marker then
    d.by, d.core, d.reason = "collapse", env, "chosen by collapse (in a parent process): " .. why
  elseif env and env ~= "" then
    d.by, d.core, d.reason = "user", env, ("set by user (OPENBLAS_CORETYPE=%s)"):format(env)
  elseif os.getenv("COLLAPSE_BLAS_AUTO") == "0" then
    d.by, d.reason = "openblas", "OpenBLAS's own choice (COLLAPSE_BLAS_AUTO=0: automatic choice off)"
  else
    local core = cpu.choose(features, pick)
    if core and cpu.openblas_loaded() then
      d.by, d.reason = "openblas", ("OpenBLAS's own choice: it was loaded before collapse, too late to choose "
        .. "(start the program with OPENBLAS_CORETYPE=%s for the faster kernel)"):format(core)
    elseif core then
      cpu.setenv("OPENBLAS_CORETYPE", core)
      cpu.setenv("COLLAPSE_BLAS_CHOSEN", core)
      d.by, d.core, d.reason = "collapse", core, "chosen by collapse: " .. why
    else
      d.by, d.reason = "openblas", ("OpenBLAS's own choice (%s; the best this CPU supports is %s)"):format(pick, best)
    end
  end
  return d
end

--- The decision for this process: {by = "collapse" | "user" | "openblas", core = name set or nil,
-- reason = text, openblas_pick = core OpenBLAS 0.3.21 picks by itself, cpu_best = best core}.
-- opts.cpu (tests only): a feature table as collapse.cpu.features() returns, instead of this CPU;
-- only the first call decides.
function M.select(opts)
  if not chosen then chosen = decide(opts and opts.cpu or nil) end
  return chosen
end

return M
