--- collapse.nn: Torch-style modules over the tensor-level C kernels of csrc/nn, one module per
-- file in lua/collapse/nn/. Every class table is its own constructor (nn.Linear(3, 4)); the old
-- names nn.Linear_class, nn.BatchNorm_class, ... are aliases of the classes.
-- Adding a module: a file lua/collapse/nn/Name.lua returning its class, and its name below.
local nn = {}

nn.class = require("collapse.nn.class")
nn.Module = require("collapse.nn.Module")

local MODULES = { "Linear", "BatchNorm", "ReLU", "Tanh", "Identity", "Flatten", "Sequential", "CrossEntropyLoss",
  "Conv2d", "BatchNorm2d", "MaxPool2d", "AvgPool2d" }
for _, name in ipairs(MODULES) do
  local cls = require("collapse.nn." .. name)
  nn[name] = cls
  nn[name .. "_class"] = cls -- the older alias, kept for code that used it
end

return nn
