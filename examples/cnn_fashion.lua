-- cnn_fashion: the paper's CNN experiment at the size of a 2-core machine. A narrow ResNet18
-- (the authors' CIFAR ResNet18, base width 4) and a narrow VGG11 (torchvision's vgg11_bn layout,
-- channels / 8, the torchvision 4096-4096 head / 8 with dropout 0.5) on a balanced Fashion-MNIST
-- subset (Debian's dataset-fashion-mnist; the 28 x 28 images zero-padded to 32 x 32 as the authors
-- padded MNIST, then standardised), with and without a BatchNorm1d right before the classifier,
-- at three weight decays; Adam (lr 1e-3, coupled weight decay) with the paper's x0.1 steps at
-- 25/50/75% of the epochs. After training: the collapse metrics of the classifier's input and of
-- the layers before it (nc.measure_layers, model in evaluate mode) on the training set.
--
--   scripts/lua examples/cnn_fashion.lua [--out DIR] [--quick] [--jobs N]
--
-- About 12 minutes on this machine (710 s, 1 BLAS thread, oneDNN convolutions; 444 s with --jobs 2,
-- the same results). It runs through collapse.sweep: stop it any time and rerun the same command
-- to continue. Writes DIR/<model>/ (the sweeps), DIR/table.md and DIR/report/ (cnn_collapse.png in
-- the paper's figure layout, cnn_layers.png: cosine by depth).
local collapse = require("collapse")
local core = require("collapse.core")
local fs = require("collapse.fs")
local models = collapse.models
local cnn_sweep = require("collapse.cnn_sweep")
local report_cnn = require("collapse.report_cnn")

-- --jobs N: the points of each sweep in N worker processes (collapse.sweep's jobs; one BLAS thread
-- each, the same results as a sequential run). A worker is this script with --model NAME --task I.
local out, quick, njobs, only, task = "cnn-fashion", false, 1, nil, nil
local i = 1
while arg and arg[i] do
  local a, v = arg[i], arg[i + 1]
  if a == "--out" then out = assert(v, "--out needs a directory"); i = i + 1
  elseif a == "--quick" then quick = true
  elseif a == "--jobs" then njobs = assert(math.tointeger(tonumber(v)), "--jobs needs a number"); i = i + 1
  elseif a == "--model" then only = v; i = i + 1
  elseif a == "--task" then task = assert(math.tointeger(tonumber(v)), "--task needs a number"); i = i + 1
  else error("cnn_fashion: unknown argument '" .. tostring(a) .. "' (--out DIR, --quick, --jobs N)", 0) end
  i = i + 1
end

local PER_CLASS = quick and 20 or 200       -- 2,000 training images
local EPOCHS = quick and 2 or 30
local WEIGHT_DECAYS = quick and { 1e-3 } or { 1e-4, 1e-3, 1e-2 }

-- The balanced subset as [N x 1 x 32 x 32] float32, zero-padded by 2, standardised.
local function dataset()
  local full = collapse.data.fashion_mnist{ split = "train", flatten = false }
  local sub = full:balanced(PER_CLASS, collapse.rng(1))
  local n = sub:size()
  local x = core.images_pad(sub.x:reshape({ n, 1, 28, 28 }), 2)
  local mean = x:mean()
  local centred = x - mean
  local std = math.sqrt(centred:dot(centred) / x:numel())
  core.images_normalize(x, { mean }, { std })
  return collapse.data.Dataset{ x = x, y = sub.y, classes = 10, name = ("fashion_mnist-%d"):format(n) }
end

local MODELS = {
  { name = "resnet18_w4", title = "ResNet18, width 4", build = function(cfg)
    return models.resnet18{ classes = cfg.classes, in_channels = 1, width = 4, last_bn = cfg.last_bn,
      rng = collapse.rng(cfg.seed) }
  end },
  { name = "vgg11_w8", title = "VGG11-BN, width 1/8", build = function(cfg)
    return models.vgg{ depth = 11, classes = cfg.classes, in_channels = 1, width = 1 / 8, last_bn = cfg.last_bn,
      classifier = "torchvision", dropout = 0.5, rng = collapse.rng(cfg.seed) }
  end },
}

-- The argv of the worker running point `index` of model `name`.
local function worker(name)
  return function(index)
    local argv = { require("collapse.jobs").interpreter(), arg[0], "--out", out, "--model", name, "--task",
      tostring(index) }
    if quick then argv[#argv + 1] = "--quick" end
    return argv
  end
end

local train = dataset()
if task then -- a worker: one point of one model's sweep, then exit
  for _, m in ipairs(MODELS) do
    if m.name == only then
      cnn_sweep.run{ name = m.name, out = out .. "/" .. m.name, train = train, build = m.build,
        weight_decays = WEIGHT_DECAYS, bn = { true, false }, seeds = { 1 }, epochs = EPOCHS, lr = 1e-3, task = task }
      os.exit(0)
    end
  end
  error("cnn_fashion: --task needs --model " .. table.concat({ MODELS[1].name, MODELS[2].name }, " | "), 0)
end
print(train)
local t0 = core.clock()
local panels, layer_panels, lines = {}, {}, {}
for k, l in ipairs(cnn_sweep.TABLE_HEADER) do lines[k] = l end
for _, m in ipairs(MODELS) do
  local rows = cnn_sweep.run{ name = m.name, out = out .. "/" .. m.name, train = train, build = m.build,
    weight_decays = WEIGHT_DECAYS, bn = { true, false }, seeds = { 1 }, epochs = EPOCHS, lr = 1e-3,
    jobs = njobs, worker = worker(m.name) }
  for _, l in ipairs(cnn_sweep.table(m.name, rows)) do lines[#lines + 1] = l end
  panels[#panels + 1] = { title = m.title, classes = 10, runs = rows }
  -- depth profile at the middle weight decay
  local wd = WEIGHT_DECAYS[(#WEIGHT_DECAYS + 1) // 2]
  local settings = {}
  for _, r in ipairs(rows) do
    if r.wd == wd and r.seed == 1 then settings[#settings + 1] = { bn = r.bn, layers = r.layers } end
  end
  layer_panels[#layer_panels + 1] = { title = ("%s, weight decay %g"):format(m.title, wd), classes = 10,
    settings = settings }
end
local text = table.concat(lines, "\n") .. "\n"
io.write("\n", text)
fs.write_atomic(out .. "/table.md", text)
for _, fig in ipairs({ { report_cnn.collapse_figure, "cnn_collapse", panels },
  { report_cnn.layers_figure, "cnn_layers", layer_panels } }) do
  local ok, msg = fig[1](out .. "/report", fig[2], fig[3])
  print(ok and ("wrote %s/report/%s.png"):format(out, fig[2]) or msg)
end
print(("%.0f s"):format(core.clock() - t0))
