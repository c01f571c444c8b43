--- `collapse demo`: the default experiment (the paper's claims 1 and 4 on this machine's data).
-- The paper's MLP (depth 4, width 300) with and without a BatchNorm before the classifier,
-- trained with Adam + coupled weight decay and the paper's step schedule, across a subset of
-- the paper's weight-decay grid with 2 seeds, on conic data and then on a Fashion-MNIST subset
-- (when Debian's dataset-fashion-mnist is installed). Prints a table and writes a report.
local collapse = require("collapse")
local models = require("collapse.models")
local fs = require("collapse.fs")

local demo = {}

local FASHION_DIR = "/usr/share/datasets/fashion-mnist"

local function settings(quick)
  if quick then
    return { conic_n = 600, conic_epochs = 4, fashion_per_class = 30, fashion_epochs = 2,
      weight_decays = { 5e-4, 5e-3 }, seeds = { 1 }, width = 64 }
  end
  return { conic_n = 10000, conic_epochs = 60, fashion_per_class = 500, fashion_epochs = 60,
    weight_decays = { 1e-4, 5e-4, 1e-3, 5e-3, 1e-2 }, seeds = { 1, 2 }, width = 300 }
end

local function fmt_bound(b)
  if type(b) ~= "table" then return "-", "-" end
  if b.guaranteed then return ("%.4f"):format(b.intra_cos_min), ("%.4f"):format(b.inter_cos_max) end
  return "none", "none"
end

-- mean over seeds of final values, per (batchnorm, weight_decay)
local function summarise(runs)
  local rows, index = {}, {}
  for _, r in ipairs(runs) do
    local key = tostring(r.grid.batchnorm) .. "|" .. r.grid.weight_decay
    local row = index[key]
    if not row then
      row = { bn = r.grid.batchnorm, wd = r.grid.weight_decay, n = 0, loss = 0, intra = 0, inter = 0, violations = 0,
        bound = r.final.bound, guaranteed = 0, excess = 0 }
      index[key] = row
      rows[#rows + 1] = row
    end
    local f = r.final
    row.n = row.n + 1
    row.loss = row.loss + f.ce
    row.intra = row.intra + f.intra_cos
    row.inter = row.inter + f.inter_cos
    row.excess = row.excess + ((f.bound and f.bound.epsilon) or 0)
    local b = f.bound
    if b and b.guaranteed then
      row.guaranteed = row.guaranteed + 1
      row.bound = b
      if f.intra_cos < b.intra_cos_min - 1e-9 or f.inter_cos > b.inter_cos_max + 1e-9 then
        row.violations = row.violations + 1
      end
    end
  end
  for _, row in ipairs(rows) do
    row.loss, row.intra, row.inter = row.loss / row.n, row.intra / row.n, row.inter / row.n
    row.excess = row.excess / row.n
  end
  table.sort(rows, function(a, b)
    if a.bn ~= b.bn then return a.bn end
    return a.wd < b.wd
  end)
  return rows
end

local function print_table(title, rows, classes)
  print(("\n%s (C = %d, mean over seeds; ideal inter = %.4f)"):format(title, classes, -1 / (classes - 1)))
  print(("%-5s %-8s %-10s %-8s %-8s %-11s %-17s %-17s"):format("BN", "wd", "loss", "intra", "inter", "L_reg-L*",
    "certified intra>=", "certified inter<="))
  for _, r in ipairs(rows) do
    local bi, be = fmt_bound(r.bound)
    if not r.bn then bi, be = "n/a (no BN)", "n/a" end
    print(("%-5s %-8g %-10.4g %-8.4f %-8.4f %-11s %-17s %-17s"):format(r.bn and "yes" or "no", r.wd, r.loss, r.intra,
      r.inter, r.bn and ("%.4g"):format(r.excess) or "n/a", bi, be))
  end
  -- Claim 1: BN above no-BN in intra cosine at the same weight decay.
  local wins, total, violations = 0, 0, 0
  local by_wd = {}
  for _, r in ipairs(rows) do
    by_wd[r.wd] = by_wd[r.wd] or {}
    by_wd[r.wd][r.bn and "bn" or "nobn"] = r
    violations = violations + r.violations
  end
  for _, pair in pairs(by_wd) do
    if pair.bn and pair.nobn then
      total = total + 1
      if pair.bn.intra > pair.nobn.intra then wins = wins + 1 end
    end
  end
  print(("BN has the higher average intra-class cosine at %d of %d weight decays; "
    .. "%d measurement(s) below a certified bound."):format(wins, total, violations))
  print("(loss = training cross-entropy; L_reg-L* = regularised last-layer loss minus its optimum, the epsilon of"
    .. " docs/theory.md: the bound certifies collapse only once it is small compared with the weight decay)")
  return { wins = wins, total = total, violations = violations }
end

local function sweep_spec(name, out, data, s, epochs)
  return {
    out = out .. "/" .. name,
    grid = { weight_decay = s.weight_decays, batchnorm = { true, false } },
    seeds = s.seeds,
    experiment = {
      name = name, data = data, epochs = epochs, batch_size = 128,
      optimizer = { "Adam", lr = 1e-3 }, schedule = { "paper" },
      config = { depth = 4, width = s.width },
      metrics = { "intra_cos", "inter_cos", "intra_cos_min", "inter_cos_max", "feature_norm", "nc1", "etf_error",
        "accuracy", "regularized_loss", "bound", "gamma_norm", "weight_norm", "test_accuracy" },
      model = function(cfg)
        return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, depth = cfg.depth,
          width = cfg.width, batchnorm = cfg.batchnorm, rng = collapse.rng(cfg.seed), dtype = cfg.dtype }
      end,
    },
  }
end

-- The two datasets, built the same way in the demo and in each of its workers.
local function conic_data(s) return collapse.data.conic{ n = s.conic_n, classes = 4, dim = 16, seed = 1 } end
local function fashion_build(s)
  local train = collapse.data.fashion_mnist{ split = "train" }:balanced(s.fashion_per_class, collapse.rng(1))
  local test = collapse.data.fashion_mnist{ split = "test", limit = s.fashion_per_class * 10 * 2 }
  return { train = train, test = test }
end

-- The Fashion subset through <out>/cache (collapse.dataset_cache): built once, by the first process
-- that needs it, and read by every other; the key names the settings and the source files' bytes.
local FASHION_FILES = { "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
  "t10k-labels-idx1-ubyte.gz" }
local function fashion_data(s, out)
  if not out then return fashion_build(s) end
  local cache = require("collapse.dataset_cache")
  local sources = {}
  for i, f in ipairs(FASHION_FILES) do sources[i] = FASHION_DIR .. "/" .. f end
  local key = ("demo fashion_mnist: balanced %d per class (rng 1), test limit %d; %s"):format(s.fashion_per_class,
    s.fashion_per_class * 10 * 2, cache.source_id(sources))
  fs.mkdir(out .. "/cache")
  return (cache.get(("%s/cache/fashion_mnist-%d.ckpt"):format(out, s.fashion_per_class), key,
    function() return fashion_build(s) end))
end

-- The demo's sweeps in print order: {name, data, epochs, classes}; Fashion only when installed.
local function parts(s, out)
  local list = { { name = "conic", data = { train = conic_data(s) }, epochs = s.conic_epochs, classes = 4 } }
  if fs.exists(FASHION_DIR .. "/train-images-idx3-ubyte.gz") then
    list[2] = { name = "fashion_mnist", data = fashion_data(s, out), epochs = s.fashion_epochs, classes = 10 }
  end
  return list
end

-- Worker count for the demo's points: nil runs them in this process (jobs 1).
local function worker_count(opts, points)
  local n = opts.jobs
  if n == nil then n = opts.quick and 1 or "auto" end -- the smoke run is too short to pay for workers
  n = n == "auto" and require("collapse.jobs").auto(points) or n
  return n > 1 and n or nil
end

-- A worker: `collapse demo --part NAME --task I` rebuilds the same sweep and runs its point I.
local function worker_argv(opts, part, task)
  local args = { "demo", "--out", opts.out or "collapse-demo", "--part", part, "--task", tostring(task) }
  if opts.quick then args[#args + 1] = "--quick" end
  return require("collapse.jobs").cli_argv(args)
end

-- Table and report of one sweep whose points are all finished (or, in this process, runs them).
local function finish_part(part, out, s, progress)
  local spec = sweep_spec(part.name, out, part.data, s, part.epochs)
  if progress ~= nil then spec.progress = progress end
  local r = collapse.sweep(spec)
  local summary = print_table(part.name, summarise(r.runs), part.classes)
  local index, messages = require("collapse.report").build(out .. "/" .. part.name)
  for _, m in ipairs(messages) do print(m) end
  print("report: " .. index)
  io.stdout:flush()
  return summary
end

-- Rough cost of each point of a part, to start the longest points first: the multiply-adds of its
-- training (the same for every point of a part).
-- (Without BN the conic points at large weight decay used to take 6x longer, 48 s of CPU at 1e-2
-- against 8 s at 1e-4, all of it in sgemm over subnormal gradient entries; since experiments flush
-- subnormals to zero (docs/experiments.md) every point costs about the same, 7-9 s, 2026-12-02.)
local function point_cost(part, s)
  local x = part.data.train.x
  return part.epochs * x:size(1) * (x:size(2) + 3 * s.width) * s.width
end

-- All points of all parts in one pool of `n` workers, longest first, no barrier between the
-- parts; each part's table and report are made, in print order, as soon as its points are done.
local function run_pool(list, out, s, opts, n)
  local combined, left, summaries, next_print = {}, {}, {}, 1
  for _, part in ipairs(list) do
    local spec = sweep_spec(part.name, out, part.data, s, part.epochs)
    fs.mkdir(spec.out .. "/runs")
    local runs, cost = require("collapse.sweep").plan(spec).runs, point_cost(part, s) -- one cost per part
    for _, run in ipairs(runs) do
      combined[#combined + 1] = { index = #combined + 1, id = part.name .. " " .. run.id, path = run.path,
        part = part, task = run.index, cost = cost }
    end
    left[part] = #runs
  end
  local function flush()
    while list[next_print] and left[list[next_print]] == 0 do
      local part = list[next_print]
      summaries[part.name] = finish_part(part, out, s, false)
      next_print = next_print + 1
    end
  end
  local progress = collapse.core.isatty(1)
  require("collapse.jobs").run({ runs = combined }, { jobs = n, progress = progress,
    worker = function(index) return worker_argv(opts, combined[index].part.name, combined[index].task) end,
    cost = function(run) return run.cost end,
    on_done = function(run) left[run.part] = left[run.part] - 1; flush() end })
  flush()
  return summaries
end

--- One point of one of the demo's sweeps (what a demo worker runs): demo.task{part =, task =, ...}.
function demo.task(opts)
  local s = settings(opts.quick)
  local out = opts.out or "collapse-demo"
  local data
  if opts.part == "conic" then
    data = { train = conic_data(s) }
  elseif opts.part == "fashion_mnist" then
    data = fashion_data(s, out)
  else
    error(("demo: --part must be conic or fashion_mnist, got %s"):format(tostring(opts.part)), 0)
  end
  local epochs = opts.part == "conic" and s.conic_epochs or s.fashion_epochs
  -- the demo writes the tables itself (demo.run), so its worker does not read every run back
  return collapse.sweep(sweep_spec(opts.part, out, data, s, epochs), { task = opts.task, table = false })
end

--- demo.run{out = "collapse-demo", quick = false, jobs = "auto" | N}: jobs > 1 (the default on a
-- multi-core machine: one worker per core) trains the sweep points in worker processes.
function demo.run(opts)
  opts = opts or {}
  local out = opts.out or "collapse-demo"
  local s = settings(opts.quick)
  fs.mkdir(out)
  local info = collapse.blas_info()
  local points = #s.weight_decays * 2 * #s.seeds
  local workers = worker_count(opts, points)
  print(("collapse %s demo: OpenBLAS %s (%s), %s; results in %s/"):format(collapse.version, info.core,
    info.selected_by == "collapse" and "chosen by collapse" or info.selected_by == "user" and "set by user"
    or "OpenBLAS's choice", workers and ("%d worker processes, 1 BLAS thread each"):format(workers)
    or "1 BLAS thread", out))
  local t0 = collapse.core.clock()
  -- Every run on one BLAS thread, in workers or here: results depend on the thread count
  -- (docs/experiments.md), and the table must not depend on --jobs.
  local threads = collapse.get_num_threads()
  if not workers then collapse.set_num_threads(1) end
  -- the workers read the prepared Fashion subset from <out>/cache; in this process it is built once
  local list = parts(s, workers and out or nil)
  local function header(part)
    if part.name == "conic" then -- the paper's synthetic set: 4 classes in R^16
      print(("\n[1/2] conic data: %d points, %d epochs per run, %d runs"):format(part.data.train:size(),
        s.conic_epochs, points))
    else
      print(("\n[2/2] Fashion-MNIST: %d training images (balanced), %d test images, %d epochs per run"):format(
        part.data.train:size(), part.data.test:size(), s.fashion_epochs))
    end
  end
  local summaries = {}
  if workers then
    for _, part in ipairs(list) do header(part) end
    summaries = run_pool(list, out, s, opts, workers)
  else
    for _, part in ipairs(list) do
      header(part)
      summaries[part.name] = finish_part(part, out, s)
    end
  end
  if not list[2] then
    print(("\n[2/2] Fashion-MNIST skipped: %s not found (apt-get install dataset-fashion-mnist)"):format(FASHION_DIR))
  end
  collapse.set_num_threads(threads)
  print(("\ndemo finished in %.0f s"):format(collapse.core.clock() - t0))
  return { conic = summaries.conic, fashion = summaries.fashion_mnist }
end

return demo
