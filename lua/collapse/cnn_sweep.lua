--- collapse.cnn_sweep: the paper's CNN protocol as a resumable sweep (examples/cnn_fashion.lua,
-- examples/paper_cnn.lua). One collapse.sweep per model over weight decay x last-layer BN x
-- seeds (Adam with coupled weight decay, the paper's x0.1 schedule at 25/50/75% of the epochs),
-- the metrics of the classifier's input on the training set after training, and per layer
-- (nc.measure_layers, model in evaluate mode) written beside each run as
-- <out>/layers/<run id>.json. A run whose layer file is missing (the process was stopped between
-- the two files) is trained again, so stopping and rerunning always ends complete.
local collapse = require("collapse")
local json = require("collapse.json")
local fs = require("collapse.fs")

local cnn_sweep = {}

-- The metrics kept from the final record and from every layer.
cnn_sweep.METRICS = { "intra_cos", "inter_cos", "intra_cos_min", "inter_cos_max", "intra_cos_q", "inter_cos_q",
  "feature_norm", "nc1" }

-- The id collapse.sweep gives a run of the grid {last_bn, weight_decay} (keys sorted, %g numbers)
-- and the file-name form of it.
local function run_id(bn, wd, seed)
  return ("last_bn=%s_weight_decay=%s_seed=%d"):format(tostring(bn), ("%g"):format(wd), seed)
end
local function file_id(id) return (id:gsub("[^%w%._=%-]", "_")) end

--- The top-level modules whose outputs the per-layer plot shows: the stem's ReLU (index 3), every
-- max-pool (VGG stage ends), every Sequential (ResNet blocks), the global pooling, the head's
-- ReLUs (after Flatten) and a BatchNorm before the classifier: input side to classifier.
function cnn_sweep.layer_indices(model)
  local out, head = {}, false
  for i = 1, #model.modules - 1 do
    local name = getmetatable(model.modules[i]).__name
    if name == "nn.Flatten" then head = true end
    if name == "nn.MaxPool2d" or name == "nn.Sequential" or name == "nn.GlobalAvgPool2d" or name == "nn.BatchNorm"
      or (name == "nn.ReLU" and (i == 3 or head)) then
      out[#out + 1] = i
    end
  end
  return out
end

local function pick(metrics)
  local out = {}
  for _, k in ipairs(cnn_sweep.METRICS) do out[k] = metrics[k] end
  return out
end

-- Measures the layers of a trained model and writes them atomically to path.
local function save_layers(path, model, train, batch_size)
  local res = collapse.nc.measure_layers(model, train, { layers = cnn_sweep.layer_indices(model),
    batch_size = batch_size })
  local layers = {}
  for k, l in ipairs(res) do layers[k] = { index = l.index, name = l.name, dim = l.dim, metrics = pick(l.metrics) } end
  fs.write_atomic(path, json.encode({ layers = layers }, { indent = 1 }) .. "\n")
  return layers
end

--- cnn_sweep.run{name =, out =, train = Dataset, build = function(cfg) -> model (cfg.last_bn,
-- cfg.weight_decay, cfg.seed, cfg.classes), weight_decays = {...}, bn = {true, false}, seeds = {1},
-- epochs =, lr =, batch_size = 128, measure_batch_size = 500, threads = 1, jobs =, worker =,
-- task =} -> array of {wd =, bn =, seed =, final = the run's final record, layers = per-layer
-- entries}. jobs = N (> 1) with worker = function(index) -> argv runs the missing points in N
-- processes (collapse.sweep's jobs): each worker is a program that calls cnn_sweep.run with
-- task = index, which trains that point, writes its layer file and returns nil.
function cnn_sweep.run(o)
  local out = o.out
  fs.mkdir(out .. "/layers")
  local seeds, bns = o.seeds or { 1 }, o.bn or { true, false }
  -- a finished run without its layer file is trained again (by the parent only: a worker must not
  -- touch the runs of the others, which may be writing their layer files right now)
  for _, wd in ipairs(o.task and {} or o.weight_decays) do
    for _, bn in ipairs(bns) do
      for _, s in ipairs(seeds) do
        local id = file_id(run_id(bn, wd, s))
        if not fs.exists(out .. "/layers/" .. id .. ".json") then os.remove(out .. "/runs/" .. id .. ".json") end
      end
    end
  end
  -- The model of the run that just finished is measured layer by layer when the next run builds
  -- its model (the sweep has written the finished run's JSON by then) or after the sweep: one
  -- trained model alive at a time.
  local pending, fresh = nil, {}
  local mbs = o.measure_batch_size or 500
  local function flush()
    if pending then
      fresh[pending.id] = save_layers(out .. "/layers/" .. pending.id .. ".json", pending.model, o.train, mbs)
      pending = nil
    end
  end
  local spec = {
    name = o.name, data = { train = o.train },
    model = function(cfg)
      flush()
      local m = o.build(cfg)
      pending = { id = file_id(run_id(cfg.last_bn, cfg.weight_decay, cfg.seed)), model = m }
      return m
    end,
    optimizer = { "Adam", lr = o.lr }, schedule = { "paper" }, epochs = o.epochs, batch_size = o.batch_size or 128,
    metrics = cnn_sweep.METRICS, measure_batch_size = mbs, threads = o.threads or 1,
  }
  local opts = nil
  if o.task then opts = { task = o.task }
  elseif o.jobs and o.jobs > 1 then opts = { jobs = o.jobs, worker = o.worker } end
  local res = collapse.sweep({ experiment = spec, grid = { weight_decay = o.weight_decays, last_bn = bns },
    seeds = seeds, out = out, progress = o.progress ~= false }, opts)
  flush()
  if o.task then return nil end
  local rows = {}
  for _, r in ipairs(res.runs) do
    local id = file_id(r.run_id)
    local path = out .. "/layers/" .. id .. ".json"
    local layers = fresh[id] or json.decode(assert(fs.read(path), "missing " .. path)).layers
    rows[#rows + 1] = { wd = r.grid.weight_decay, bn = r.grid.last_bn, seed = r.seed, final = r.final,
      metrics = pick(r.final), layers = layers, seconds = r.seconds }
  end
  return rows
end

--- Rows of a table (one per model x BN x weight decay, means over seeds) as text lines.
function cnn_sweep.table(model_name, rows)
  local groups, order = {}, {}
  for _, r in ipairs(rows) do
    local k = (r.bn and "1" or "2") .. ("%012.6f"):format(r.wd)
    if not groups[k] then groups[k] = { bn = r.bn, wd = r.wd, list = {} }; order[#order + 1] = k end
    table.insert(groups[k].list, r)
  end
  table.sort(order)
  local lines = {}
  for _, k in ipairs(order) do
    local g = groups[k]
    local function mean(f)
      local s = 0
      for _, r in ipairs(g.list) do s = s + f(r) end
      return s / #g.list
    end
    lines[#lines + 1] = ("| %-14s | %-3s | %-6g | %.4f | %.4f | %.4f | %.4f | %.4f | %.4f | %.3f |"):format(model_name,
      g.bn and "yes" or "no", g.wd, mean(function(r) return r.final.train_loss end),
      mean(function(r) return r.final.train_accuracy end), mean(function(r) return r.metrics.intra_cos end),
      mean(function(r) return r.metrics.inter_cos end), mean(function(r) return r.metrics.intra_cos_min end),
      mean(function(r) return r.metrics.inter_cos_max end), mean(function(r) return r.metrics.feature_norm end))
  end
  return lines
end

cnn_sweep.TABLE_HEADER = { "| model          | BN  | wd     | loss   | acc    | intra  | inter  | min intra | max inter | norm |",
  "|---|---|---|---|---|---|---|---|---|---|" }

return cnn_sweep
