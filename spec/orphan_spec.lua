-- A parent of sweep workers killed with SIGKILL (nothing of it runs: no cleanup) takes its
-- workers with it (collapse.jobs.worker_start: Linux's PR_SET_PDEATHSIG), instead of leaving
-- them training on as orphans; a worker whose parent is already gone ends at once.
local fixture = require("support.fixture")
local sh = require("support.shell").run
local tmpdir = require("support.tmp").dir

local ROOT = fixture.root
local ENV = ("LUA_PATH=%q LUA_CPATH=%q "):format(package.path, package.cpath)

local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end
local function wait_for(cond, seconds)
  for _ = 1, seconds * 20 do
    if cond() then return true end
    os.execute("sleep 0.05")
  end
  return cond()
end
local function read_pid(path)
  local f = io.open(path)
  if not f then return nil end
  local pid = tonumber(f:read("a"):match("%d+"))
  f:close()
  return pid
end

-- A worker that records its pid, then spins for up to 30 s (a stand-in for a training point).
local WORKER = [[require('collapse.jobs').worker_start()
local f = assert(io.open(os.getenv('PIDFILE') .. '.tmp', 'w')); f:write(require('collapse.process').pid()); f:close()
os.rename(os.getenv('PIDFILE') .. '.tmp', os.getenv('PIDFILE'))
local t = os.time(); while os.time() - t < 30 do end]]

describe("sweep workers and a killed parent", function()
  it("end when their parent is killed with SIGKILL", function()
    local dir = tmpdir()
    local script = dir .. "/parent.lua" -- the parent: one worker running WORKER, waited for
    local f = assert(io.open(script, "w"))
    f:write(([[local jobs = require('collapse.jobs')
jobs.run({ runs = { { index = 1, id = 'spin', path = %q } } },
  { jobs = 1, worker = function() return { 'lua5.4', '-e', %q } end })]]):format(dir .. "/none.json", WORKER))
    f:close()
    local out = sh(("cd %q && PIDFILE=%q %s lua5.4 %q >%q 2>&1 & echo $!"):format(ROOT, dir .. "/worker.pid", ENV,
      script, dir .. "/parent.log"))
    local parent = assert(tonumber(out:match("%d+")), out)
    assert.is_true(wait_for(function() return read_pid(dir .. "/worker.pid") ~= nil end, 10), "worker did not start")
    local worker = read_pid(dir .. "/worker.pid")
    assert.is_true(alive(worker))
    os.execute("kill -9 " .. parent)
    assert.is_true(wait_for(function() return not alive(worker) end, 5), "worker " .. worker .. " outlived its parent")
  end)
  it("end at once when the parent named in COLLAPSE_PARENT_PID is already gone", function()
    local dir = tmpdir()
    local script = dir .. "/worker.lua"
    local f = assert(io.open(script, "w"))
    f:write(WORKER)
    f:close()
    local _, ok, code = sh(("cd %q && PIDFILE=%q COLLAPSE_PARENT_PID=1 %s lua5.4 %q"):format(ROOT, dir .. "/w.pid",
      ENV, script))
    assert.is_false(ok) -- killed by SIGTERM before it wrote its pid
    assert.is_nil(read_pid(dir .. "/w.pid"))
    assert.is_not_nil(code)
  end)
end)
