--- `collapse slurm FILE`: a sweep as a Slurm job array (docs/cluster.md).
-- Writes <out>/slurm/array.sbatch (one array task per missing point, or --chunk K points per
-- task), <out>/slurm/array.points (line k: the point indices array task k runs) and
-- <out>/slurm/collect.sbatch (checks that every point is done, writes sweep.csv, sweep.json and
-- the report); --submit submits both through sbatch, the collect job with
-- --dependency=afterany on the array. Every array task runs `collapse run FILE --task I`, which
-- writes its run's JSON atomically into the shared runs/ folder, so a resubmission after a
-- failure or a scancel lists, and runs, only the points still missing.
local fs = require("collapse.fs")
local cli_flags = require("collapse.cli_flags")

local slurm = {}

local function fail(msg, ...) error(msg:format(...), 0) end

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function positive_int(flag)
  return function(v)
    local n = math.tointeger(tonumber(v))
    if not n or n < 1 then fail("%s needs a whole number >= 1, got '%s'", flag, v) end
    return n
  end
end

-- Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S (sbatch --time).
local TIME_FORMATS = { "^%d+$", "^%d+:%d+$", "^%d+:%d+:%d+$", "^%d+%-%d+$", "^%d+%-%d+:%d+$", "^%d+%-%d+:%d+:%d+$" }

local function out_dir(v)
  if v == "" then fail("--out needs a folder, got ''") end
  return v
end

local function partition(v)
  if (v .. ","):gsub("[%w_%.%-]+,", "") ~= "" then -- every comma-separated part a name
    fail("--partition needs a partition name or a comma-separated list (letters, digits, _ . -), got '%s'", v)
  end
  return v
end

local function time_limit(v)
  for _, p in ipairs(TIME_FORMATS) do if v:match(p) then return v end end
  if v == "INFINITE" or v == "UNLIMITED" then return v end
  fail("--time needs a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS or UNLIMITED), got '%s'", v)
end

-- The flags, parsed by the strict table-driven collapse.cli_flags; the checks word the errors.
local FLAGS = { positionals = 1, positional_name = "FILE",
  messages = { unknown = "unknown option '--%s' (expected %s)", twice = "option --%s given twice" }, flags = {
  { name = "out", type = "string", check = out_dir },
  { name = "partition", type = "string", check = partition },
  { name = "time", type = "string", check = time_limit },
  { name = "cpus-per-task", type = "string", check = positive_int("--cpus-per-task") },
  { name = "chunk", type = "string", check = positive_int("--chunk") },
  { name = "submit", type = "boolean" },
  { name = "collect", type = "boolean" },
} }

--- Strict parse of `FILE [--flag value ...]`: unknown flags, missing values, bad values and extra
-- words are errors. Returns file, opts.
function slurm.parse(args)
  local ok, pos, opts = pcall(cli_flags.parse, "slurm", FLAGS, args)
  if not ok then error((tostring(pos):gsub("^slurm: ", "")), 0) end
  local file = pos[1]
  if not file then fail("needs a sweep FILE.lua (collapse slurm FILE [--out DIR] [--submit])") end
  if opts.collect and (opts.submit or opts.chunk or opts.partition or opts.time or opts.cpus_per_task) then
    fail("--collect takes only --out")
  end
  return file, opts
end

--- The sweep spec FILE returns, with --out applied; an error unless it is a sweep (has `grid`).
function slurm.load(file, out)
  local chunk, err = loadfile(file)
  if not chunk then fail("%s", tostring(err)) end
  local ok, spec = pcall(chunk)
  if not ok then fail("%s failed: %s", file, tostring(spec)) end
  if type(spec) ~= "table" then fail("%s must return a sweep spec table, got %s", file, type(spec)) end
  if spec.grid == nil then
    fail("%s is not a sweep: it returns an experiment spec without `grid` (run it with `collapse run %s`)", file, file)
  end
  if out then spec.out = out end
  if type(spec.out) ~= "string" then fail("%s: the sweep has no `out` folder; give one with --out DIR", file) end
  return spec
end

-- The interpreter running this program, as an absolute path when it was found through PATH.
local function interpreter()
  local lua = require("collapse.jobs").interpreter()
  if lua:find("/", 1, true) then return lua end
  local p = io.popen("command -v " .. shell_quote(lua) .. " 2>/dev/null")
  local found = p and p:read("l")
  if p then p:close() end
  return (found and found ~= "") and found or lua
end

local function cwd()
  local p = io.popen("pwd")
  local d = p and p:read("l")
  if p then p:close() end
  return d or fail("cannot read the working directory")
end

-- A search path with every relative entry made absolute, for jobs that start elsewhere.
local function absolute_path_list(list, dir)
  local out = {}
  for entry in list:gmatch("[^;]+") do out[#out + 1] = entry:sub(1, 1) == "/" and entry or (dir .. "/" .. entry) end
  return table.concat(out, ";") .. ";;"
end

--- Groups the missing points into array tasks of `chunk` points each: {{i, j, ...}, ...}.
function slurm.tasks(points, chunk)
  local tasks, cur = {}, nil
  for _, p in ipairs(points) do
    if p.state ~= "done" then
      if not cur or #cur == chunk then cur = {}; tasks[#tasks + 1] = cur end
      cur[#cur + 1] = p.index
    end
  end
  return tasks
end

-- The #SBATCH lines and environment shared by both scripts.
local function header(ctx, name, log, cpus)
  local lines = { "#!/bin/bash", ctx.comment, "#SBATCH --job-name=" .. name, "#SBATCH --chdir=" .. ctx.dir,
    "#SBATCH --output=" .. log, "#SBATCH --cpus-per-task=" .. cpus }
  if ctx.partition then lines[#lines + 1] = "#SBATCH --partition=" .. ctx.partition end
  if ctx.time then lines[#lines + 1] = "#SBATCH --time=" .. ctx.time end
  for _, l in ipairs({ "set -euo pipefail",
    "# one BLAS thread per CPU of the task: N tasks on N CPUs, no oversubscription",
    ("export OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d"):format(cpus, cpus),
    "export LUA_PATH_5_4=" .. shell_quote(ctx.path), "export LUA_CPATH_5_4=" .. shell_quote(ctx.cpath),
    "# a BLAS kernel collapse chose for the submitting host's CPU is not inherited: each node picks its own",
    'if [[ -n "${COLLAPSE_BLAS_CHOSEN:-}" && "${OPENBLAS_CORETYPE:-}" == "$COLLAPSE_BLAS_CHOSEN" ]]; then',
    "  unset OPENBLAS_CORETYPE COLLAPSE_BLAS_CHOSEN", "fi" }) do
    lines[#lines + 1] = l
  end
  return lines
end

-- A Lua chunk calling the CLI with the given words (strings; `$VAR` words read that variable).
local function cli_call(ctx, words)
  local parts = {}
  for i, w in ipairs(words) do
    parts[i] = w:sub(1, 1) == "$" and ("os.getenv(%q)"):format(w:sub(2)) or ("%q"):format(w)
  end
  return ("%s -e %s"):format(shell_quote(ctx.lua),
    shell_quote(("require('collapse.cli').main({%s})"):format(table.concat(parts, ", "))))
end

local function array_script(ctx, ntasks)
  local lines = header(ctx, "collapse-" .. ctx.name, ctx.slurm_dir .. "/logs/array-%A_%a.out", ctx.cpus)
  table.insert(lines, 4, ("#SBATCH --array=1-%d"):format(ntasks))
  for _, l in ipairs({
    "# the points of this array task: line $SLURM_ARRAY_TASK_ID of the list written beside this script",
    ('points=$(sed -n "${SLURM_ARRAY_TASK_ID}p" %s)'):format(shell_quote(ctx.list)),
    'if [[ -z "$points" ]]; then echo "array task $SLURM_ARRAY_TASK_ID has no line in the point list" >&2; exit 1; fi',
    "# a failing point fails the task, after the task's other points have run",
    "status=0",
    "for point in $points; do",
    "  COLLAPSE_SLURM_POINT=$point " .. cli_call(ctx, { "run", ctx.file, "--out", ctx.out, "--task", "$COLLAPSE_SLURM_POINT" })
      .. " || status=1",
    "done",
    "exit $status" }) do
    lines[#lines + 1] = l
  end
  return table.concat(lines, "\n") .. "\n"
end

local function collect_script(ctx)
  local lines = header(ctx, "collapse-" .. ctx.name .. "-collect", ctx.slurm_dir .. "/logs/collect-%j.out", 1)
  lines[#lines + 1] = "# every point done: sweep.csv, sweep.json and the report; otherwise the missing points, exit 1"
  lines[#lines + 1] = cli_call(ctx, { "slurm", ctx.file, "--out", ctx.out, "--collect" })
  return table.concat(lines, "\n") .. "\n"
end

--- Writes the scripts and the point list for the missing points of `spec` (opts: chunk,
-- cpus_per_task, partition, time, file). Returns {array =, collect =, list =, tasks =, missing =, points =}.
function slurm.write(spec, opts)
  local points = require("collapse.sweep").list(spec)
  local tasks = slurm.tasks(points, opts.chunk or 1)
  local list, missing = {}, 0
  for k, t in ipairs(tasks) do
    list[k], missing = table.concat(t, " "), missing + #t
  end
  local dir, slurm_dir = cwd(), spec.out .. "/slurm"
  local ctx = {
    dir = dir, file = opts.file, out = spec.out, slurm_dir = slurm_dir, list = slurm_dir .. "/array.points",
    name = (spec.out:gsub("/+$", ""):match("([^/]+)$") or "sweep"):gsub("[^%w_%.%-]", "_"),
    cpus = opts.cpus_per_task or 1, partition = opts.partition, time = opts.time, lua = interpreter(),
    path = absolute_path_list(package.path, dir), cpath = absolute_path_list(package.cpath, dir),
    comment = ("# Written by `collapse slurm %s --out %s`: %d missing of %d points. Run that command again to "
      .. "regenerate after a failure or a scancel."):format(opts.file, spec.out, missing, #points),
  }
  local r = { list = ctx.list, array = slurm_dir .. "/array.sbatch", collect = slurm_dir .. "/collect.sbatch",
    tasks = #tasks, missing = missing, points = #points }
  fs.mkdir(slurm_dir .. "/logs") -- Slurm opens the jobs' output files there and creates no folder
  -- the list first: a script never names a list that is not there
  fs.write_atomic(ctx.list, #list > 0 and (table.concat(list, "\n") .. "\n") or "")
  if #tasks > 0 then fs.write_atomic(r.array, array_script(ctx, #tasks))
  else os.remove(r.array) end
  fs.write_atomic(r.collect, collect_script(ctx))
  return r
end

local function sbatch_on_path()
  local p = io.popen("command -v sbatch 2>/dev/null")
  local found = p and p:read("l")
  if p then p:close() end
  return found ~= nil and found ~= ""
end

-- Runs sbatch --parsable [extra] script; returns the job id.
local function sbatch(script, extra)
  local p = io.popen(("sbatch --parsable %s%s 2>&1"):format(extra and (extra .. " ") or "", shell_quote(script)))
  local out = p:read("a")
  local ok, _, code = p:close()
  local id = out:match("^(%d+)[;\n]") or out:match("^(%d+)$")
  if not ok or not id then fail("sbatch %s failed (exit %s): %s", script, tostring(code), (out:gsub("%s+$", ""))) end
  return id
end

--- Submits the scripts slurm.write wrote: the array (if any point is missing), then the collect job
-- after it (afterany: it also runs when tasks failed or were cancelled, and then lists them).
function slurm.submit(r)
  if not sbatch_on_path() then fail("sbatch not found on PATH; install Slurm or run without --submit") end
  local array = r.tasks > 0 and sbatch(r.array) or nil
  local collect = sbatch(r.collect, array and ("--dependency=afterany:" .. array) or nil)
  return array, collect
end

--- What the collect job runs: with every point done, writes sweep.csv, sweep.json and the report
-- and returns {csv =, report =}; otherwise raises an error listing the missing points.
function slurm.collect(spec, file)
  local sweep = require("collapse.sweep")
  local missing = {}
  for _, p in ipairs(sweep.list(spec)) do
    if p.state ~= "done" then missing[#missing + 1] = ("%d (%s)"):format(p.index, p.id) end
  end
  if #missing > 0 then
    fail("%d point(s) of %s have no finished result: %s; resubmit them with `collapse slurm %s --out %s --submit`",
      #missing, spec.out, table.concat(missing, ", "), file, spec.out)
  end
  spec.progress = false
  local r = sweep(spec)
  local index = require("collapse.report").build(spec.out)
  return { csv = r.csv, report = index }
end

--- The command: collapse slurm FILE [--out DIR] [--partition P] [--time T] [--cpus-per-task N]
-- [--chunk K] [--submit] [--collect].
function slurm.main(args)
  local file, opts = slurm.parse(args)
  local spec = slurm.load(file, opts.out)
  if opts.collect then
    local c = slurm.collect(spec, file)
    print(("collected %s: table %s, report %s"):format(spec.out, c.csv, c.report))
    return
  end
  if opts.submit and not sbatch_on_path() then fail("sbatch not found on PATH; install Slurm or run without --submit") end
  opts.file = file
  local r = slurm.write(spec, opts)
  print(("%d of %d points missing: %d array task(s) in %s (point list %s); collect job %s"):format(r.missing,
    r.points, r.tasks, r.tasks > 0 and r.array or "(none: nothing to run)", r.list, r.collect))
  if not opts.submit then
    if r.tasks > 0 then
      print(("submit: jid=$(sbatch --parsable %s) && sbatch --dependency=afterany:$jid %s"):format(r.array, r.collect))
    else
      print(("collect: sbatch %s"):format(r.collect))
    end
    return
  end
  local array, collect = slurm.submit(r)
  if array then print(("submitted array job %s (%d tasks) and collect job %s"):format(array, r.tasks, collect))
  else print(("submitted collect job %s"):format(collect)) end
end

--- Entry of the CLI dispatcher: errors are "collapse slurm: ..." on stderr, exit status 2.
function slurm.command(args)
  local ok, err = pcall(slurm.main, args)
  if not ok then
    io.stderr:write("collapse slurm: ", tostring(err), "\n")
    os.exit(2)
  end
end

return slurm
