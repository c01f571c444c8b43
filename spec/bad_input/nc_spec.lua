-- Bad inputs to collapse.nc: measure, measure_model, measure_layers, optimal_loss, bound,
-- regularized_loss, certify, decompose and the streaming statistics objects. Each error names the
-- function, the argument and what was expected (spec/support/catalogue.lua); valid edge cases follow.
local collapse = require("collapse")
local C = require("support.catalogue")
local nc, models = collapse.nc, collapse.models

local ds = collapse.data.gaussian{ classes = 3, dim = 6, per_class = 10, seed = 1, dtype = "float64" }
local function model()
  return models.paper_mlp{ input_dim = 6, classes = 3, depth = 2, width = 8, batchnorm = true, dtype = "float64",
    rng = collapse.rng(2) }
end
local function with(t, i, j, v) local c = t:clone(); if v == nil then c:set(i, j) else c:set(i, j, v) end; return c end
local function bound(extra)
  local t = { lambda = 1e-3, classes = 10, loss = 0.1 }
  for k, v in pairs(extra) do t[k] = v end
  return function() nc.bound(t) end
end

local entries = {
  -- nc.measure
  { "measure: features a number", function() nc.measure(5, ds.y) end, { "nc.measure", "features", "2-d tensor [N x d]", "number" } },
  { "measure: features int32", function() nc.measure(ds.x:to("int32"), ds.y) end, { "nc.measure", "features", "float32 or float64" } },
  { "measure: labels nil", function() nc.measure(ds.x, nil) end, { "nc.measure", "labels", "int32 tensor or an array of integers", "nil" } },
  { "measure: fewer labels than rows", function() nc.measure(ds.x, ds.y:narrow(1, 1, 5)) end, { "nc.measure", "30 feature rows but 5 labels" } },
  { "measure: label 0", function() nc.measure(ds.x, with(ds.y, 1, 0)) end, { "nc_measure", "label 0", "outside 1..3" } },
  { "measure: label 1.5", function() local y = ds.y:totable(); y[2] = 1.5; nc.measure(ds.x, y) end, { "nc.measure", "1.5" } },
  { "measure: a non-finite feature", function() nc.measure(with(ds.x, 1, 1, 0 / 0), ds.y) end,
    { "nc_measure", "non-finite value", "row 0, column 0", "expected finite numbers" } },
  { "measure: a class of one sample", function() nc.measure(ds.x:narrow(1, 1, 21), ds.y:narrow(1, 1, 21)) end,
    { "nc_measure", "class 3 has 1 sample", "at least 2" } },
  { "measure: q 2", function() nc.measure(ds.x, ds.y, { q = 2 }) end, { "nc.measure", "q", "(0, 1)", "2" } },
  { "measure: q a string", function() nc.measure(ds.x, ds.y, { q = "a" }) end, { "nc.measure", "q", "(0, 1)" } },
  { "measure: unknown option", function() nc.measure(ds.x, ds.y, { qq = 1 }) end, { "nc.measure", "unknown option 'qq'" } },
  { "measure: options a string", function() nc.measure(ds.x, ds.y, "x") end, { "nc.measure", "options must be a table", "string" } },
  { "measure: classifier a number", function() nc.measure(ds.x, ds.y, { classifier = 3 }) end,
    { "nc.measure", "classifier", "nn.Linear or a weight tensor [C x d]", "number" } },
  { "measure: transposed classifier", function() nc.measure(ds.x, ds.y, { classifier = collapse.zeros({ 6, 3 }, "float64") }) end,
    { "classifier weight is [6 x 3], expected [3 x 6]" } },
  { "measure: unknown convention", function() nc.measure(ds.x, ds.y, { conventions = { foo = "x" } }) end,
    { "nc.measure", "unknown convention 'foo'", "global_mean" } },
  { "measure: bad convention value", function() nc.measure(ds.x, ds.y, { conventions = { global_mean = "x" } }) end,
    { "nc.measure", "global_mean = 'x'", "'class_means', 'samples'" } },
  -- models and datasets
  { "measure_model: model nil", function() nc.measure_model(nil, ds) end, { "nc.measure_model", "model", "nn.Sequential ending in an nn.Linear", "nil" } },
  { "measure_model: dataset nil", function() nc.measure_model(model(), nil) end, { "nc.measure_model", "dataset", "data.Dataset", "nil" } },
  { "measure_model: batch_size 0", function() nc.measure_model(model(), ds, { batch_size = 0 }) end,
    { "nc.measure_model", "batch_size", "positive integer", "0" } },
  { "measure_model: features of the wrong width", function()
      local m = model(); m:get(1).out_features = 8; m.modules[#m.modules] = collapse.nn.Linear(5, 3, { dtype = "float64" })
      nc.measure_model(m, ds) end, { "nc.measure_model", "features are [30 x 8]", "expects [N x 5]" } },
  { "measure_layers: layer 99", function() nc.measure_layers(model(), ds, { layers = { 99 } }) end,
    { "nc.measure_layers", "layers[1] = 99", "module index in 1..4" } },
  { "measure_layers: layers a word", function() nc.measure_layers(model(), ds, { layers = "some" }) end,
    { "nc.measure_layers", "layers", "\"all\" or a non-empty array of module indices" } },
  { "regularized_loss: model a string", function() nc.regularized_loss("m", ds, 1e-3) end,
    { "nc.regularized_loss", "model", "nn.Sequential ending in an nn.Linear", "string" } },
  { "regularized_loss: lambda -1", function() nc.regularized_loss(model(), ds, -1) end,
    { "nc.regularized_loss", "lambda", "non-negative number", "-1" } },
  { "regularized_loss: empty dataset", function()
      nc.regularized_loss(model(), ds:subset({}), 1e-3) end, { "nc.regularized_loss", "empty" } },
  { "certify: lambda nil", function() nc.certify(model(), ds) end, { "nc.certify", "lambda", "non-negative number", "nil" } },
  { "certify: dataset a number", function() nc.certify(model(), 3, 1e-3) end, { "nc.certify", "dataset", "data.Dataset", "number" } },
  { "decompose: lambda 0", function() nc.decompose(model(), ds, 0) end, { "nc.decompose", "lambda", "positive number", "0" } },
  { "decompose: bn_mode x", function() nc.decompose(model(), ds, 1e-3, { bn_mode = "x" }) end,
    { "nc.decompose", "bn_mode", "'batch' or 'running'", "x" } },
  -- the theorem
  { "optimal_loss: lambda -1", function() nc.optimal_loss(-1, 10) end, { "nc.optimal_loss", "lambda", "positive number", "-1" } },
  { "optimal_loss: lambda NaN", function() nc.optimal_loss(0 / 0, 10) end, { "nc.optimal_loss", "lambda", "positive number" } },
  { "optimal_loss: 1 class", function() nc.optimal_loss(1e-3, 1) end, { "nc.optimal_loss", "classes", "integer >= 2", "1" } },
  { "optimal_loss: 2.5 classes", function() nc.optimal_loss(1e-3, 2.5) end, { "nc.optimal_loss", "classes", "integer >= 2", "2.5" } },
  { "bound: not a table", function() nc.bound(3) end, { "nc.bound", "{lambda =, classes =, loss =}", "number" } },
  { "bound: no lambda", bound{ lambda = false }, { "nc.bound", "lambda", "positive number" } },
  { "bound: lambda 0", bound{ lambda = 0 }, { "nc.bound", "lambda", "positive number", "0" } },
  { "bound: 1 class", bound{ classes = 1 }, { "nc.bound", "classes", "integer >= 2", "1" } },
  { "bound: loss NaN", bound{ loss = 0 / 0 }, { "nc.bound", "loss", "number" } },
  { "bound: loss below L*", bound{ loss = 0.001 }, { "bound", "loss 0.001", "below the optimal loss L*" } },
  { "bound: per_class 1", bound{ per_class = 1 }, { "nc.bound", "per_class", "integer >= 2", "1" } },
  { "bound: per_class 1.5", bound{ per_class = 1.5 }, { "nc.bound", "per_class", "integer >= 2", "1.5" } },
  { "bound: q 0", bound{ q = 0 }, { "nc.bound", "q", "(0, 1)", "0" } },
  { "bound: misspelt field", bound{ lamda = 1 }, { "nc.bound", "unknown field 'lamda'" } },
  -- streaming statistics
  { "stats: 1 class", function() nc.stats(1, 4) end, { "nc.stats", "classes", "integer >= 2", "1" } },
  { "stats: dim 0", function() nc.stats(3, 0) end, { "nc.stats", "dim", "positive integer", "0" } },
  { "stats: narrower features", function() nc.stats(3, 8):pass1(ds.x, ds.y) end,
    { "nc_stats_pass1", "features are [30 x 6]", "dim 8", "expected [30 x 8]" } },
  { "stats: pass 2 before end_pass1", function() local s = nc.stats(3, 6); s:pass1(ds.x, ds.y); s:pass2(ds.x, ds.y) end,
    { "nc_stats_pass2", "before end_pass1", "call nc_stats_end_pass1 first" } },
  { "stats: result before the passes", function() nc.stats(3, 6):result() end, { "nc_stats_result", "both passes" } },
  { "stats: merge of another shape", function() nc.stats(3, 6):merge(nc.stats(3, 5)) end,
    { "nc_stats_merge", "3 classes x dim 6", "3 classes x dim 5", "cannot be merged" } },
  { "stats: pass1 called with a dot", function() local s = nc.stats(3, 6); s.pass1(ds.x, ds.y) end,
    { "nc_stats.pass1", "call with ':'" } },
  { "load_stats: missing file", function() nc.load_stats("/nonexistent/x.ncstats") end,
    { "nc_stats_load", "cannot open '/nonexistent/x.ncstats'" } },
  { "load_stats: not a stats file", function() nc.load_stats(C.file("not a stats file at all")) end, { "nc_stats_load" } },
}

local valid = {
  { "measure: classes of exactly 2 samples", function()
      local x = collapse.tensor({ { 1, 0 }, { 2, 0 }, { 0, 1 }, { 0, 3 } }, "float64")
      assert(nc.measure(x, { 1, 1, 2, 2 }).intra_cos) end },
  { "measure: whole-number float labels", function()
      local y = ds.y:totable(); for i = 1, #y do y[i] = y[i] + 0.0 end; assert(nc.measure(ds.x, y)) end },
  { "certify: weight decay 0 (not applicable, metrics kept)", function()
      local c = nc.certify(model(), ds, 0); assert(c.bound.applicable == false and c.metrics.intra_cos) end },
  { "bound: a loss exactly L*", function()
      local l = nc.optimal_loss(1e-3, 10); assert(nc.bound{ lambda = 1e-3, classes = 10, loss = l }.guaranteed) end },
}

describe("bad input: collapse.nc rejects", function()
  teardown(C.cleanup)
  C.run(it, entries)
end)
describe("bad input: collapse.nc", function() C.valid(it, valid) end)
