--- Runs the missing points of a sweep plan in worker processes (collapse run FILE --jobs N).
-- Each worker is a fresh interpreter running one point (`collapse run FILE --task I`, or what
-- opts.worker(i) returns) with one BLAS thread, so N workers use N cores without
-- oversubscription and every point computes what a sequential run on one BLAS thread computes.
-- A worker writes its run's JSON atomically, as the sequential sweep does; the parent prints the
-- progress lines and, when a worker fails, stops starting new ones, lets the running ones finish
-- (their results are kept) and raises the failed worker's error. The parent waits for any child
-- (waitpid(-1)): start no other child processes while it runs. Ctrl-C reaches the workers too
-- (same process group); a parent killed otherwise (even by SIGKILL) takes its workers with it on
-- Linux (jobs.worker_start: PR_SET_PDEATHSIG); elsewhere they finish their point.
local process = require("collapse.process")
local core = require("collapse.core")
local fs = require("collapse.fs")
local sweep = require("collapse.sweep")

local jobs = {}

--- The interpreter running this program (the most negative index of `arg`), or "lua5.4".
function jobs.interpreter()
  if type(arg) ~= "table" then return "lua5.4" end
  local i = -1
  while arg[i - 1] ~= nil do i = i - 1 end
  return arg[i] or "lua5.4"
end

--- In a worker: end with the parent (a parent killed by SIGKILL leaves no orphans training on).
-- jobs.run passes its pid in COLLAPSE_PARENT_PID; without it (not a worker) this does nothing.
function jobs.worker_start()
  local parent = tonumber(os.getenv("COLLAPSE_PARENT_PID") or "")
  if parent then process.die_with_parent(math.tointeger(parent)) end
end

--- argv of a worker that calls require("collapse.cli").main(args) in a fresh interpreter.
function jobs.cli_argv(args)
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = ("%q"):format(tostring(a)) end
  return { jobs.interpreter(), "-e", ("require('collapse.jobs').worker_start(); require('collapse.cli').main({%s})")
    :format(table.concat(quoted, ", ")) }
end

--- One worker per core (the default of --jobs auto), never more workers than points to run.
function jobs.auto(points) return math.max(1, math.min(process.nproc(), points)) end

-- Same modules in the worker as here (package.path may have been set by the command script),
-- one BLAS thread; the BLAS kernel is inherited through the environment.
local function worker_env()
  return { LUA_PATH_5_4 = package.path, LUA_CPATH_5_4 = package.cpath, OPENBLAS_NUM_THREADS = "1",
    OMP_NUM_THREADS = "1", COLLAPSE_WORKER = "1", COLLAPSE_PARENT_PID = tostring(process.pid()) }
end

local function tail(path, n)
  local s = fs.read(path) or ""
  local lines = {}
  for l in s:gmatch("[^\n]+") do lines[#lines + 1] = l end
  return table.concat(lines, "\n", math.max(1, #lines - n + 1))
end

-- The runs in start order: plan order, or with opts.cost the costliest first (ties keep plan
-- order), so the last worker to finish is not the one that started a long run last.
local function start_order(todo, cost)
  if not cost then return todo end
  local keyed = {}
  for i, run in ipairs(todo) do
    local c = cost(run)
    if type(c) ~= "number" or c ~= c then
      error(("jobs.run: opts.cost(run) must return a number, got %s for run %s"):format(tostring(c), run.id), 3)
    end
    keyed[i] = { run = run, cost = c, pos = i }
  end
  table.sort(keyed, function(a, b)
    if a.cost ~= b.cost then return a.cost > b.cost end
    return a.pos < b.pos
  end)
  local out = {}
  for i, k in ipairs(keyed) do out[i] = k.run end
  return out
end

--- jobs.run(plan, {jobs = N, worker = function(index) -> argv, progress = bool,
--   cost = function(run) -> number, on_done = function(run, result)}): cost (optional) starts the
-- costliest runs first; on_done (optional) is called in this process with each finished run and
-- its result (read back from its JSON; runs finished earlier first): it may print or build a
-- report, but not wait for children. An error in it stops new starts, as a failed worker does.
function jobs.run(plan, opts)
  assert(type(opts.worker) == "function", "jobs.run: opts.worker must be a function(index) -> argv")
  local n, todo, failure = #plan.runs, {}, nil
  local function done(run, r)
    if not opts.on_done or failure then return end
    local ok, err = pcall(opts.on_done, run, r)
    if not ok then failure = ("after run %s finished: %s"):format(run.id, tostring(err)) end
  end
  for i, run in ipairs(plan.runs) do
    local r = sweep.load_finished(run.path)
    if r then
      if opts.progress then print(("[%d/%d] %s: finished earlier, skipped"):format(i, n, run.id)) end
      done(run, r)
    else
      todo[#todo + 1] = run
    end
  end
  todo = start_order(todo, opts.cost)
  local running, count = {}, 0
  local t0, done_now, next_i = core.clock(), 0, 1
  local env = worker_env()
  local function start(run)
    local log = os.tmpname()
    local pid = process.spawn(opts.worker(run.index), { env = env, stdout = log, stderr = log })
    running[pid] = { run = run, log = log }
    count = count + 1
    if opts.progress then
      print(("[%d/%d] %s%s"):format(run.index, n, run.id, sweep.eta(t0, done_now, #todo - next_i + 1)))
      io.stdout:flush()
    end
  end
  while true do
    while not failure and count < opts.jobs and next_i <= #todo do
      start(todo[next_i])
      next_i = next_i + 1
    end
    if count == 0 then break end
    local pid, code, signal = process.wait()
    local w = running[pid]
    if w then
      running[pid], count = nil, count - 1
      local r = code == 0 and sweep.load_finished(w.run.path) or nil
      if r then
        done_now = done_now + 1
        if opts.progress then print(("[%d/%d] %s"):format(w.run.index, n, sweep.done_line(r):gsub("^%s+", ""))) end
        done(w.run, r)
      elseif not failure then
        failure = ("run %s (point %d of %d) failed in its worker (%s):\n%s"):format(w.run.id, w.run.index, n,
          code and ("exit code " .. code) or signal, tail(w.log, 12))
      end
      os.remove(w.log)
    end
  end
  if failure then error("sweep: " .. failure .. "\n(the other finished runs are kept; rerun to resume)", 0) end
  return done_now
end

return jobs
