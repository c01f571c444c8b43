--- The `collapse` command: run, report, bound, demo. See `collapse help`.
local collapse = require("collapse")
local cli_flags = require("collapse.cli_flags")

local cli = {}

local USAGE = [[
usage: collapse <command> [options]

  run FILE.lua [--out DIR] [--set key=value ...] [--jobs N|auto] [--task I] [--list]
        FILE returns an experiment spec (or a sweep spec, with `grid`); --set overrides a field
        (epochs=5), an optimiser option (weight_decay=1e-3, lr=...) or a config entry (width=300).
        Sweeps: --jobs runs the points in N worker processes (auto: one per core), one BLAS
        thread each; --task I runs point I only (also SLURM_ARRAY_TASK_ID); --list shows the
        points and which are done.
  slurm FILE.lua [--out DIR] [--partition P] [--time T] [--cpus-per-task N] [--chunk K] [--submit]
        writes DIR/slurm/array.sbatch (a job array over the missing points) and collect.sbatch;
        --submit submits both through sbatch; --collect writes the table and report (docs/cluster.md).
  report DIR
        writes DIR/report/index.html (tables + plots) for a run or sweep folder.
  bound --lambda L --classes C --loss X [--per-class n] [--no-bn] [--q 0.05]
        the optimal loss and the collapse certified by a regularised loss X (docs/theory.md).
  measure FEATURES.npy LABELS.npy [--classifier W.npy] [--lambda L --loss X] [--json OUT] ...
        collapse metrics of stored features (.npy, .npz members, CSV), streamed; --convention K=V;
        `collapse measure --help` (docs/metrics.md).
  demo [--out DIR] [--quick] [--jobs N|auto]
        the default experiment: BN vs no BN across weight decay on conic data, then on a
        Fashion-MNIST subset when the Debian package is installed; its runs go to one worker
        process per core (--jobs 1: all in this process; --part conic|fashion_mnist --task I
        runs one point, as the workers do).
  help
]]

local function die(msg)
  io.stderr:write("collapse: ", msg, "\n")
  os.exit(2)
end

-- Every command's flags, parsed strictly by collapse.cli_flags (unknown flags and bad values exit 2).
local FLAGS = {
  run = { positionals = 1, flags = { { name = "out", type = "string" }, { name = "set", type = "set" },
    -- sweep flags: values checked by RUN_FLAGS below ("auto" is a valid --jobs)
    { name = "jobs", type = "string" }, { name = "task", type = "string" }, { name = "list", type = "boolean" } } },
  report = { positionals = 1, flags = {} },
  bound = { positionals = 0, flags = {
    { name = "lambda", type = "number", required = true }, { name = "classes", type = "integer", required = true },
    { name = "loss", type = "number", required = true }, { name = "per-class", type = "integer" },
    { name = "no-bn", type = "boolean" }, { name = "q", type = "number" } } },
  demo = { positionals = 0, flags = { { name = "out", type = "string" }, { name = "quick", type = "boolean" },
    -- --part/--task: a worker of the demo's own --jobs (demo.lua)
    { name = "jobs", type = "string" }, { name = "part", type = "string" }, { name = "task", type = "string" } } },
}

local function parse(cmd, args)
  local ok, pos, flags = pcall(cli_flags.parse, cmd, FLAGS[cmd], args)
  if not ok then die(pos) end
  return pos, flags, flags.set or {}
end

local OPTIMIZER_KEYS = { lr = true, weight_decay = true, momentum = true, eps = true, dampening = true, nesterov = true }

local function apply_sets(spec, sets)
  local e = spec.grid and spec.experiment or spec
  for _, kv in ipairs(sets) do
    local k, v = kv[1], kv[2]
    if OPTIMIZER_KEYS[k] then e.optimizer[k] = v
    elseif k:match("^config%.") then
      e.config = e.config or {}
      e.config[k:sub(8)] = v
    elseif k == "seeds" then spec.seeds = { v }
    else e[k] = v end
  end
end

-- run's sweep flags, in one table: flag -> reader of its value (true: a boolean flag).
local RUN_FLAGS = {
  jobs = function(v)
    if v == "auto" then return v end
    local n = math.tointeger(tonumber(v))
    if not n or n < 1 then die("--jobs needs a number >= 1 or 'auto', got '" .. v .. "'") end
    return n
  end,
  task = function(v)
    local n = math.tointeger(tonumber(v))
    if not n or n < 1 then die("--task needs a point number >= 1 (see --list), got '" .. v .. "'") end
    return n
  end,
  list = true,
}

-- {jobs =, task =, list =} from the flags; without any of them, SLURM_ARRAY_TASK_ID names the task.
local function sweep_mode(flags)
  local mode = {}
  for name, read in pairs(RUN_FLAGS) do
    if flags[name] ~= nil then mode[name] = read == true or read(flags[name]) end
  end
  local slurm = os.getenv("SLURM_ARRAY_TASK_ID")
  if not (mode.jobs or mode.task or mode.list) and slurm and slurm ~= "" then
    mode.task = math.tointeger(tonumber(slurm)) or die("SLURM_ARRAY_TASK_ID is not an integer: " .. slurm)
    mode.from_slurm = true
  end
  return mode
end

-- The worker's command line: this one without --jobs/--list, with --task I.
local function worker_args(args, index)
  local out, i = { "run" }, 1
  while i <= #args do
    local a = args[i]
    if a == "--jobs" or a == "--task" then i = i + 2
    elseif a == "--list" then i = i + 1
    else out[#out + 1] = a; i = i + 1 end
  end
  out[#out + 1] = "--task"
  out[#out + 1] = tostring(index)
  return out
end

local function print_list(spec)
  local points, done = require("collapse.sweep").list(spec), 0
  for _, p in ipairs(points) do
    print(("%4d  %-7s  %s"):format(p.index, p.state, p.id))
    if p.state == "done" then done = done + 1 end
  end
  print(("%d of %d points done"):format(done, #points))
end

local function run_sweep(spec, args, mode)
  if mode.list then return print_list(spec) end
  local opts = { task = mode.task }
  if mode.jobs and not mode.task then
    local jobs = require("collapse.jobs")
    opts.jobs = mode.jobs == "auto" and jobs.auto(#require("collapse.sweep").plan(spec).runs) or mode.jobs
    opts.worker = function(index) return jobs.cli_argv(worker_args(args, index)) end
  end
  local r = collapse.sweep(spec, opts)
  if r.partial then
    print(("task %d finished; the table is written once every point is done"):format(r.task))
  else
    print(("sweep finished: %d runs, table %s"):format(#r.runs, r.csv))
  end
end

function cli.run(args)
  local pos, flags, sets = parse("run", args)
  local file = pos[1] or die("run needs a FILE.lua (see `collapse help`)")
  local chunk, err = loadfile(file)
  if not chunk then die(err) end
  local ok, spec = pcall(chunk)
  if not ok then die(tostring(spec)) end
  if type(spec) ~= "table" then die(file .. " must return an experiment or sweep spec table") end
  apply_sets(spec, sets)
  if flags.out then spec.out = flags.out end
  local mode = sweep_mode(flags)
  if spec.grid then return run_sweep(spec, args, mode) end
  if mode.jobs or (mode.task and not mode.from_slurm) or mode.list then die("--jobs, --task and --list need a sweep spec (one with `grid`)") end
  local r = collapse.experiment(spec):run()
  local f = r.final
  print(("finished %s: loss %.4g, train accuracy %.4f, intra %s, inter %s%s"):format(r.name or "run",
    f.train_loss, f.train_accuracy, tostring(f.intra_cos), tostring(f.inter_cos),
    r.path and (", written to " .. r.path) or ""))
end

function cli.slurm(args) require("collapse.slurm").command(args) end

function cli.report(args)
  local pos = parse("report", args)
  local dir = pos[1] or die("report needs a run or sweep folder")
  local index, messages = require("collapse.report").build(dir)
  for _, m in ipairs(messages) do print(m) end
  print("report: " .. index)
end

function cli.bound(args)
  local _, flags = parse("bound", args)
  local ok, b = pcall(collapse.nc.bound, { lambda = flags.lambda, classes = flags.classes, loss = flags.loss,
    per_class = flags.per_class, bn = not flags.no_bn, q = flags.q })
  if not ok then die(tostring(b)) end
  local rows = {
    { "optimal loss L*", b.optimal_loss }, { "t*", b.t_star }, { "epsilon = loss - L*", b.epsilon },
    { "guaranteed", tostring(b.guaranteed) },
  }
  if b.guaranteed then
    for _, r in ipairs({ { "intra-class cosine >=", b.intra_cos_min }, { "inter-class cosine <=", b.inter_cos_max },
      { "within/between variability <=", b.variability_max }, { "self-duality cosine >=", b.self_duality_min },
      { ("intra cosine of all but %g of classes >="):format(b.q or 0.05), b.intra_cos_q_min } }) do
      rows[#rows + 1] = r
    end
  else
    rows[#rows + 1] = { "reason", b.reason }
  end
  if b.asymptotic then
    rows[#rows + 1] = { "asymptotic intra >=", b.asymptotic.intra_cos_min }
    rows[#rows + 1] = { "asymptotic inter <=", b.asymptotic.inter_cos_max }
  end
  for _, r in ipairs(rows) do
    local v = r[2]
    print(("%-42s %s"):format(r[1], type(v) == "number" and ("%.8g"):format(v) or tostring(v)))
  end
end

function cli.measure(args) require("collapse.measure_cli").run(args) end

function cli.demo(args)
  local _, flags = parse("demo", args)
  local jobs = flags.jobs and RUN_FLAGS.jobs(flags.jobs)
  if flags.task then -- a worker of the demo's own --jobs (see demo.lua)
    require("collapse.demo").task{ out = flags.out, quick = flags.quick, part = flags.part, task = RUN_FLAGS.task(flags.task) }
    return
  end
  require("collapse.demo").run{ out = flags.out, quick = flags.quick, jobs = jobs }
end

function cli.main(args)
  local cmd = args[1]
  local rest = { table.unpack(args, 2) }
  if cmd == nil or cmd == "help" or cmd == "--help" or cmd == "-h" then
    io.stdout:write(USAGE)
    return
  end
  local f = cli[cmd]
  if type(f) ~= "function" or cmd == "main" then die("unknown command '" .. cmd .. "'\n" .. USAGE) end
  local ok, err = pcall(f, rest)
  if not ok then die(tostring(err)) end
end

return cli
