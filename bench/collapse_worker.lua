-- One benchmark process for collapse:
--   scripts/lua bench/collapse_worker.lua WORKLOAD DIR WARMUP TIMED THREADS [LOOP]
-- WORKLOAD: conic | fashion | metrics | cnn | resnet (bench/torch_cnn.py describes the last two).
-- Runs WARMUP untimed then TIMED timed repetitions (epochs, nc.measure calls, 8 CNN steps or one
-- ResNet18 step) and prints one JSON line: times, the OpenBLAS core, threads, VmHWM.
-- LOOP: "readme" (default), the README's training loop exactly; "no_input_grad", the same loop
-- with need_input_grad = false passed to backward (the first layer's input gradient skipped).
local collapse = require("collapse")
local nn, optim, data, nc, json = collapse.nn, collapse.optim, collapse.data, collapse.nc, collapse.json
local core = collapse.core

local workload, dir = arg[1], arg[2]
local warmup, timed, threads = tonumber(arg[3]), tonumber(arg[4]), math.tointeger(tonumber(arg[5]))
local loop = arg[6] or "readme"
assert(loop == "readme" or loop == "no_input_grad", "LOOP must be readme or no_input_grad, got " .. loop)
collapse.set_num_threads(threads)

-- One epoch of the README's training loop; need_input_grad is nil (the default) for "readme".
local need_input_grad = loop == "no_input_grad" and false or nil
local function epoch(model, crit, opt, ds, rng)
  local loss_sum, seen = 0, 0
  for x, y in ds:batches{ batch_size = 128, shuffle = true, rng = rng } do
    local loss = crit:forward(model:forward(x), y)
    model:backward(x, crit.grad, need_input_grad)
    opt:step()
    opt:zero_grad()
    loss_sum, seen = loss_sum + loss * x:size(1), seen + x:size(1)
  end
  return loss_sum / seen
end

local run, check = nil, {}
if workload == "conic" then
  local ds = data.Dataset{ x = data.npy(dir .. "/conic_x.npy"), y = data.npy(dir .. "/conic_y.npy"), classes = 4 }
  local g = collapse.rng(1)
  local layers, prev = {}, 16
  for _ = 1, 5 do
    layers[#layers + 1] = nn.Linear(prev, 300, { bias = false, rng = g })
    layers[#layers + 1] = nn.ReLU()
    prev = 300
  end
  layers[#layers + 1] = nn.BatchNorm(300)
  layers[#layers + 1] = nn.Linear(300, 4, { bias = false, rng = g })
  local model = nn.Sequential(layers)
  local opt = optim.Adam(model:parameters(), { lr = 1e-3, weight_decay = 5e-4 })
  local crit, rng = nn.CrossEntropyLoss(), collapse.rng(2)
  run = function() check.loss = epoch(model, crit, opt, ds, rng) end
elseif workload == "fashion" then
  local ds = data.fashion_mnist{ split = "train", limit = 20000 }
  local g = collapse.rng(1)
  local layers, prev = {}, 784
  for _ = 1, 3 do
    layers[#layers + 1] = nn.Linear(prev, 512, { rng = g })
    layers[#layers + 1] = nn.BatchNorm(512)
    layers[#layers + 1] = nn.ReLU()
    prev = 512
  end
  layers[#layers + 1] = nn.Linear(512, 10, { rng = g })
  local model = nn.Sequential(layers)
  local opt = optim.SGD(model:parameters(), { lr = 0.01, momentum = 0.9, weight_decay = 5e-4 })
  local crit, rng = nn.CrossEntropyLoss(), collapse.rng(2)
  run = function() check.loss = epoch(model, crit, opt, ds, rng) end
elseif workload == "metrics" then
  local h, y = data.npy(dir .. "/nc_h.npy"), data.npy(dir .. "/nc_y.npy")
  local W, b = data.npy(dir .. "/nc_w.npy"), data.npy(dir .. "/nc_b.npy")
  run = function()
    local m = nc.measure(h, y, { classifier = W, bias = b, classes = 10 })
    for _, k in ipairs({ "nc1", "intra_cos", "inter_cos", "cdnv", "etf_error", "self_duality", "accuracy",
      "ncc_agreement", "loss", "feature_norm", "variability", "equinorm", "equiangular" }) do
      check[k] = m[k]
    end
  end
elseif workload == "cnn" or workload == "resnet" then
  -- issue 9: the same models, inputs, optimiser and steps as bench/torch_cnn.py (cnn: 8 SGD steps
  -- over the 8 batches of cnn_x.npy in order; resnet: one step on the first 128 images); the
  -- first layer's input gradient is skipped, as autograd does for an input without grad
  local x, y = data.npy(dir .. "/cnn_x.npy"), data.npy(dir .. "/cnn_y.npy")
  local g, model = collapse.rng(1), nil
  if workload == "cnn" then
    local layers, cin = {}, 3
    for _, c in ipairs({ 32, 64, 128 }) do
      for _, mod in ipairs({ nn.Conv2d(cin, c, 3, { padding = 1, rng = g }), nn.BatchNorm2d(c), nn.ReLU(),
        nn.MaxPool2d(2, 2) }) do layers[#layers + 1] = mod end
      cin = c
    end
    layers[#layers + 1] = nn.Flatten()
    layers[#layers + 1] = nn.Linear(128 * 4 * 4, 10, { rng = g })
    model = nn.Sequential(layers)
  else
    model = collapse.models.resnet18{ classes = 10, width = 16, last_bn = true, rng = g }
  end
  local opt = optim.SGD(model:parameters(), { lr = 0.01, momentum = 0.9, weight_decay = 5e-4 })
  local crit = nn.CrossEntropyLoss()
  local steps = workload == "cnn" and 8 or 1
  local xs, ys = {}, {}
  for k = 1, steps do -- the batches in order, as views (no copy per step)
    xs[k], ys[k] = x:narrow(1, (k - 1) * 128 + 1, 128), y:narrow(1, (k - 1) * 128 + 1, 128)
  end
  run = function()
    local loss_sum = 0
    for k = 1, steps do
      loss_sum = loss_sum + crit:forward(model:forward(xs[k]), ys[k])
      model:backward(xs[k], crit.grad, false)
      opt:step{ zero_grad = true }
    end
    check.loss = loss_sum / steps
  end
else
  error("unknown workload " .. tostring(workload))
end

for _ = 1, warmup do run() end
local times = {}
for i = 1, timed do
  local t0 = core.clock()
  run()
  times[i] = core.clock() - t0
end
local info = collapse.blas_info()
print(json.encode({ contender = loop == "readme" and "collapse" or "collapse_nig", loop = loop, workload = workload,
  blas_selected_by = info.selected_by, times = times, blas_core = info.core,
  threads = collapse.get_num_threads(), vmhwm_kb = core.peak_rss_kb(), check = check }))
