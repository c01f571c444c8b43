--- nn.Tanh(): y = tanh(x). Kernels: collapse_tanh_forward/backward.
local core = require("collapse.core")
local class = require("collapse.nn.class")
local Activation = require("collapse.nn.Activation")

local Tanh = class("nn.Tanh", Activation)
Tanh.forward_kernel, Tanh.backward_kernel = core.tanh_forward, core.tanh_backward

return Tanh
