-- Bad experiment and sweep specs, datasets and generators, and the report command's inputs.
local collapse = require("collapse")
local models = require("collapse.models")
local json = require("collapse.json")
local fs = require("collapse.fs")
local report = require("collapse.report")
local C = require("support.catalogue")
local data = collapse.data

local train = data.gaussian{ classes = 3, dim = 4, per_class = 6, seed = 1 }
local function model(cfg)
  return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 8, depth = 2,
    rng = collapse.rng(cfg.seed) }
end
-- A valid experiment spec with `over` applied (over.NIL removes a field).
local function spec(over)
  local s = { data = { train = train }, model = model, optimizer = { "SGD", lr = 0.05, weight_decay = 1e-3 },
    epochs = 1, batch_size = 6, progress = false }
  for k, v in pairs(over or {}) do s[k] = v end
  for k, v in pairs(over or {}) do if v == "NIL" then s[k] = nil end end
  return s
end
local function exp(over) return function() collapse.experiment(spec(over)):run() end end
local function sweep(over)
  return function()
    local s = { experiment = spec(), grid = { weight_decay = { 1e-3 } }, out = C.dir(), progress = false }
    for k, v in pairs(over) do s[k] = v end
    collapse.sweep(s)
  end
end
local x3 = collapse.tensor({ { 1 }, { 2 }, { 3 } })

local entries = {
  -- experiment fields
  { "experiment: not a table", function() collapse.experiment("spec") end, { "experiment", "expected a table spec, got string" } },
  { "experiment: unknown field", exp{ epoch = 3 }, { "experiment", "unknown field 'epoch'" } },
  { "experiment: data missing", exp{ data = "NIL" }, { "experiment", "field 'data' is required" } },
  { "experiment: model missing", exp{ model = "NIL" }, { "experiment", "field 'model' is required" } },
  { "experiment: epochs 0", exp{ epochs = 0 }, { "experiment", "field 'epochs' must be >= 1, got 0" } },
  { "experiment: epochs 2.5", exp{ epochs = 2.5 }, { "experiment", "field 'epochs' must be integer, got float" } },
  { "experiment: batch_size 0", exp{ batch_size = 0 }, { "experiment", "field 'batch_size' must be >= 1" } },
  { "experiment: measure_every -1", exp{ measure_every = -1 }, { "experiment", "field 'measure_every' must be >= 0", "training curves only" } },
  { "experiment: measure_batch_size 0", exp{ measure_batch_size = 0 }, { "experiment", "field 'measure_batch_size' must be >= 1" } },
  { "experiment: threads 0", exp{ threads = 0 }, { "experiment", "field 'threads' must be >= 1" } },
  { "experiment: q 1.5", exp{ q = 1.5 }, { "experiment", "field 'q' must be in (0, 1), got 1.5" } },
  { "experiment: q NaN", exp{ q = 0 / 0 }, { "experiment", "field 'q' must be in (0, 1)" } },
  { "experiment: lambda -1", exp{ lambda = -1 }, { "experiment", "field 'lambda' must be >= 0" } },
  { "experiment: lambda inf", exp{ lambda = math.huge }, { "experiment", "field 'lambda' must be finite" } },
  { "experiment: seed '1'", exp{ seed = "1" }, { "experiment", "field 'seed' must be integer, got string" } },
  { "experiment: progress 'yes'", exp{ progress = "yes" }, { "experiment", "field 'progress' must be boolean" } },
  { "experiment: metrics a string", exp{ metrics = "intra_cos" }, { "experiment", "field 'metrics' must be table" } },
  { "experiment: metrics entry not a string", exp{ metrics = { "intra_cos", 2 } },
    { "experiment", "field 'metrics' entry 2 must be a metric name string" } },
  { "experiment: metrics with a named key", exp{ metrics = { intra = true } }, { "experiment", "field 'metrics' must be a list" } },
  { "experiment: unknown metric", exp{ metrics = { "intra_cosine" } }, { "experiment", "unknown metric 'intra_cosine'" } },
  { "experiment: unknown optimiser", exp{ optimizer = { "Adamax" } }, { "experiment", "field 'optimizer' must name an optimiser", "Adamax" } },
  { "experiment: data without train", exp{ data = { test = train } }, { "experiment", "field 'data' must be {train = dataset" } },
  { "experiment: model returns a number", exp{ model = function() return 1 end }, { "experiment", "model(cfg) must return a module" } },
  { "experiment: unknown schedule", exp{ schedule = { "Warp" } }, { "experiment", "unknown schedule 'Warp'" } },
  -- sweep specs
  { "sweep: not a table", function() collapse.sweep(1) end, { "sweep", "expected a table spec, got number" } },
  { "sweep: unknown field", sweep{ seed = 1 }, { "sweep", "unknown field 'seed'" } },
  { "sweep: out missing", sweep{ out = false }, { "sweep", "field 'out' must be a directory path" } },
  { "sweep: grid not a table", sweep{ grid = 3 }, { "sweep", "field 'grid' must be a table" } },
  { "sweep: empty value list", sweep{ grid = { weight_decay = {} } }, { "sweep", "grid entry 'weight_decay' must be a non-empty list" } },
  { "sweep: seeds = '1'", sweep{ seeds = "1" }, { "sweep", "field 'seeds' must be a non-empty list of integers, got string" } },
  { "sweep: seeds = {}", sweep{ seeds = {} }, { "sweep", "field 'seeds' must be a non-empty list of integers" } },
  { "sweep: seeds = {1.5}", sweep{ seeds = { 1.5 } }, { "sweep", "field 'seeds' must be a list of integers, entry 1 is 1.5" } },
  { "sweep: seeds = {'1'}", sweep{ seeds = { "1" } }, { "sweep", "field 'seeds' must be a list of integers" } },
  { "sweep: experiment not a table", sweep{ experiment = 1 }, { "sweep", "field 'experiment' must be an experiment spec table" } },
  -- datasets
  { "Dataset: not a table", function() data.Dataset(1) end, { "Dataset", "expected a table" } },
  { "Dataset:num_batches(0)", function() data.Dataset{ x = x3, y = { 1, 2, 3 } }:num_batches(0) end,
    { "Dataset.num_batches", "batch_size", "positive integer", "0" } },
  { "Dataset: unknown field", function() data.Dataset{ x = x3, y = { 1, 2, 3 }, labels = 1 } end, { "Dataset", "unknown field 'labels'" } },
  { "Dataset: x not a tensor", function() data.Dataset{ x = { 1, 2 }, y = { 1, 2 } } end, { "Dataset", "x must be a tensor" } },
  { "Dataset: y a string", function() data.Dataset{ x = x3, y = "123" } end, { "Dataset", "y must be an int32 tensor or a list" } },
  { "Dataset: float label 1.5 (list)", function() data.Dataset{ x = x3, y = { 1, 1.5, 2 } } end,
    { "Dataset", "label 1.5 at index 2 is not an integer" } },
  { "Dataset: float label 2.5 (tensor)", function() data.Dataset{ x = x3, y = collapse.tensor({ 1, 2, 2.5 }) } end,
    { "Dataset", "label 2.5 at index 3 is not an integer" } },
  { "Dataset: NaN label", function() data.Dataset{ x = x3, y = { 1, 0 / 0, 2 } } end, { "Dataset", "at index 2 is not an integer" } },
  { "Dataset: label '2'", function() data.Dataset{ x = x3, y = { 1, "2", 2 } } end, { "Dataset", 'label "2" at index 2' } },
  { "Dataset: label 2^40", function() data.Dataset{ x = x3, y = { 1, 1 << 40, 2 } } end, { "Dataset", "at index 2 is not an integer" } },
  { "Dataset: labels with a hole", function() data.Dataset{ x = x3, y = { 1, 2, 3, [5] = 1 } } end, { "Dataset", "y must be a list of labels" } },
  { "Dataset: 2-d labels", function() data.Dataset{ x = x3, y = collapse.tensor({ { 1 }, { 2 }, { 3 } }) } end,
    { "Dataset", "y must be 1-d" } },
  { "Dataset: label 0", function() data.Dataset{ x = x3, y = { 0, 1, 2 } } end, { "Dataset", "label 0 at index 1 is outside 1..2" } },
  { "Dataset: label above classes", function() data.Dataset{ x = x3, y = { 1, 2, 3 }, classes = 2 } end,
    { "Dataset", "label 3 at index 3 is outside 1..2" } },
  { "Dataset: count mismatch", function() data.Dataset{ x = x3, y = { 1, 2 } } end, { "Dataset", "x has 3 samples but y has 2 labels" } },
  { "Dataset: classes 0", function() data.Dataset{ x = x3, y = { 1, 1, 1 }, classes = 0 } end, { "Dataset", "classes must be a positive integer" } },
  { "batches: batch_size 0", function() train:batches{ batch_size = 0 } end, { "batches", "batch_size must be a positive integer, got 0" } },
  { "batches: unknown option", function() train:batches{ size = 4 } end, { "batches", "unknown option 'size'" } },
  { "split: fraction 1", function() train:split(1) end, { "split", "fraction must be in (0, 1), got 1" } },
  { "balanced: per_class 2.5", function() train:balanced(2.5) end, { "balanced", "per_class must be a positive integer, got 2.5" } },
  { "balanced: more than a class has", function() train:balanced(7) end, { "balanced", "fewer than per_class = 7" } },
  { "gaussian: unknown option", function() data.gaussian{ clases = 3 } end, { "gaussian", "unknown option 'clases'" } },
  { "gaussian: classes 1.5", function() data.gaussian{ classes = 1.5 } end, { "gaussian", "classes" } },
  { "conic: one class", function() data.conic{ classes = 1 } end, { "conic", "classes must be at least 2, got 1" } },
  { "conic: n 0", function() data.conic{ n = 0 } end, { "conic", "n" } },
  { "fashion_mnist: split 'val'", function() data.fashion_mnist{ split = "val" } end, { "fashion_mnist", "split must be 'train' or 'test', got val" } },
  { "fashion_mnist: missing folder", function() data.fashion_mnist{ path = "/nonexistent" } end,
    { "fashion_mnist", "cannot find '/nonexistent/train-images-idx3-ubyte.gz'" } },
  -- report
  { "report: folder not a string", function() report.build(nil) end, { "report.build", "argument #1", "folder path expected" } },
  { "report: empty folder", function() report.build(C.dir()) end, { "report", "no finished run found" } },
  { "report: runs that are not JSON", function()
      local d = C.dir()
      fs.mkdir(d .. "/runs")
      fs.write_atomic(d .. "/runs/a.json", "{ not json")
      report.build(d)
    end, { "report", "no finished run found" } },
  { "report: sweep.json keys not a list of strings", function()
      local d = C.dir()
      fs.mkdir(d .. "/runs")
      fs.write_atomic(d .. "/runs/a.json", json.encode{ finished = true, final = { train_loss = 1 } })
      fs.write_atomic(d .. "/sweep.json", json.encode{ keys = { 1, 2 } })
      report.build(d)
    end, { "report", "sweep.json: grid key 1 is a number, expected a string" } },
}

local valid = {
  { "experiment: one metric, progress on, no inter_cos", function()
      -- prints one progress line (the old code failed formatting inter_cos here)
      local r = collapse.experiment(spec{ metrics = { "intra_cos" }, progress = true, name = "one-metric" }):run()
      assert(type(r.final.intra_cos) == "number" and r.final.inter_cos == nil)
    end },
  { "experiment: empty metric list and measure_every 0", function()
      local r = collapse.experiment(spec{ metrics = {}, measure_every = 0 }):run()
      assert(r.final.train_loss == r.final.train_loss)
    end },
  { "experiment: every optional field absent", function()
      collapse.experiment{ data = { train = train }, model = model, optimizer = { "SGD", lr = 0.01, weight_decay = 1e-3 },
        epochs = 1, progress = false }:run()
    end },
  { "sweep: one point, one seed", function()
      local r = collapse.sweep{ experiment = spec{ metrics = { "intra_cos" } }, grid = { weight_decay = { 1e-3 } },
        seeds = { 3 }, out = C.dir(), progress = false }
      assert(#r.runs == 1)
    end },
  { "Dataset: whole-number float labels and an empty dataset", function()
      assert(data.Dataset{ x = x3, y = { 1.0, 2.0, 2 } }.y:dtype() == "int32")
      assert(data.Dataset{ x = collapse.zeros({ 0, 2 }), y = {}, classes = 3 }:size() == 0)
    end },
}

describe("bad input: experiments, sweeps, datasets and reports", function()
  C.run(it, entries)
  C.valid(it, valid)
  teardown(C.cleanup)
end)

return entries
