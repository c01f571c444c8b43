--- collapse.sweep{experiment = spec, grid = {weight_decay = {...}, batchnorm = {true, false}},
-- seeds = {1, 2}, out = dir}: every point of grid x seeds is one run of the experiment.
-- A grid key naming an optimiser option (lr, weight_decay, momentum, ...) overrides it; one naming
-- an experiment field (epochs, batch_size, ...) overrides that; every grid key and the seed reach
-- model(cfg) through cfg. Each finished run is written atomically to <out>/runs/<id>.json, so a
-- rerun skips finished runs and redoes missing or partial ones; <out>/sweep.csv tabulates them.
-- collapse.sweep(spec, {jobs = N, worker = fn}) runs the points in N worker processes
-- (collapse.jobs), {task = i} runs point i only; sweep.list(spec) says which points are done.
local collapse = require("collapse")
local json = require("collapse.json")
local fs = require("collapse.fs")
local core = require("collapse.core")

local OPTIMIZER_KEYS = { lr = true, weight_decay = true, momentum = true, betas = true, eps = true,
  dampening = true, nesterov = true }
local TOP_LEVEL_KEYS = { epochs = true, batch_size = true, measure_every = true, lambda = true }
local SWEEP_FIELDS = { experiment = true, grid = true, seeds = true, out = true, progress = true, columns = true }

-- Errors point at the user's call: validate is called by sweep / list (level 4), run_task is
-- tail-called by sweep (level 3).
local function fail_at(level, msg, ...) error(("sweep: " .. msg):format(...), level) end
local function fail(msg, ...) fail_at(5, msg, ...) end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- A grid value in a run id: 6 significant digits when they identify the number (0.0001, 5e-05),
-- else all 17, so that two different values never share an id (and a result file).
local function value_str(v)
  if type(v) == "number" then
    if math.type(v) == "integer" then return tostring(v) end
    local short = ("%g"):format(v)
    if tonumber(short) == v then return short end
    return ("%.17g"):format(v)
  end
  return tostring(v)
end

--- Every combination of the grid, in a stable order (keys sorted, values in given order).
local function points(grid, seeds)
  local keys = sorted_keys(grid)
  local out = { {} }
  for _, k in ipairs(keys) do
    local values = grid[k]
    local next_out = {}
    for _, p in ipairs(out) do
      for _, v in ipairs(values) do
        local q = {}
        for kk, vv in pairs(p) do q[kk] = vv end
        q[k] = v
        next_out[#next_out + 1] = q
      end
    end
    out = next_out
  end
  local runs = {}
  for _, p in ipairs(out) do
    for _, s in ipairs(seeds) do
      local parts = {}
      for _, k in ipairs(keys) do parts[#parts + 1] = k .. "=" .. value_str(p[k]) end
      parts[#parts + 1] = "seed=" .. s
      runs[#runs + 1] = { point = p, seed = s, id = table.concat(parts, "_") }
    end
  end
  return runs, keys
end

local CSV_METRICS = { "train_loss", "train_accuracy", "ce", "regularized_loss", "intra_cos", "intra_cos_min",
  "inter_cos", "inter_cos_max", "feature_norm", "nc1", "etf_error", "gamma_norm", "weight_norm",
  "test_accuracy" }

local function csv_cell(v)
  if v == nil then return "" end
  if type(v) == "number" then return ("%.10g"):format(v) end
  local s = tostring(v)
  -- a text cell a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is written with
  -- a leading apostrophe, which spreadsheets show as text (numbers are formatted above, never text)
  if s:find("^[=+%-@\t\r]") then s = "'" .. s end
  if s:find('[,"\n\r]') then s = '"' .. s:gsub('"', '""') .. '"' end
  return s
end

-- After run_id (so the older columns keep their places): the vacuity flags and asymptotic form
-- of the bound, the decomposition's epsilon, epsilon/(lambda t*) and largest part, then one column
-- per part of the proof chain, slack_<part name> (docs/theory.md), in chain order.
local BOUND_EXTRA = { "bound_intra_vacuous", "bound_inter_vacuous", "bound_asymptotic_intra_cos_min",
  "bound_asymptotic_inter_cos_max", "decomposition_epsilon", "decomposition_relative_epsilon", "dominant_slack" }
local PART_NAMES = {}
for i, p in ipairs(require("collapse.decompose").PARTS) do PART_NAMES[i] = p[1] end

local function decomposition_cells(row, final)
  local b = type(final.bound) == "table" and final.bound or {}
  local a = type(b.asymptotic) == "table" and b.asymptotic or {}
  local d = type(final.decomposition) == "table" and final.decomposition or {}
  local cells = { b.intra_vacuous, b.inter_vacuous, a.intra_cos_min, a.inter_cos_max, d.epsilon,
    d.relative_epsilon, d.dominant }
  for i = 1, #BOUND_EXTRA do row[#row + 1] = csv_cell(cells[i]) end -- cells may hold nils
  local value = {}
  for _, p in ipairs(type(d.parts) == "table" and d.parts or {}) do
    if type(p) == "table" and type(p.name) == "string" then value[p.name] = p.value end
  end
  for _, name in ipairs(PART_NAMES) do row[#row + 1] = csv_cell(value[name]) end
end

-- No timing column: the table of a sweep is the same bit for bit however its points were run
-- (sequentially, --jobs, Slurm array tasks); wall times stay in each run's JSON.
local function write_csv(path, keys, results)
  local header = {}
  for _, k in ipairs(keys) do header[#header + 1] = k end
  header[#header + 1] = "seed"
  for _, m in ipairs(CSV_METRICS) do header[#header + 1] = m end
  for _, m in ipairs({ "bound_guaranteed", "bound_intra_cos_min", "bound_inter_cos_max", "bound_epsilon",
    "run_id" }) do header[#header + 1] = m end
  for _, m in ipairs(BOUND_EXTRA) do header[#header + 1] = m end
  for _, p in ipairs(PART_NAMES) do header[#header + 1] = "slack_" .. p end
  local lines = { table.concat(header, ",") }
  for _, r in ipairs(results) do
    local row = {}
    for _, k in ipairs(keys) do row[#row + 1] = csv_cell(r.grid[k]) end
    row[#row + 1] = csv_cell(r.seed)
    for _, m in ipairs(CSV_METRICS) do row[#row + 1] = csv_cell(r.final[m]) end
    local b = r.final.bound or {}
    row[#row + 1] = csv_cell(b.guaranteed)
    row[#row + 1] = csv_cell(b.intra_cos_min)
    row[#row + 1] = csv_cell(b.inter_cos_max)
    row[#row + 1] = csv_cell(b.epsilon)
    row[#row + 1] = csv_cell(r.run_id)
    decomposition_cells(row, r.final)
    lines[#lines + 1] = table.concat(row, ",")
  end
  fs.write_atomic(path, table.concat(lines, "\n") .. "\n")
end

-- A finished run's JSON, or nil when the file is missing, partial or unreadable.
local function load_finished(path)
  local s = fs.read(path)
  if not s then return nil end
  local ok, r = pcall(json.decode, s)
  if ok and type(r) == "table" and r.finished == true and type(r.final) == "table" then return r end
  return nil
end

local function validate(spec)
  if type(spec) ~= "table" then fail("expected a table spec, got %s", type(spec)) end
  for k in pairs(spec) do
    if not SWEEP_FIELDS[k] then fail("unknown field '%s' (experiment, grid, seeds, out, progress)", tostring(k)) end
  end
  if type(spec.experiment) ~= "table" then fail("field 'experiment' must be an experiment spec table") end
  if type(spec.grid) ~= "table" then fail("field 'grid' must be a table of value lists") end
  if type(spec.out) ~= "string" then fail("field 'out' must be a directory path") end
  for k, v in pairs(spec.grid) do
    if type(k) ~= "string" then fail("grid keys must be strings") end
    if type(v) ~= "table" or #v == 0 then fail("grid entry '%s' must be a non-empty list of values", k) end
  end
end

--- The points of a sweep in run order: {runs = {{index, id, point, seed, path}, ...}, keys, seeds}.
local function plan(spec)
  local seeds = spec.seeds or { spec.experiment.seed or 0 }
  if type(seeds) ~= "table" or #seeds == 0 then fail("field 'seeds' must be a non-empty list of integers, got %s", type(seeds)) end
  for i, s in pairs(seeds) do
    if math.type(i) ~= "integer" or math.type(s) ~= "integer" then
      fail("field 'seeds' must be a list of integers, entry %s is %s", tostring(i), tostring(s))
    end
  end
  local runs, keys = points(spec.grid, seeds)
  local by_path = {}
  for i, run in ipairs(runs) do
    run.index = i
    run.path = spec.out .. "/runs/" .. run.id:gsub("[^%w%._=%-]", "_") .. ".json"
    -- two points with one result file would overwrite each other, and resume would skip one
    local other = by_path[run.path]
    if other then
      fail("points %d (%s) and %d (%s) would share the result file %s: a grid value or seed is listed twice, "
        .. "or two values differ only in characters a file name cannot hold", other.index, other.id, i, run.id,
        run.path)
    end
    by_path[run.path] = run
  end
  return { runs = runs, keys = keys, seeds = seeds }
end

-- The experiment spec of one point: grid values override optimiser options, top-level fields, cfg.
local function point_spec(spec, run)
  local e = {}
  for k, v in pairs(spec.experiment) do e[k] = v end
  local opt = {}
  for k, v in pairs(spec.experiment.optimizer or {}) do opt[k] = v end
  local cfg = {}
  for k, v in pairs(spec.experiment.config or {}) do cfg[k] = v end
  for k, v in pairs(run.point) do
    cfg[k] = v
    if OPTIMIZER_KEYS[k] then opt[k] = v end
    if TOP_LEVEL_KEYS[k] then e[k] = v end
  end
  e.optimizer, e.config, e.seed, e.run_id, e.out = opt, cfg, run.seed, run.id, nil
  -- one line per run here; per-epoch lines only when the experiment spec asks for them
  if e.progress == nil then e.progress = false end
  return e
end

--- The progress line of a finished run (also printed by the parent of worker processes).
local function done_line(r)
  local f = r.final
  return ("        done in %.1f s: loss %.4g, train accuracy %.4f%s"):format(r.seconds, f.train_loss,
    f.train_accuracy, require("collapse.experiment").collapse_summary(f, ", "))
end

--- Trains one point and writes its JSON atomically; returns the result.
local function run_point(spec, run)
  local r = collapse.experiment(point_spec(spec, run)):run()
  r.model = nil
  r.grid = run.point
  fs.write_atomic(run.path, json.encode(r, { indent = 1 }) .. "\n")
  return r
end

-- <out>/sweep.csv and <out>/sweep.json from the results in run order.
local function finish(spec, p, results)
  local csv = spec.out .. "/sweep.csv"
  write_csv(csv, p.keys, results)
  local summary = { grid = spec.grid, keys = p.keys, seeds = p.seeds, runs = #p.runs, csv = csv }
  fs.write_atomic(spec.out .. "/sweep.json", json.encode(summary, { indent = 1 }) .. "\n")
  return { runs = results, csv = csv, out = spec.out, keys = p.keys }
end

-- Every run's finished result (read back from its JSON), or nil and the first missing run.
-- Appends run's result r to results, with the run's grid point and file path.
local function keep(results, r, run)
  r.grid = r.grid or run.point
  r.path = run.path
  results[#results + 1] = r
end

local function collect(p)
  local results = {}
  for _, run in ipairs(p.runs) do
    local r = load_finished(run.path)
    if not r then return nil, run end
    keep(results, r, run)
  end
  return results
end

local function eta(t0, done_now, left)
  if done_now == 0 then return "" end
  return ("  (about %.0f s left)"):format((core.clock() - t0) / done_now * left)
end

-- All points, in this process, one after the other.
local function run_sequential(spec, p, progress)
  local results, t0, done_now, n = {}, core.clock(), 0, #p.runs
  for i, run in ipairs(p.runs) do
    local r = load_finished(run.path)
    if r then
      if progress then print(("[%d/%d] %s: finished earlier, skipped"):format(i, n, run.id)) end
    else
      if progress then print(("[%d/%d] %s%s"):format(i, n, run.id, eta(t0, done_now, n - i + 1))) end
      r = run_point(spec, run)
      if progress then print(done_line(r)) end
      done_now = done_now + 1
    end
    keep(results, r, run)
  end
  return results
end

-- Point `task` only; the table is written when every point is then finished (by whichever task
-- sees that last: each writes its JSON before it looks, so the table is always complete), unless
-- with_table is false (a pool whose parent writes the table: no task reads every run back).
local function run_task(spec, p, task, progress, with_table)
  local n = #p.runs
  if math.type(task) ~= "integer" or task < 1 or task > n then
    fail_at(3, "task %s is outside 1..%d (the sweep has %d points; `collapse run FILE --list` shows them)",
      tostring(task), n, n)
  end
  local run = p.runs[task]
  if load_finished(run.path) then
    if progress then print(("[%d/%d] %s: finished earlier, skipped"):format(task, n, run.id)) end
  else
    if progress then print(("[%d/%d] %s"):format(task, n, run.id)) end
    local r = run_point(spec, run)
    if progress then print(done_line(r)) end
  end
  local results = with_table ~= false and collect(p)
  if results then return finish(spec, p, results) end
  return { runs = {}, out = spec.out, keys = p.keys, task = task, partial = true }
end

local M = { plan = plan, done_line = done_line, load_finished = load_finished, eta = eta }

--- The points and their state: {{index = i, id = ..., state = "done" | "missing"}, ...}.
function M.list(spec)
  validate(spec)
  local p = plan(spec)
  local out = {}
  for i, run in ipairs(p.runs) do
    out[i] = { index = i, id = run.id, state = load_finished(run.path) and "done" or "missing", path = run.path }
  end
  return out
end

--- collapse.sweep(spec [, opts]): opts.task = i runs point i only (opts.table = false: without then
-- writing the table when every point is done, for a parent that writes it); opts.jobs = N (> 1) with
-- opts.worker = function(index) -> argv runs the missing points in N worker processes.
local function sweep(spec, opts)
  validate(spec)
  opts = opts or {}
  local p = plan(spec)
  fs.mkdir(spec.out .. "/runs")
  local progress = spec.progress
  if progress == nil then progress = core.isatty(1) end
  if opts.task ~= nil then return run_task(spec, p, opts.task, progress, opts.table) end
  local results
  if opts.jobs and opts.jobs > 1 then
    require("collapse.jobs").run(p, { jobs = opts.jobs, worker = opts.worker, progress = progress })
    local missing
    results, missing = collect(p)
    if not results then fail_at(2, "run %s has no finished result after its worker ended", missing.id) end
  else
    results = run_sequential(spec, p, progress)
  end
  return finish(spec, p, results)
end

return setmetatable(M, { __call = function(_, spec, opts) return sweep(spec, opts) end })
