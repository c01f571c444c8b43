--- collapse.nc: neural-collapse metrics (docs/metrics.md) and the collapse bound (docs/theory.md).
-- The numerics live in C (csrc/nc); this layer checks arguments and walks models and datasets.
local collapse = require("collapse")
local core = require("collapse.core")
local conventions = require("collapse.nc.conventions")
local eval_mode = require("collapse.nc.eval_mode")

local nc = {}

local function fail(fn, msg, ...) error(("%s: " .. msg):format(fn, ...), 3) end

-- Labels must be whole numbers: a float label such as 1.5 would be truncated silently by the int32
-- conversion, so it is refused naming the first one.
local function labels_tensor(fn, y)
  if collapse.is_tensor(y) then
    if y:dtype() == "int32" then return y end
    local yi = y:to("int32")
    local diff = y - yi:to(y:dtype())
    if diff:dot(diff) ~= 0 then
      local flat = y:reshape({ y:numel() })
      for i = 1, flat:numel() do
        local v = flat[i]
        if v ~= math.floor(v) then fail(fn, "label %s at index %d is not an integer class index", tostring(v), i) end
      end
    end
    return yi
  end
  if type(y) == "table" then
    for i, v in ipairs(y) do
      if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
        fail(fn, "label %s at index %d is not an integer class index", tostring(v), i)
      end
    end
    return core.tensor(y, "int32")
  end
  fail(fn, "labels must be an int32 tensor or an array of integers, got %s", type(y))
end

-- W (C x d) and b from a Linear module, a tensor, or nil.
local function classifier_tensors(fn, cls, bias)
  if cls == nil then return nil, nil end
  if collapse.is_tensor(cls) then return cls:to("float64"), bias and bias:to("float64") or nil end
  if type(cls) == "table" and collapse.is_tensor(cls.weight) then
    return cls.weight:to("float64"), cls.bias and cls.bias:to("float64") or nil
  end
  fail(fn, "classifier must be an nn.Linear or a weight tensor [C x d], got %s", type(cls))
end

local function check_q(fn, q)
  if q == nil then return 0.05 end
  if type(q) ~= "number" or q <= 0 or q >= 1 then fail(fn, "q must be in (0, 1), got %s", tostring(q)) end
  return q
end

local MEASURE_OPTS = { classifier = true, bias = true, q = true, classes = true, within_spectrum = true,
  conventions = true }
nc.conventions = conventions

--- nc.measure(features [N x d], labels (1..C), {classifier = linear or W, bias = b, q = 0.05,
-- classes = C, within_spectrum = false, conventions = {global_mean = "samples", ...}}) -> table of
-- every metric of docs/metrics.md (conventions: its "Conventions" section; defaults if absent).
function nc.measure(features, labels, opts)
  local fn = "nc.measure"
  opts = opts or {}
  if type(opts) ~= "table" then fail(fn, "options must be a table, got %s", type(opts)) end
  for k in pairs(opts) do if not MEASURE_OPTS[k] then fail(fn, "unknown option '%s'", tostring(k)) end end
  if not collapse.is_tensor(features) or features:dim() ~= 2 then
    fail(fn, "features must be a 2-d tensor [N x d], got %s", collapse.is_tensor(features) and
      ("a " .. features:dim() .. "-d tensor") or type(features))
  end
  local y = labels_tensor(fn, labels)
  local classes = opts.classes or y:max()
  local W, b = classifier_tensors(fn, opts.classifier, opts.bias)
  return core.nc_measure(features, y, classes, W, b, check_q(fn, opts.q), opts.within_spectrum and true or false,
    conventions.bits(fn, opts.conventions))
end

--- nc.measure_model(model, dataset, {batch_size = 1024, q = 0.05, within_spectrum = false, conventions = {...}}):
-- two streaming passes over the dataset, features taken at the input of the final Linear, the
-- model in evaluate mode (its mode is restored afterwards).
-- The model/dataset/batch_size arguments every model analysis takes (errors blame the caller's line).
local function check_model_dataset(fn, model, dataset, opts)
  if type(model) ~= "table" or type(model.features) ~= "function" or type(model.classifier) ~= "function" then
    error(("%s: model must be an nn.Sequential ending in an nn.Linear, got %s"):format(fn, type(model)), 3)
  end
  if type(dataset) ~= "table" or not dataset.x then
    error(("%s: dataset must be a data.Dataset, got %s"):format(fn, type(dataset)), 3)
  end
  local bs = opts.batch_size
  if bs ~= nil and (math.type(bs) ~= "integer" or bs < 1) then
    error(("%s: batch_size must be a positive integer, got %s"):format(fn, tostring(bs)), 3)
  end
end

function nc.measure_model(model, dataset, opts)
  local fn = "nc.measure_model"
  opts = opts or {}
  check_model_dataset(fn, model, dataset, opts)
  local bs = opts.batch_size or 1024
  local cls = model:classifier()
  local W, b = classifier_tensors(fn, cls)
  local stats = core.nc_stats(dataset.classes, cls.in_features, opts.within_spectrum and true or false,
    conventions.bits(fn, opts.conventions))
  local function features(x)
    local h = model:features(x)
    if h:dim() ~= 2 or h:size(2) ~= cls.in_features then
      local dims = {}
      for i = 1, h:dim() do dims[i] = tostring(h:size(i)) end
      fail(fn, "the model's features are [%s] but its classifier expects [N x %d] (in_features)",
        table.concat(dims, " x "), cls.in_features)
    end
    return h
  end
  local ok, err = eval_mode(model, function()
    for x, y in dataset:batches{ batch_size = bs, shuffle = false } do stats:pass1(features(x), y) end
    stats:end_pass1()
    stats:set_classifier(W, b)
    for x, y in dataset:batches{ batch_size = bs, shuffle = false } do stats:pass2(features(x), y) end
  end)
  if not ok then error(err, 2) end
  return stats:result(check_q(fn, opts.q))
end

nc.measure_layers = require("collapse.nc.layers").measure_layers
local nc_stats = require("collapse.nc.stats")
nc.stats, nc.load_stats, nc.merge_stats = nc_stats.new, nc_stats.load, nc_stats.merge

local function check_lambda_classes(fn, lambda, classes)
  if type(lambda) ~= "number" or lambda ~= lambda or lambda <= 0 then
    fail(fn, "lambda must be a positive number, got %s", tostring(lambda))
  end
  if math.type(classes) ~= "integer" or classes < 2 then
    fail(fn, "classes must be an integer >= 2, got %s", tostring(classes))
  end
end

--- nc.optimal_loss(lambda, classes) -> L*, t* (Theorem 1 of docs/theory.md).
function nc.optimal_loss(lambda, classes)
  check_lambda_classes("nc.optimal_loss", lambda, classes)
  return core.optimal_loss(lambda, classes)
end

local BOUND_OPTS = { lambda = true, classes = true, loss = true, per_class = true, bn = true, q = true }

--- nc.bound{lambda =, classes =, loss =, per_class = n?, bn = true, q = 0.05}: the certified
-- collapse implied by a regularised loss (Theorem 2), its asymptotic form, and the reason when
-- nothing is guaranteed.
function nc.bound(spec)
  local fn = "nc.bound"
  if type(spec) ~= "table" then fail(fn, "expected a table {lambda =, classes =, loss =}, got %s", type(spec)) end
  for k in pairs(spec) do if not BOUND_OPTS[k] then fail(fn, "unknown field '%s'", tostring(k)) end end
  check_lambda_classes(fn, spec.lambda, spec.classes)
  if type(spec.loss) ~= "number" or spec.loss ~= spec.loss then
    fail(fn, "loss must be a number, got %s", tostring(spec.loss))
  end
  local n = spec.per_class or 0
  if math.type(n) ~= "integer" or n < 0 or n == 1 then
    fail(fn, "per_class must be an integer >= 2 (or nil when unknown), got %s", tostring(spec.per_class))
  end
  return core.bound(spec.lambda, spec.classes, spec.loss, n, spec.bn ~= false, check_q(fn, spec.q))
end

-- The BatchNorm feeding the classifier: the last BatchNorm before the final Linear with only
-- parameter-free modules (ReLU, Identity, ...) between them.
local function last_bn(model)
  local mods = model.modules
  for i = #mods - 1, 1, -1 do
    local m = mods[i]
    if getmetatable(m) == collapse.nn.BatchNorm_class then return m end
    if #m:parameters() > 0 then return nil end
  end
  return nil
end
nc.last_bn = last_bn

local function sq(t) return t and t:dot(t) or nil end

-- lambda >= 0 (0: no weight decay, reported as "not applicable" by the bound).
local function check_lambda(fn, lambda)
  if type(lambda) ~= "number" or lambda ~= lambda or lambda < 0 then
    error(("%s: lambda must be a non-negative number, got %s"):format(fn, tostring(lambda)), 3)
  end
end

--- nc.regularized_loss(model, dataset, lambda) -> {total, ce, weight_sq, bias_sq, gamma_sq,
-- beta_sq, lambda}: L_reg = CE + lambda/2 (||W||^2 + ||b||^2 + ||gamma||^2 + ||beta||^2) of the
-- last layer (classifier W, b and the BN feeding it); absent parts are nil.
function nc.regularized_loss(model, dataset, lambda, opts)
  local fn = "nc.regularized_loss"
  check_lambda(fn, lambda)
  opts = opts or {}
  check_model_dataset(fn, model, dataset, opts)
  local cls = model:classifier()
  local bn = last_bn(model)
  local crit = collapse.nn.CrossEntropyLoss()
  local total_ce, n = 0, 0
  local ok, err = eval_mode(model, function()
    for x, y in dataset:batches{ batch_size = opts.batch_size or 1024, shuffle = false } do
      local m = x:size(1)
      total_ce = total_ce + crit:forward(model:forward(x), y) * m
      n = n + m
    end
  end)
  if not ok then error(err, 2) end
  if n == 0 then fail(fn, "the dataset is empty; the mean cross-entropy needs at least one sample") end
  local r = { lambda = lambda, ce = total_ce / n, weight_sq = sq(cls.weight), bias_sq = sq(cls.bias),
    gamma_sq = bn and sq(bn.weight) or nil, beta_sq = bn and sq(bn.bias) or nil, has_bn = bn ~= nil }
  r.total = r.ce + lambda / 2 * (r.weight_sq + (r.bias_sq or 0) + (r.gamma_sq or 0) + (r.beta_sq or 0))
  return r
end

--- nc.certify(model, dataset, lambda, {q, batch_size, decompose = true}) -> {metrics, loss, bound,
-- model_free, decomposition (nc.decompose, bn_mode "running"; nil when lambda = 0)}:
-- the measured metrics, the BN-based bound at the regularised loss and the model-free
-- certificate (L_hat = CE + lambda/2 (A + Q + ||b||^2), docs/theory.md) side by side.
function nc.certify(model, dataset, lambda, opts)
  local fn = "nc.certify"
  check_lambda(fn, lambda)
  opts = opts or {}
  check_model_dataset(fn, model, dataset, opts)
  local metrics = nc.measure_model(model, dataset, opts)
  local loss = nc.regularized_loss(model, dataset, lambda, opts)
  local counts = metrics.class_counts
  local n_min, n_max = math.huge, 0
  for _, c in ipairs(counts) do n_min = math.min(n_min, c); n_max = math.max(n_max, c) end
  local C = dataset.classes
  -- Model-free certificate: A = sum_c ||w_c - w_bar||^2, Q = mean squared feature norm.
  local W = model:classifier().weight:to("float64")
  local w_bar = W:mean(1)
  local centred = W - w_bar
  local A = centred:dot(centred)
  local Q = metrics.mean_sq_norm
  local l_hat = loss.ce + lambda / 2 * (A + Q + (loss.bias_sq or 0))
  local bound, model_free
  if lambda == 0 then
    -- Theorem 2 needs lambda > 0 (without weight decay nothing is penalised): the metrics stand alone.
    bound = nc.not_applicable(lambda, C, loss.total)
    model_free = nc.not_applicable(lambda, C, l_hat)
  else
    local l_star = nc.optimal_loss(lambda, C)
    if loss.has_bn and loss.total < l_star * (1 - 1e-12) then
      -- Theorem 1 needs the BN statistics of the whole set; evaluate mode normalises with the running
      -- estimates, under which L_reg can dip below L*. That is a measurement, not an error.
      bound = { guaranteed = false, applicable = false, lambda = lambda, classes = C, loss = loss.total,
        optimal_loss = l_star, reason = ("L_reg = %.6g is below L* = %.6g: the evaluate-mode (running) BN "
          .. "statistics are not the whole-set batch statistics the theorem assumes; nothing is certified")
          :format(loss.total, l_star) }
    else
      bound = nc.bound{ lambda = lambda, classes = C, loss = loss.total, per_class = n_min, bn = loss.has_bn,
        q = opts.q }
    end
    local ok
    ok, model_free = pcall(nc.bound, { lambda = lambda, classes = C, loss = l_hat, per_class = n_min, q = opts.q })
    if not ok then
      model_free = { guaranteed = false, reason = tostring(model_free):gsub("^.-nc.bound: ", "") }
    end
  end
  model_free.loss = l_hat
  -- epsilon split into the proof chain's slacks, on the evaluate-mode features of the bound's L_reg
  local decomposition = lambda > 0 and opts.decompose ~= false
    and nc.decompose(model, dataset, lambda, { batch_size = opts.batch_size, bn_mode = "running" }) or nil
  return { metrics = metrics, loss = loss, bound = bound, model_free = model_free, balanced = n_min == n_max,
    lambda = lambda, classes = C, decomposition = decomposition }
end

--- nc.not_applicable(lambda, classes, loss): the bound record used when lambda = 0 (weight decay 0):
-- not guaranteed, applicable = false, and the reason "not applicable (weight decay 0)".
function nc.not_applicable(lambda, classes, loss)
  return { guaranteed = false, applicable = false, reason = "not applicable (weight decay 0)", lambda = lambda,
    classes = classes, loss = loss }
end

nc.decompose = require("collapse.decompose") -- epsilon split into the proof chain

return nc
