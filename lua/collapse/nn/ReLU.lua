--- nn.ReLU(): y = max(x, 0) (NaN propagates, as PyTorch). Kernels: collapse_relu_forward/backward.
local core = require("collapse.core")
local class = require("collapse.nn.class")
local Activation = require("collapse.nn.Activation")

local ReLU = class("nn.ReLU", Activation)
ReLU.forward_kernel, ReLU.backward_kernel = core.relu_forward, core.relu_backward

return ReLU
