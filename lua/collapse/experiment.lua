--- collapse.experiment{...}: one declarative training run with collapse measurements.
-- See docs/experiments.md for every field. :run() trains, measures on the schedule asked for,
-- and returns (and, with `out`, writes as JSON) a result with per-epoch history and final values.
local collapse = require("collapse")
local core = require("collapse.core")
local json = require("collapse.json")
local fs = require("collapse.fs")

local Experiment = {}
Experiment.__index = Experiment

-- field -> expected Lua type (or a checker returning an error string)
local FIELDS = {
  name = "string", seed = "integer", data = "table|function", model = "function", optimizer = "table",
  schedule = "table", epochs = "integer", batch_size = "integer", measure_every = "integer",
  metrics = "table", out = "string", config = "table", lambda = "number", progress = "boolean",
  q = "number", measure_batch_size = "integer", drop_last = "boolean", threads = "integer",
  run_id = "string", flush_denormal = "boolean",
}

local DEFAULT_METRICS = { "intra_cos", "inter_cos", "intra_cos_min", "inter_cos_max", "feature_norm", "nc1",
  "etf_error", "accuracy", "loss", "regularized_loss", "bound", "gamma_norm", "weight_norm", "test_accuracy", "decomposition" }

-- Every name field 'metrics' may hold: the keys of nc.measure's result (docs/metrics.md; the spec
-- experiment_metrics_spec.lua checks this list against a real measurement) and those measure() below
-- computes itself. Checked when the experiment is made, not at its first measurement epochs later.
local KNOWN_METRICS = {}
for name in ([[accuracy between_energy between_spectrum cdnv class_counts classes dim equiangular equinorm
  etf_error etf_spectrum feature_norm inter_cos inter_cos_max inter_cos_q intra_cos intra_cos_min intra_cos_q
  intra_per_class loss max_cos mean_sq_norm nc1 ncc_agreement q samples self_duality trace_within variability
  w_equinorm regularized_loss decomposition bound gamma_norm weight_norm test_accuracy]]):gmatch("%S+") do
  KNOWN_METRICS[name] = true
end

-- Lower bounds of numeric fields (NaN fails every one).
local MINIMUM = { epochs = 1, batch_size = 1, measure_every = 0, measure_batch_size = 1, threads = 1, lambda = 0 }
local MINIMUM_NOTE = { measure_every = " (0: training curves only)" }

local function type_ok(v, spec)
  for t in spec:gmatch("[^|]+") do
    if t == "integer" then
      if math.type(v) == "integer" then return true end
    elseif type(v) == t then return true end
  end
  return false
end

--- Validates a spec table; errors name the field.
local function validate(spec)
  if type(spec) ~= "table" then error("experiment: expected a table spec, got " .. type(spec), 3) end
  for k, v in pairs(spec) do
    local want = FIELDS[k]
    if not want then
      error(("experiment: unknown field '%s' (fields: %s)"):format(tostring(k), "name, seed, data, model, "
        .. "optimizer, schedule, epochs, batch_size, measure_every, metrics, out, config, lambda, progress, q, "
        .. "measure_batch_size, drop_last, threads, run_id, flush_denormal"), 3)
    end
    if not type_ok(v, want) then
      error(("experiment: field '%s' must be %s, got %s"):format(k, want:gsub("|", " or "),
        math.type(v) or type(v)), 3)
    end
  end
  for i, name in ipairs(spec.metrics or {}) do
    if type(name) == "string" and not KNOWN_METRICS[name] then -- (non-strings: new() names them)
      local names = {}
      for k in pairs(KNOWN_METRICS) do names[#names + 1] = k end
      table.sort(names)
      error(("experiment: unknown metric '%s' (entry %d of field 'metrics'; known: %s)"):format(tostring(name), i,
        table.concat(names, ", ")), 3)
    end
  end
  for _, req in ipairs({ "data", "model", "optimizer", "epochs" }) do
    if spec[req] == nil then error(("experiment: field '%s' is required"):format(req), 3) end
  end
  for field, min in pairs(MINIMUM) do
    local v = spec[field]
    if v ~= nil and not (v >= min) then
      error(("experiment: field '%s' must be >= %s%s, got %s"):format(field, min, MINIMUM_NOTE[field] or "", v), 3)
    end
  end
  if spec.q ~= nil and not (spec.q > 0 and spec.q < 1) then
    error(("experiment: field 'q' must be in (0, 1), got %s"):format(spec.q), 3)
  end
  if spec.lambda ~= nil and spec.lambda == math.huge then error("experiment: field 'lambda' must be finite, got inf", 3) end
  if spec.metrics ~= nil then
    for i, m in ipairs(spec.metrics) do
      if type(m) ~= "string" then
        error(("experiment: field 'metrics' entry %d must be a metric name string, got %s"):format(i, type(m)), 3)
      end
    end
    for k in pairs(spec.metrics) do
      if math.type(k) ~= "integer" or k < 1 or k > #spec.metrics then
        error(("experiment: field 'metrics' must be a list of metric names, got key %s"):format(tostring(k)), 3)
      end
    end
  end
  local oname = spec.optimizer[1] or spec.optimizer.name
  if not collapse.optim[oname or ""] or type(collapse.optim[oname]) ~= "function" then
    error(("experiment: field 'optimizer' must name an optimiser ({\"Adam\", lr = ...}), got %s")
      :format(tostring(oname)), 3)
  end
end


local function new(spec)
  validate(spec)
  local self = setmetatable({ spec = spec }, Experiment)
  return self
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

local function fmt_time(s)
  if s < 60 then return ("%.1f s"):format(s) end
  return ("%dm%02ds"):format(s // 60, math.floor(s % 60))
end

-- Optimiser from {"Adam", lr = ..., weight_decay = ...}.
local function make_optimizer(ospec, params)
  local name = ospec[1] or ospec.name
  local opts = {}
  for k, v in pairs(ospec) do if k ~= 1 and k ~= "name" then opts[k] = v end end
  return collapse.optim[name](params, opts), name, opts
end

local function make_schedule(sspec, opt, epochs)
  if not sspec then return nil end
  local name = sspec[1] or sspec.name
  if name == "paper" then return collapse.optim.paper_schedule(opt, epochs) end
  local opts = {}
  for k, v in pairs(sspec) do if k ~= 1 and k ~= "name" then opts[k] = v end end
  if name == "MultiStepLR" and opts.milestones_fraction then
    local ms = {}
    for i, f in ipairs(opts.milestones_fraction) do ms[i] = math.max(1, math.floor(epochs * f + 0.5)) end
    opts.milestones, opts.milestones_fraction = ms, nil
  end
  local ctor = collapse.optim[name]
  if type(ctor) ~= "function" then error(("experiment: unknown schedule '%s'"):format(tostring(name)), 0) end
  return ctor(opt, opts)
end

-- Accuracy of the model over a dataset in evaluate mode.
local function accuracy(model, ds, bs)
  local was = model.training
  model:evaluate()
  local correct = 0
  for x, y in ds:batches{ batch_size = bs, shuffle = false } do
    correct = correct + core.count_correct(model:forward(x), y)
  end
  if was then model:train() end
  return correct / ds:size()
end

-- The decomposition as a run records it: the parts as {name, value} in chain order (their labels
-- are nc.decompose.PARTS); lambda = 0 (no weight decay) is "not applicable", as for the bound.
local function decomposition_record(d)
  if not d then return { applicable = false, reason = "not applicable (weight decay 0)" } end
  local parts = {}
  for i, p in ipairs(d.parts) do parts[i] = { name = p.name, value = p.value } end
  return { applicable = true, epsilon = d.epsilon, L_reg = d.L_reg, L_star = d.L_star, t_star = d.t_star,
    relative_epsilon = d.relative_epsilon, dominant = d.dominant, bn_mode = d.bn_mode, balanced = d.balanced,
    negative = d.negative, parts = parts }
end

-- The measurements of one point of the schedule, as a flat table of numbers and tables.
local function measure(self, model, train, test, lambda, want)
  local nc = collapse.nc
  local q = self.spec.q
  local bs = self.spec.measure_batch_size or 1024
  local decomp = false
  for _, key in ipairs(want) do if key == "decomposition" then decomp = true end end
  local cert = nc.certify(model, train, lambda, { q = q, batch_size = bs, decompose = decomp })
  local m = cert.metrics
  local rec = {}
  for _, key in ipairs(want) do
    if key == "regularized_loss" then rec.regularized_loss = cert.loss.total
    elseif key == "decomposition" then rec.decomposition = decomposition_record(cert.decomposition)
    elseif key == "bound" then
      local b = cert.bound
      rec.bound = { guaranteed = b.guaranteed, reason = b.reason, epsilon = b.epsilon,
        optimal_loss = b.optimal_loss, intra_cos_min = b.intra_cos_min, inter_cos_max = b.inter_cos_max,
        asymptotic = b.asymptotic, intra_vacuous = b.intra_vacuous, inter_vacuous = b.inter_vacuous,
        applicable = b.applicable ~= false }
      rec.model_free_bound = { guaranteed = cert.model_free.guaranteed, loss = cert.model_free.loss,
        intra_cos_min = cert.model_free.intra_cos_min, inter_cos_max = cert.model_free.inter_cos_max,
        reason = cert.model_free.reason }
    elseif key == "gamma_norm" then
      rec.gamma_norm = cert.loss.gamma_sq and math.sqrt(cert.loss.gamma_sq) or nil
    elseif key == "weight_norm" then rec.weight_norm = math.sqrt(cert.loss.weight_sq)
    elseif key == "test_accuracy" then
      if test then rec.test_accuracy = accuracy(model, test, bs) end
    elseif m[key] ~= nil then rec[key] = m[key]
    else
      error(("experiment: unknown metric '%s' in field 'metrics'"):format(key), 0)
    end
  end
  rec.ce = cert.loss.ce
  -- epsilon = L_reg - L* of the bound (clamped at 0 with BN); the decomposition's when no bound is asked
  rec.epsilon = rec.bound and rec.bound.epsilon or (rec.decomposition and rec.decomposition.epsilon) or nil
  return rec
end

-- Everything a run needs, built from the spec: data, model, optimiser, schedule, options.
local function prepare(spec)
  local seed = spec.seed or 0
  local cfg = copy(spec.config or {})
  cfg.seed = seed
  local data = spec.data
  if type(data) == "function" then data = data(cfg) end
  if type(data) ~= "table" or not data.train then
    error("experiment: field 'data' must be {train = dataset, test = dataset?} (or a function returning it)", 0)
  end
  local train = data.train
  cfg.classes = train.classes
  cfg.input_dim = train.x:size(2)
  cfg.dtype = train.x:dtype()
  local model = spec.model(cfg)
  if type(model) ~= "table" or type(model.forward) ~= "function" then
    error("experiment: model(cfg) must return a module, got " .. type(model), 0)
  end
  if spec.threads then collapse.set_num_threads(spec.threads) end
  local opt, oname, oopts = make_optimizer(spec.optimizer, model:parameters())
  local progress = spec.progress
  if progress == nil then progress = core.isatty(1) end
  return { spec = spec, seed = seed, cfg = cfg, train = train, test = data.test, model = model, opt = opt,
    oname = oname, oopts = oopts, sched = make_schedule(spec.schedule, opt, spec.epochs),
    lambda = spec.lambda or oopts.weight_decay or 0, bs = spec.batch_size or 128,
    measure_every = spec.measure_every or spec.epochs, want = spec.metrics or DEFAULT_METRICS,
    progress = progress, label = spec.run_id or spec.name or "run",
    crit = collapse.nn.CrossEntropyLoss(), rng = collapse.rng(seed + 7919) }
end

-- One pass over the training set; returns the epoch's record (loss, accuracy, lr).
local function train_epoch(ctx, epoch)
  local loss_sum, correct, seen = 0, 0, 0
  for x, y in ctx.train:batches{ batch_size = ctx.bs, shuffle = true, rng = ctx.rng, drop_last = ctx.spec.drop_last } do
    local logits = ctx.model:forward(x)
    local loss = ctx.crit:forward(logits, y)
    ctx.model:backward(x, ctx.crit.grad, false) -- the inputs need no gradient
    ctx.opt:step{ zero_grad = true }            -- step and zero the gradients in one pass
    local m = x:size(1)
    loss_sum = loss_sum + loss * m
    correct = correct + core.count_correct(logits, y)
    seen = seen + m
  end
  return { epoch = epoch, lr = ctx.opt.lr, train_loss = loss_sum / seen, train_accuracy = correct / seen }
end

--- "  intra 0.9000  inter -0.1000" for whichever of the two a record holds ("" for neither).
function Experiment.collapse_summary(rec, sep)
  local parts = {}
  for _, k in ipairs({ "intra_cos", "inter_cos" }) do
    if type(rec[k]) == "number" then parts[#parts + 1] = ("%s %.4f"):format(k:sub(1, 5), rec[k]) end
  end
  if #parts == 0 then return "" end
  sep = sep or "  "
  return sep .. table.concat(parts, sep)
end

-- The result table; written to <out>/<label>.json (without the model) when out is set.
local function finish(ctx, history, t0)
  local spec = ctx.spec
  local result = {
    name = spec.name, run_id = spec.run_id, seed = ctx.seed, config = ctx.cfg, epochs = spec.epochs,
    batch_size = ctx.bs, optimizer = { name = ctx.oname, options = ctx.oopts }, lambda = ctx.lambda,
    history = history, final = history[#history], samples = ctx.train:size(), classes = ctx.train.classes,
    finished = true, seconds = core.clock() - t0, version = collapse.version,
    blas = { core = core.blas_info().core, threads = collapse.get_num_threads() },
    flush_denormal = collapse.get_flush_denormal(),
  }
  if spec.out then
    fs.mkdir(spec.out)
    local path = spec.out .. "/" .. ctx.label:gsub("[^%w%._=%-]", "_") .. ".json"
    fs.write_atomic(path, json.encode(result, { indent = 1 }) .. "\n")
    result.path = path
  end
  result.model = ctx.model -- not written to JSON
  return result
end

local train_and_measure

--- Trains and measures. Returns the result table; writes <out>/<run_id or name>.json when out is set.
-- The run computes with subnormal floats flushed to zero (spec.flush_denormal, default true): on
-- Intel CPUs a network without BN at large weight decay otherwise spends most of its time in
-- microcode assists for its subnormal gradients (docs/experiments.md). The caller's mode is restored.
function Experiment:run(overrides)
  local spec = self.spec
  if overrides then
    spec = copy(spec)
    for k, v in pairs(overrides) do spec[k] = v end
    validate(spec)
  end
  local before = collapse.get_flush_denormal()
  collapse.set_flush_denormal(spec.flush_denormal ~= false)
  local ok, result = pcall(train_and_measure, spec)
  collapse.set_flush_denormal(before)
  if not ok then error(result, 0) end
  return result
end

function train_and_measure(spec)
  local t0 = core.clock()
  local ctx = prepare(spec)
  local history = {}
  ctx.model:train()
  for epoch = 1, spec.epochs do
    local te = core.clock()
    local rec = train_epoch(ctx, epoch)
    if ctx.sched then ctx.sched:step() end
    if rec.train_loss ~= rec.train_loss then
      error(("experiment '%s': training diverged at epoch %d (loss is NaN); lower the learning rate")
        :format(ctx.label, epoch), 0)
    end
    if ctx.measure_every > 0 and (epoch % ctx.measure_every == 0 or epoch == spec.epochs) then
      local ok, m = pcall(measure, ctx, ctx.model, ctx.train, ctx.test, ctx.lambda, ctx.want)
      if not ok then error(("experiment '%s', epoch %d: %s"):format(ctx.label, epoch, tostring(m)), 0) end
      for k, v in pairs(m) do rec[k] = v end
    end
    rec.seconds = core.clock() - te
    history[#history + 1] = rec
    if ctx.progress then
      io.stdout:write(("%s  epoch %d/%d  loss %.4f  acc %.4f%s  (%s)\n"):format(ctx.label, epoch, spec.epochs,
        rec.train_loss, rec.train_accuracy, Experiment.collapse_summary(rec), fmt_time(rec.seconds)))
      io.stdout:flush()
    end
  end
  return finish(ctx, history, t0)
end

--- collapse.experiment(spec) -> object with :run(); the table also carries collapse_summary and
-- known_metrics (the names field 'metrics' accepts).
return setmetatable({ collapse_summary = Experiment.collapse_summary, known_metrics = KNOWN_METRICS }, { __call = function(_, spec) return new(spec) end })
