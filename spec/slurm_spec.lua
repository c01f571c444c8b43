-- `collapse slurm FILE`: the job array over a sweep's missing points and its collect job, on the
-- real local Slurm that scripts/test starts (scripts/slurm-local, SLURM_CONF exported); the
-- option and error checks run without a cluster.
local fs = require("collapse.fs")
local fixture = require("support.fixture")

local sh = require("support.shell").run

-- absolute: the commands run in the sweep's folder
local CLI = sh("cd '" .. fixture.root .. "' && pwd"):gsub("%s+$", "") .. "/scripts/collapse"

local function tmpdir() return (sh("mktemp -d"):gsub("%s+$", "")) end

local function listdir(dir)
  local out = {}
  for l in sh("ls -1A '" .. dir .. "'"):gmatch("[^\n]+") do out[#out + 1] = l end
  table.sort(out)
  return out
end

-- A sweep of 6 tiny points (3 weight decays x 2 seeds). The point named by $SLOW_POINT
-- ("<weight_decay>_<seed>") sleeps first, so a test can cancel it while it runs.
local function sweep_file(dir)
  local file = dir .. "/sweep.lua"
  fs.write_atomic(file, [[
local collapse = require("collapse")
local models = require("collapse.models")
return {
  out = "out", seeds = { 1, 2 },
  grid = { weight_decay = { 1e-4, 1e-3, 1e-2 } },
  experiment = { data = { train = collapse.data.conic{ n = 200, seed = 3 } }, epochs = 2, batch_size = 64,
    optimizer = { "Adam", lr = 1e-3 }, schedule = { "paper" },
    model = function(cfg)
      if os.getenv("SLOW_POINT") == ("%g_%d"):format(cfg.weight_decay, cfg.seed) then os.execute("sleep 120") end
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, batchnorm = true, width = 16,
        depth = 3, rng = collapse.rng(cfg.seed) }
    end },
}]])
  return file
end

local function in_dir(dir, cmd) return ("cd '%s' && %s"):format(dir, cmd) end

describe("collapse slurm: scripts and errors (no cluster needed)", function()
  it("writes the array over the missing points, K per task, the point list and the collect job", function()
    local d = tmpdir()
    sweep_file(d)
    local _, ok = sh(in_dir(d, CLI .. " run sweep.lua --out o --task 2"))
    assert.is_true(ok)
    local out
    out, ok = sh(in_dir(d, CLI .. " slurm sweep.lua --out o --chunk 2 --cpus-per-task 3 --partition p1,p-2 --time 1-02:00"))
    assert.is_true(ok, out)
    assert.matches("5 of 6 points missing: 3 array task(s)", out, 1, true)
    assert.equal("1 3\n4 5\n6\n", fs.read(d .. "/o/slurm/array.points"))
    local array = fs.read(d .. "/o/slurm/array.sbatch")
    for _, line in ipairs({ "#SBATCH --array=1-3", "#SBATCH --cpus-per-task=3", "#SBATCH --partition=p1,p-2",
      "#SBATCH --time=1-02:00", "#SBATCH --chdir=" .. d, "export OPENBLAS_NUM_THREADS=3 OMP_NUM_THREADS=3" }) do
      assert.matches("\n" .. line .. "\n", array, 1, true)
    end
    local collect = fs.read(d .. "/o/slurm/collect.sbatch")
    assert.matches('"slurm", "sweep.lua", "--out", "o", "--collect"', collect, 1, true)
    assert.matches("#SBATCH --cpus-per-task=1\n", collect, 1, true)
    -- written atomically: nothing but the three files and the log folder, no temporary left
    assert.same({ "array.points", "array.sbatch", "collect.sbatch", "logs" }, listdir(d .. "/o/slurm"))
    os.execute(("rm -rf '%s'"):format(d))
  end)

  it("--collect lists the missing points and fails; nothing is written", function()
    local d = tmpdir()
    sweep_file(d)
    local out, ok, code = sh(in_dir(d, CLI .. " slurm sweep.lua --collect"))
    assert.is_false(ok)
    assert.equal(2, code)
    assert.matches("collapse slurm: 6 point(s) of out have no finished result: 1 (weight_decay=0.0001_seed=1), "
      .. "2 (weight_decay=0.0001_seed=2)", out, 1, true)
    assert.matches("resubmit them with `collapse slurm sweep.lua --out out --submit`", out, 1, true)
    assert.is_false(fs.exists(d .. "/out/sweep.csv"))
    os.execute(("rm -rf '%s'"):format(d))
  end)

  it("errors clearly when sbatch is missing, FILE is not a sweep, or an option is malformed", function()
    local d = tmpdir()
    sweep_file(d)
    -- a PATH with the interpreter only: no sbatch; nothing is written
    os.execute(("mkdir '%s/bin' && ln -s \"$(command -v lua5.4)\" '%s/bin/lua5.4'"):format(d, d))
    local out, ok, code = sh(in_dir(d, ("PATH='%s/bin' %s slurm sweep.lua --submit"):format(d, CLI)))
    assert.is_false(ok)
    assert.equal(2, code)
    assert.equal("collapse slurm: sbatch not found on PATH; install Slurm or run without --submit\n", out)
    assert.is_false(fs.exists(d .. "/out"))
    fs.write_atomic(d .. "/single.lua", "return { data = 'conic', model = 'paper_mlp', epochs = 1 }")
    out, ok = sh(in_dir(d, CLI .. " slurm single.lua"))
    assert.is_false(ok)
    assert.matches("collapse slurm: single.lua is not a sweep: it returns an experiment spec without `grid` "
      .. "(run it with `collapse run single.lua`)", out, 1, true)
    local cases = {
      { "sweep.lua --chunk 0", "--chunk needs a whole number >= 1, got '0'" },
      { "sweep.lua --partition a,,b", "--partition needs a partition name or a comma-separated list" },
      { "sweep.lua --time 90m", "--time needs a Slurm time limit" },
      { "sweep.lua --cpus-per-task 1.5", "--cpus-per-task needs a whole number >= 1, got '1.5'" },
      { "sweep.lua --time 1h", "--time needs a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED), got '1h'" },
      { "sweep.lua --partition 'a b'", "--partition needs a partition name or a comma-separated list (letters, digits, _ . -), got 'a b'" },
      { "sweep.lua --jobs 2", "unknown option '--jobs' (expected --out, --partition, --time, --cpus-per-task, --chunk, --submit, --collect)" },
      { "sweep.lua --out", "--out needs a value" },
      { "sweep.lua --chunk 2 --chunk 3", "option --chunk given twice" },
      { "sweep.lua other.lua", "expected one FILE, got 'sweep.lua' and 'other.lua'" },
      { "", "needs a sweep FILE.lua" },
      { "missing.lua", "cannot open missing.lua" },
      { "sweep.lua --collect --submit", "--collect takes only --out" },
    }
    for _, c in ipairs(cases) do
      out, ok, code = sh(in_dir(d, CLI .. " slurm " .. c[1]))
      assert.is_false(ok, c[1])
      assert.equal(2, code, c[1])
      assert.matches("collapse slurm: " .. c[2], out, 1, true)
    end
    assert.is_false(fs.exists(d .. "/out"))
    os.execute(("rm -rf '%s'"):format(d))
  end)
end)

-- The local cluster: SLURM_CONF names it and sinfo answers, else these specs are skipped.
local function cluster()
  local skip = os.getenv("COLLAPSE_SLURM_SKIP")
  if skip and skip ~= "" then return nil, skip end
  local conf = os.getenv("SLURM_CONF")
  if not conf or conf == "" then return nil, "no local Slurm cluster: SLURM_CONF is not set (scripts/test starts scripts/slurm-local)" end
  local out = sh("sinfo -h -o %T")
  if not out:match("idle") and not out:match("mix") and not out:match("alloc") then
    return nil, "no local Slurm cluster: sinfo shows no usable node: " .. out
  end
  return conf
end

-- Waits (at most `limit` s) until none of the jobs is in squeue; true when they all left in time.
local function wait_jobs(ids, limit)
  for _ = 1, limit * 4 do
    local out = sh("squeue -h -o %i -j " .. table.concat(ids, ","))
    if not out:match("%d") then return true end
    os.execute("sleep 0.25")
  end
  return false
end

-- The job ids `collapse slurm --submit` printed: array (or nil) and collect.
local function submitted(out)
  local a, c = out:match("submitted array job (%d+) %(%d+ tasks%) and collect job (%d+)")
  return a, c or out:match("submitted collect job (%d+)")
end

-- mtime (ns) and size of every result file, by name.
local function stamps(dir)
  local t = {}
  for l in sh(("stat -c '%%n %%.9Y %%s' '%s'/*.json"):format(dir)):gmatch("[^\n]+") do
    local name, rest = l:match("^(%S+) (.*)$")
    t[name:match("[^/]+$")] = rest
  end
  return t
end

local conf, why = cluster()
local test = conf and it or function(name) pending(name .. " -- skipped: " .. why) end

describe("collapse slurm on the local Slurm cluster", function()
  test("a 6-point array completes with a sweep.csv equal bit for bit to a sequential run's; a cancelled task is "
    .. "all a resubmission runs", function()
    local d = tmpdir()
    sweep_file(d)
    local out, ok = sh(in_dir(d, "OPENBLAS_NUM_THREADS=1 " .. CLI .. " run sweep.lua --out seq"))
    assert.is_true(ok, out)
    local reference = fs.read(d .. "/seq/sweep.csv")
    assert.is_nil(reference:match("seconds"), "no timing column in sweep.csv")

    -- 1. the whole sweep as an array of 6 tasks, then the collect job
    out, ok = sh(in_dir(d, CLI .. " slurm sweep.lua --out arr --submit"))
    assert.is_true(ok, out)
    local array, collect = submitted(out)
    assert.truthy(array, out)
    assert.is_true(wait_jobs({ array, collect }, 60), "jobs still queued after 60 s")
    assert.equal("1\n2\n3\n4\n5\n6\n", fs.read(d .. "/arr/slurm/array.points"))
    assert.equal(reference, fs.read(d .. "/arr/sweep.csv"))
    assert.truthy(fs.exists(d .. "/arr/report/index.html"))
    assert.matches("collected arr", fs.read(("%s/arr/slurm/logs/collect-%s.out"):format(d, collect)), 1, true)

    -- 2. point 4 (weight decay 1e-3, seed 2) sleeps; cancel its task while it runs
    out, ok = sh(in_dir(d, "SLOW_POINT=0.001_2 " .. CLI .. " slurm sweep.lua --out can --submit"))
    assert.is_true(ok, out)
    array, collect = submitted(out)
    local running = false
    for _ = 1, 240 do
      local n = #listdir(d .. "/can/runs")
      running = n == 5 and sh(("squeue -h -o %%T -j %s_4"):format(array)):match("RUNNING") ~= nil
      if running then break end
      os.execute("sleep 0.25")
    end
    assert.is_true(running, "task 4 running with the 5 other points done")
    sh(("scancel %s_4"):format(array))
    assert.is_true(wait_jobs({ array, collect }, 60))
    assert.is_false(fs.exists(d .. "/can/sweep.csv"))
    assert.matches("1 point(s) of can have no finished result: 4 (weight_decay=0.001_seed=2)",
      fs.read(("%s/can/slurm/logs/collect-%s.out"):format(d, collect)), 1, true)
    local before = stamps(d .. "/can/runs")
    assert.is_nil(before["weight_decay=0.001_seed=2.json"])

    -- 3. resubmitted: one task, point 4 only; the other results untouched
    os.execute("sleep 0.05") -- so a rewrite of any file would show a later mtime
    out, ok = sh(in_dir(d, CLI .. " slurm sweep.lua --out can --submit"))
    assert.is_true(ok, out)
    assert.matches("1 of 6 points missing: 1 array task(s)", out, 1, true)
    array, collect = submitted(out)
    assert.equal("4\n", fs.read(d .. "/can/slurm/array.points"))
    assert.is_true(wait_jobs({ array, collect }, 60))
    local after = stamps(d .. "/can/runs")
    assert.truthy(after["weight_decay=0.001_seed=2.json"])
    after["weight_decay=0.001_seed=2.json"] = nil
    assert.same(before, after)
    assert.equal(reference, fs.read(d .. "/can/sweep.csv"))
    local logs = 0
    for _, name in ipairs(listdir(d .. "/can/slurm/logs")) do
      if name:match("^array%-" .. array .. "_") then logs = logs + 1 end
    end
    assert.equal(1, logs)
    os.execute(("rm -rf '%s'"):format(d))
  end)
end)
