--- collapse.nc.layers: nc.measure_layers, the collapse metrics of every chosen module output of a
-- top-level Sequential (docs/metrics.md, "Layer by layer"). Two streaming passes over the data, one
-- forward per batch per pass, one O(C d) statistics object per layer (all alive at once).
local collapse = require("collapse")
local core = require("collapse.core")
local conventions = require("collapse.nc.conventions")
local eval_mode = require("collapse.nc.eval_mode")

local layers = {}

local function fail(fn, msg, ...) error(("%s: " .. msg):format(fn, ...), 3) end

local OPTS = { layers = true, batch_size = true, q = true, conventions = true }

-- The sorted, de-duplicated module indices asked for ("all" or an array of indices in 1..count).
local function chosen(fn, spec, count)
  if spec == nil or spec == "all" then
    local all = {}
    for i = 1, count do all[i] = i end
    return all
  end
  if type(spec) ~= "table" or #spec == 0 then
    fail(fn, "layers must be \"all\" or a non-empty array of module indices, got %s", tostring(spec))
  end
  local seen, out = {}, {}
  for k, i in ipairs(spec) do
    if math.type(i) ~= "integer" or i < 1 or i > count then
      fail(fn, "layers[%d] = %s is not a module index in 1..%d", k, tostring(i), count)
    end
    if not seen[i] then
      seen[i] = true
      out[#out + 1] = i
    end
  end
  table.sort(out)
  return out
end

-- A module output as the [n x d] matrix the statistics read (conv maps are flattened per sample).
local function flat(fn, out, n, index, m)
  if not collapse.is_tensor(out) or out:dim() < 1 or out:size(1) ~= n then
    fail(fn, "module %d (%s) did not return a tensor with %d rows", index, m:describe():match("[^\n]*"), n)
  end
  if out:dim() ~= 2 then out = out:reshape({ n, -1 }) end
  return out:is_contiguous() and out or out:contiguous()
end

local function check_args(fn, model, dataset, opts)
  if type(model) ~= "table" or type(model.modules) ~= "table" or #model.modules == 0 then
    fail(fn, "model must be an nn.Sequential (a table with a non-empty 'modules' array)")
  end
  if type(dataset) ~= "table" or not dataset.x or not dataset.classes then fail(fn, "dataset must be a data.Dataset") end
  if type(opts) ~= "table" then fail(fn, "options must be a table, got %s", type(opts)) end
  for k in pairs(opts) do if not OPTS[k] then fail(fn, "unknown option '%s'", tostring(k)) end end
  local bs = opts.batch_size or 1024
  if math.type(bs) ~= "integer" or bs < 1 then fail(fn, "batch_size must be a positive integer, got %s", tostring(bs)) end
  local q = opts.q or 0.05
  if type(q) ~= "number" or q <= 0 or q >= 1 then fail(fn, "q must be in (0, 1), got %s", tostring(q)) end
  return bs, q, conventions.bits(fn, opts.conventions)
end

-- One pass: a forward per batch through the top-level modules, each chosen output fed to its stats
-- as soon as it is made (module output buffers are reused by the next batch).
local function pass(fn, model, dataset, bs, idx, stats, which, conv)
  local want = {}
  for k, i in ipairs(idx) do want[i] = k end
  local last = idx[#idx]
  for x, y in dataset:batches{ batch_size = bs, shuffle = false } do
    local n = x:size(1)
    for i = 1, last do
      local m = model.modules[i]
      x = m:forward(x)
      local k = want[i]
      if k then
        local h = flat(fn, x, n, i, m)
        if which == 1 then
          stats[k] = stats[k] or core.nc_stats(dataset.classes, h:size(2), false, conv)
          stats[k]:pass1(h, y)
        else
          stats[k]:pass2(h, y)
        end
      end
    end
  end
end

--- nc.measure_layers(model, dataset, {layers = "all" | {i, ...}, batch_size = 1024, q = 0.05,
-- conventions = {...} (docs/metrics.md, "Conventions")}) ->
-- array of {index =, name = (first line of m:describe()), dim =, metrics = (as nc.measure without
-- a classifier)}, in module order; with "all" the last entry is the logits.
function layers.measure_layers(model, dataset, opts)
  local fn = "nc.measure_layers"
  opts = opts or {}
  local bs, q, conv = check_args(fn, model, dataset, opts)
  local idx = chosen(fn, opts.layers, #model.modules)
  local stats = {}
  local ok, err = eval_mode(model, function()
    pass(fn, model, dataset, bs, idx, stats, 1, conv)
    if #stats < #idx then fail(fn, "the dataset is empty") end
    for k, s in ipairs(stats) do
      local ok2, e = pcall(s.end_pass1, s)
      if not ok2 then
        fail(fn, "module %d (%s): %s", idx[k], model.modules[idx[k]]:describe():match("[^\n]*"), tostring(e))
      end
    end
    pass(fn, model, dataset, bs, idx, stats, 2)
  end)
  if not ok then
    for _, s in ipairs(stats) do s:free() end
    error(err, 2)
  end
  local out = {}
  for k, i in ipairs(idx) do
    local metrics = stats[k]:result(q)
    stats[k]:free()
    out[k] = { index = i, name = model.modules[i]:describe():match("[^\n]*"), dim = metrics.dim, metrics = metrics }
  end
  return out
end

return layers
