--- collapse.nn: Torch-style modules over the tensor-level C kernels of csrc/nn, one module per
-- file in lua/collapse/nn/. Every class table is its own constructor (nn.Linear(3, 4)); the old
-- names nn.Linear_class, nn.BatchNorm_class, ... are aliases of the classes.
-- Adding a module: a file lua/collapse/nn/Name.lua returning its class, and a line below.
local nn = {}

nn.class = require("collapse.nn.class")
nn.Module = require("collapse.nn.Module")

local MODULES = { "Linear", "Sequential" }
for _, name in ipairs(MODULES) do nn[name] = require("collapse.nn." .. name) end
nn.Dropout = require("collapse.nn.Dropout")
nn.GlobalAvgPool2d = require("collapse.nn.GlobalAvgPool2d")
nn.Residual = require("collapse.nn.Residual")

require("collapse.nn.transitional")(nn)
for _, name in ipairs({ "Linear", "BatchNorm", "ReLU", "Tanh", "Identity", "Flatten", "Sequential",
  "CrossEntropyLoss" }) do
  nn[name .. "_class"] = nn[name]
end
require("collapse.conv")(nn)

return nn
