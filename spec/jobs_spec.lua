-- `collapse run FILE --jobs N | --task I | --list`: sweep points in worker processes give the same
-- result files as a sequential run on one BLAS thread; points are addressed by their 1-based
-- index; a failing worker fails the sweep with its error and keeps the others' results.
local json = require("collapse.json")
local fs = require("collapse.fs")
local fixture = require("support.fixture")

local CLI = fixture.root .. "/scripts/collapse"

local tmpdir = require("support.tmp").dir

local listdir = require("support.tmp").list

-- Runs the command; returns its output and whether it exited 0.
local sh = require("support.shell").run

-- A sweep file of 4 tiny points (2 weight decays x 2 seeds); `fail_wd` makes that point's model
-- factory raise.
local function sweep_file(dir, fail_wd)
  local file = dir .. "/sweep.lua"
  local f = io.open(file, "w")
  f:write(([[
local collapse = require("collapse")
local models = require("collapse.models")
return {
  out = %q, seeds = { 1, 2 }, progress = true,
  grid = { weight_decay = { 1e-4, 1e-3 } },
  experiment = { data = { train = collapse.data.conic{ n = 400, seed = 3 } }, epochs = 3, batch_size = 64,
    optimizer = { "Adam", lr = 1e-3 }, schedule = { "paper" },
    model = function(cfg)
      if cfg.weight_decay == %s then error("model factory refuses weight_decay " .. cfg.weight_decay) end
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, batchnorm = true, width = 48,
        depth = 3, rng = collapse.rng(cfg.seed) }
    end },
}]]):format(dir .. "/out", fail_wd and tostring(fail_wd) or "nil"))
  f:close()
  return file
end

-- Removes timing: every key named "seconds" (run and per-epoch wall time), recursively.
local function strip_timing(t)
  if type(t) ~= "table" then return t end
  t.seconds = nil
  for _, v in pairs(t) do strip_timing(v) end
  return t
end

local function csv_without_seconds(path)
  local rows, drop = {}, nil
  for line in io.lines(path) do
    local cells = {}
    for c in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = c end
    if not drop then
      for i, c in ipairs(cells) do if c == "seconds" then drop = i end end
    end
    table.remove(cells, drop)
    rows[#rows + 1] = table.concat(cells, ",")
  end
  return table.concat(rows, "\n")
end

describe("collapse run --jobs", function()
  it("gives the same run JSON and sweep CSV as a sequential run on one BLAS thread", function()
    local a, b = tmpdir(), tmpdir()
    local _, ok1 = sh(("OPENBLAS_NUM_THREADS=1 %s run %s"):format(CLI, sweep_file(a)))
    local out2, ok2 = sh(("%s run %s --jobs 2"):format(CLI, sweep_file(b)))
    assert.is_true(ok1)
    assert.is_true(ok2, out2)
    local names = listdir(a .. "/out/runs")
    assert.equal(4, #names)
    assert.same(names, listdir(b .. "/out/runs"))
    for _, name in ipairs(names) do
      local ra = fs.read(a .. "/out/runs/" .. name)
      local rb = fs.read(b .. "/out/runs/" .. name)
      assert.is_true(json.decode(rb).finished)
      assert.equal(json.encode(strip_timing(json.decode(ra)), { indent = 1 }),
        json.encode(strip_timing(json.decode(rb)), { indent = 1 }), name)
      -- everything but the timing lines is byte-identical in the files themselves
      assert.equal(ra:gsub('"seconds":[^\n]*', ""), (rb:gsub('"seconds":[^\n]*', "")))
    end
    assert.equal(csv_without_seconds(a .. "/out/sweep.csv"), csv_without_seconds(b .. "/out/sweep.csv"))
    assert.equal(fs.read(a .. "/out/sweep.json"):gsub(a, ""), (fs.read(b .. "/out/sweep.json"):gsub(b, "")))
    -- progress: one start and one done line per point
    local starts, dones = 0, 0
    for l in out2:gmatch("[^\n]+") do
      if l:match("^%[%d/4%] weight_decay=") then starts = starts + 1 end
      if l:match("^%[%d/4%] done in") then dones = dones + 1 end
    end
    assert.equal(4, starts, out2)
    assert.equal(4, dones, out2)
    -- resume: a rerun skips every finished point and starts no worker
    local out3, ok3 = sh(("%s run %s --jobs 2"):format(CLI, sweep_file(b)))
    assert.is_true(ok3)
    local skipped = select(2, out3:gsub("finished earlier, skipped", ""))
    assert.equal(4, skipped, out3)
    os.execute(("rm -rf '%s' '%s'"):format(a, b))
  end)

  it("a failing worker fails the sweep with its error; the other points' results are kept", function()
    local d = tmpdir()
    local out, ok = sh(("%s run %s --jobs 2"):format(CLI, sweep_file(d, 1e-3)))
    assert.is_false(ok)
    assert.matches("model factory refuses weight_decay 0.001", out, 1, true)
    assert.matches("failed in its worker", out, 1, true)
    local names = listdir(d .. "/out/runs")
    for _, name in ipairs(names) do assert.matches("^weight_decay=0.0001_seed=%d.json$", name) end
    assert.is_true(#names >= 1, out) -- runs that finished are kept (at most the failed one's partner started after)
    assert.is_false(fs.exists(d .. "/out/sweep.csv"))
    os.execute(("rm -rf '%s'"):format(d))
  end)

  it("rejects a bad --jobs value naming the flag", function()
    local d = tmpdir()
    local out, ok = sh(("%s run %s --jobs 0"):format(CLI, sweep_file(d)))
    assert.is_false(ok)
    assert.matches("--jobs needs a number >= 1 or 'auto', got '0'", out, 1, true)
    os.execute(("rm -rf '%s'"):format(d))
  end)
end)

describe("collapse run --task and --list", function()
  it("--list shows every point with its index and state; --task I runs exactly point I", function()
    local d = tmpdir()
    local file = sweep_file(d)
    local out = sh(("%s run %s --list"):format(CLI, file))
    assert.matches("   1  missing  weight_decay=0.0001_seed=1\n   2  missing  weight_decay=0.0001_seed=2\n"
      .. "   3  missing  weight_decay=0.001_seed=1\n   4  missing  weight_decay=0.001_seed=2\n0 of 4 points done", out, 1, true)
    local _, ok = sh(("%s run %s --task 3"):format(CLI, file))
    assert.is_true(ok)
    assert.same({ "weight_decay=0.001_seed=1.json" }, listdir(d .. "/out/runs"))
    assert.is_false(fs.exists(d .. "/out/sweep.csv")) -- not before every point is done
    out = sh(("%s run %s --list"):format(CLI, file))
    assert.matches("   3  done     weight_decay=0.001_seed=1", out, 1, true)
    assert.matches("1 of 4 points done", out, 1, true)
    -- SLURM array jobs: the task number comes from SLURM_ARRAY_TASK_ID
    _, ok = sh(("SLURM_ARRAY_TASK_ID=1 %s run %s"):format(CLI, file))
    assert.is_true(ok)
    assert.same({ "weight_decay=0.0001_seed=1.json", "weight_decay=0.001_seed=1.json" }, listdir(d .. "/out/runs"))
    -- the last tasks write the table, complete
    sh(("%s run %s --task 2"):format(CLI, file))
    sh(("%s run %s --task 4"):format(CLI, file))
    local lines = 0
    for _ in io.lines(d .. "/out/sweep.csv") do lines = lines + 1 end
    assert.equal(5, lines)
    out, ok = sh(("%s run %s --task 5"):format(CLI, file))
    assert.is_false(ok)
    assert.matches("task 5 is outside 1..4", out, 1, true)
    os.execute(("rm -rf '%s'"):format(d))
  end)
end)

describe("collapse.process (the workers' spawn and wait)", function()
  local process = require("collapse.process")

  it("runs a program with extra variables, one log for stdout and stderr, and reports its exit", function()
    local log = os.tmpname()
    local pid = process.spawn({ "sh", "-c", "echo out1; echo err1 >&2; echo out2 $COLLAPSE_SPEC_VAR; exit 3" },
      { stdout = log, stderr = log, env = { COLLAPSE_SPEC_VAR = "x y" } })
    local got, code = process.wait(pid)
    assert.equal(pid, got)
    assert.equal(3, code)
    assert.equal("out1\nerr1\nout2 x y\n", fs.read(log))
    pid = process.spawn({ "sh", "-c", "kill -9 $$" })
    local _, none, why = process.wait(pid)
    assert.is_nil(none)
    assert.equal("killed by signal 9", why)
    os.remove(log)
  end)

  it("names what is wrong with its arguments", function()
    local ok, err = pcall(process.spawn, {})
    assert.is_false(ok)
    assert.matches("process.spawn: argument #1 must be a non-empty list", err, 1, true)
    ok, err = pcall(process.spawn, { "/no/such/program" })
    assert.is_false(ok)
    assert.matches("cannot start '/no/such/program'", err, 1, true)
    ok, err = pcall(process.spawn, { "true" }, { env = { X = {} } })
    assert.is_false(ok)
    assert.matches("opts.env must map variable names to strings", err, 1, true)
    assert.is_true(process.nproc() >= 1)
  end)
end)

describe("jobs.run (the pool under collapse run --jobs and collapse demo)", function()
  local jobs = require("collapse.jobs")

  -- A plan of runs whose "worker" writes a finished result JSON for its run (no training).
  local function plan(dir, costs)
    local runs = {}
    for i, c in ipairs(costs) do
      runs[i] = { index = i, id = "run" .. i, path = ("%s/run%d.json"):format(dir, i), cost = c }
    end
    return { runs = runs }
  end
  local function worker(p, fail_index)
    return function(index)
      -- the failing worker ends after the others have (1 s is ample for a printf): on_done is not
      -- called for runs that finish after a failure, so without the wait the test would race
      if index == fail_index then return { "sh", "-c", "sleep 1; echo worker refuses >&2; exit 4" } end
      local body = ('{"finished": true, "final": {"index": %d}, "seconds": 0}'):format(index)
      return { "sh", "-c", ("printf '%%s' '%s' > '%s'"):format(body, p.runs[index].path) }
    end
  end

  it("starts the costliest runs first (ties in plan order), calls on_done once per finished run", function()
    local d = tmpdir()
    local p = plan(d, { 1, 3, 2, 3, 0.5 })
    -- run 5 finished earlier: on_done sees it first, and no worker starts for it
    fs.write_atomic(p.runs[5].path, '{"finished": true, "final": {"index": 5}}')
    local seen = {}
    local started = jobs.run(p, { jobs = 1, worker = worker(p), cost = function(run) return run.cost end,
      on_done = function(run, r)
        assert.equal(run.index, r.final.index)
        seen[#seen + 1] = run.index
      end })
    assert.equal(4, started)
    assert.same({ 5, 2, 4, 3, 1 }, seen) -- one worker: finishing order is start order
    -- without cost: plan order
    os.execute(("rm -f '%s'/*.json"):format(d))
    seen = {}
    jobs.run(p, { jobs = 1, worker = worker(p), on_done = function(run) seen[#seen + 1] = run.index end })
    assert.same({ 1, 2, 3, 4, 5 }, seen)
    os.execute(("rm -rf '%s'"):format(d))
  end)

  it("an error in on_done stops new starts and is raised once the running workers end", function()
    local d = tmpdir()
    local p = plan(d, { 1, 1, 1 })
    local ok, err = pcall(jobs.run, p, { jobs = 1, worker = worker(p),
      on_done = function(run) if run.index == 1 then error("report failed") end end })
    assert.is_false(ok)
    assert.matches("after run run1 finished: .*report failed", err)
    assert.is_true(fs.exists(p.runs[1].path))
    assert.is_false(fs.exists(p.runs[2].path)) -- not started after the failure
    os.execute(("rm -rf '%s'"):format(d))
  end)

  it("a failed worker is not passed to on_done; a bad cost names the run", function()
    local d = tmpdir()
    local p = plan(d, { 1, 1 })
    local seen = {}
    local ok, err = pcall(jobs.run, p, { jobs = 2, worker = worker(p, 2),
      on_done = function(run) seen[#seen + 1] = run.index end })
    assert.is_false(ok)
    assert.matches("run run2 (point 2 of 2) failed in its worker (exit code 4)", err, 1, true)
    assert.matches("worker refuses", err, 1, true)
    assert.same({ 1 }, seen)
    local q = plan(d .. "/none", { 1 }) -- not finished
    ok, err = pcall(jobs.run, q, { jobs = 1, worker = worker(q), cost = function() return "big" end })
    assert.is_false(ok)
    assert.matches("jobs.run: opts.cost(run) must return a number, got big for run run1", err, 1, true)
    os.execute(("rm -rf '%s'"):format(d))
  end)
end)
