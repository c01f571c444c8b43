--- nn.BatchNorm2d(channels, {eps = 1e-5, momentum = 0.1, affine = true, dtype =}): PyTorch's
-- BatchNorm2d on [N x C x H x W]: per-channel statistics over N, H, W. Everything but the kernels
-- (collapse_batchnorm2d_forward/backward) is nn.BatchNorm's.
local core = require("collapse.core")
local class = require("collapse.nn.class")
local BatchNorm = require("collapse.nn.BatchNorm")

local BatchNorm2d = class("nn.BatchNorm2d", BatchNorm)
BatchNorm2d.size_field = "channels"
BatchNorm2d.forward_kernel, BatchNorm2d.backward_kernel = core.batchnorm2d_forward, core.batchnorm2d_backward

return BatchNorm2d
