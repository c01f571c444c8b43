-- paper_cnn: the authors' CNN grids (Pan & Cao, arXiv 2309.04644) for users who have the data and
-- the machine: VGG11 / VGG19 (torchvision's vgg*_bn with the 4096-4096 dropout head) on CIFAR-10 /
-- CIFAR-100, and ResNet18 (the CIFAR ResNet18, BatchNorm1d(512) before the classifier when BN is
-- on) and VGG on ImageNet32 (the first 100,000 training images). Adam, lr 1e-4, coupled weight
-- decay on every parameter, x0.1 at 25/50/75% of 300 epochs, batch 128, no augmentation; the seven
-- weight decays of the paper, BN on and off, several seeds; measured on the training set after
-- training (model in evaluate mode): the classifier's input and every stage before it. Resumable
-- (collapse.sweep): stop and rerun the same command.
--
--   scripts/lua examples/paper_cnn.lua --data cifar10 --dir ~/data/cifar-10-batches-bin --model vgg11
--   scripts/lua examples/paper_cnn.lua --data imagenet32 --dir ~/data/imagenet32 --model resnet18 --seeds 3
--
-- Options: --data cifar10 | cifar100 | imagenet32, --dir PATH (the data set's folder), --model
-- vgg11 | vgg19 | resnet18, --bn last | conv (what "BN off" removes: the BatchNorm1d before the
-- classifier, the default; or, as in the authors' VGG runs, the convolutional BNs), --seeds N (3),
-- --epochs N (300), --lr X (1e-4), --width X (model width: 64 for ResNet18, 1 for VGG),
-- --threads N (BLAS threads, 1), --out DIR (paper-<data>-<model>).
-- A full grid is 7 x 2 x seeds runs of 300 epochs: days on a workstation's CPU.
local collapse = require("collapse")
local models = collapse.models
local cnn_sweep = require("collapse.cnn_sweep")
local report_cnn = require("collapse.report_cnn")
local fs = require("collapse.fs")

local function usage(msg) error("paper_cnn: " .. msg .. " (see the comment at the top of examples/paper_cnn.lua)", 0) end

local o = { data = nil, dir = nil, model = "vgg11", bn = "last", seeds = 3, epochs = 300, lr = 1e-4, threads = 1 }
local NUMERIC = { seeds = math.tointeger, epochs = math.tointeger, threads = math.tointeger, lr = tonumber,
  width = tonumber }
local i = 1
while arg and arg[i] do
  local key = arg[i]:match("^%-%-([%w_]+)$")
  local v = arg[i + 1]
  if not key or v == nil then usage("expected --option value pairs, got '" .. tostring(arg[i]) .. "'") end
  if NUMERIC[key] then
    v = NUMERIC[key](tonumber(v) or v)
    if not v then usage("--" .. key .. " needs a number") end
  elseif o[key] == nil and key ~= "data" and key ~= "dir" and key ~= "out" then
    usage("unknown option --" .. key)
  end
  o[key] = v
  i = i + 2
end

-- The data sets, standardised per channel with the usual statistics of each training set.
local LOADERS = {
  cifar10 = function(dir)
    return collapse.data.cifar10{ dir = dir, split = "train",
      normalize = { mean = { 0.4914, 0.4822, 0.4465 }, std = { 0.2470, 0.2435, 0.2616 } } }
  end,
  cifar100 = function(dir)
    return collapse.data.cifar100{ dir = dir, split = "train",
      normalize = { mean = { 0.5071, 0.4865, 0.4409 }, std = { 0.2673, 0.2564, 0.2762 } } }
  end,
  imagenet32 = function(dir)
    return collapse.data.imagenet32{ dir = dir, split = "train", limit = 100000,
      normalize = { mean = { 0.4811, 0.4575, 0.4078 }, std = { 0.2605, 0.2533, 0.2683 } } }
  end,
}
if not LOADERS[o.data] then usage("--data must be cifar10, cifar100 or imagenet32") end
if not o.dir then usage("--dir is required (the folder of the data set's files)") end
if o.bn ~= "last" and o.bn ~= "conv" then usage("--bn must be last or conv") end

local BUILDERS = {
  vgg11 = 11, vgg19 = 19,
}
local function build(cfg)
  local rng = collapse.rng(cfg.seed)
  if o.model == "resnet18" then
    return models.resnet18{ classes = cfg.classes, width = math.tointeger(o.width or 64), last_bn = cfg.last_bn,
      rng = rng }
  end
  local conv_bn = o.bn == "last" or cfg.last_bn -- with --bn conv, "BN off" also removes the conv BNs
  return models.vgg{ depth = BUILDERS[o.model], classes = cfg.classes, width = o.width or 1, classifier = "torchvision",
    dropout = 0.5, batchnorm = conv_bn, last_bn = o.bn == "last" and cfg.last_bn, rng = rng }
end
if o.model ~= "resnet18" and not BUILDERS[o.model] then usage("--model must be vgg11, vgg19 or resnet18") end

local out = o.out or ("paper-%s-%s"):format(o.data, o.model)
local train = LOADERS[o.data](o.dir)
print(train)
local seeds = {}
for s = 1, o.seeds do seeds[s] = s end
local rows = cnn_sweep.run{ name = o.model, out = out, train = train, build = build,
  weight_decays = { 1e-4, 3e-4, 5e-4, 1e-3, 3e-3, 5e-3, 1e-2 }, bn = { true, false }, seeds = seeds,
  epochs = o.epochs, lr = o.lr, threads = o.threads }
local lines = {}
for k, l in ipairs(cnn_sweep.TABLE_HEADER) do lines[k] = l end
for _, l in ipairs(cnn_sweep.table(o.model, rows)) do lines[#lines + 1] = l end
local text = table.concat(lines, "\n") .. "\n"
io.write(text)
fs.write_atomic(out .. "/table.md", text)
local title = ("%s on %s"):format(o.model, o.data)
local ok, msg = report_cnn.collapse_figure(out .. "/report", "cnn_collapse",
  { { title = title, classes = train.classes, runs = rows } })
print(ok and ("wrote %s/report/cnn_collapse.png"):format(out) or msg)
local settings = {}
for _, r in ipairs(rows) do
  if r.wd == 5e-4 and r.seed == 1 then settings[#settings + 1] = { bn = r.bn, layers = r.layers } end
end
ok, msg = report_cnn.layers_figure(out .. "/report", "cnn_layers",
  { { title = title .. ", weight decay 5e-4", classes = train.classes, settings = settings } })
print(ok and ("wrote %s/report/cnn_layers.png"):format(out) or msg)
