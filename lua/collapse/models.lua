--- Model factories of the paper's experiments.
local nn = require("collapse.nn")

local models = {}

--- The authors' MLP: widths [input] + [width] x (depth - 1) + [classes]; each hidden block is
-- Linear(bias = false) then ReLU; with bn, one BatchNorm after the last ReLU; the classifier is
-- Linear(width, classes, bias = false).
function models.paper_mlp(opts)
  local input, classes = opts.input_dim, opts.classes
  local depth, width = opts.depth or 4, opts.width or 300
  if math.type(depth) ~= "integer" or depth < 2 then error("paper_mlp: depth must be an integer >= 2", 2) end
  local layers, prev = {}, input
  for _ = 1, depth - 1 do
    layers[#layers + 1] = nn.Linear(prev, width, { bias = false, rng = opts.rng, dtype = opts.dtype })
    layers[#layers + 1] = nn.ReLU()
    prev = width
  end
  if opts.batchnorm then layers[#layers + 1] = nn.BatchNorm(prev, { dtype = opts.dtype }) end
  layers[#layers + 1] = nn.Linear(prev, classes, { bias = false, rng = opts.rng, dtype = opts.dtype })
  return nn.Sequential(layers)
end

-- models.vgg and models.resnet18: collapse/cnn_models.lua
local cnn = require("collapse.cnn_models")
models.vgg, models.resnet18 = cnn.vgg, cnn.resnet18

return models
