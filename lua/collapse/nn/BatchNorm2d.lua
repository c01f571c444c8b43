--- nn.BatchNorm2d(channels, {eps = 1e-5, momentum = 0.1, affine = true, dtype =}): PyTorch's
-- BatchNorm2d on [N x C x H x W]: per-channel statistics over N, H, W. Everything but the kernels
-- (collapse_batchnorm2d_forward/backward) is nn.BatchNorm's, the fusion included. In training, followed
-- by a ReLU in a Sequential, the pair runs as ONE kernel each way in one buffer (fuse_with): the ReLU is applied
-- as the normalised output is written and its gradient masked as it is read, so neither the
-- BatchNorm's own output nor the ReLU's input gradient exists (two activation-sized buffers and
-- two passes over memory fewer per pair; the same values as the two modules in turn).
local core = require("collapse.core")
local class = require("collapse.nn.class")
local BatchNorm = require("collapse.nn.BatchNorm")

local BatchNorm2d = class("nn.BatchNorm2d", BatchNorm)
BatchNorm2d.size_field = "channels"
BatchNorm2d.input_ndim = 4
BatchNorm2d.forward_kernel, BatchNorm2d.backward_kernel = core.batchnorm2d_forward, core.batchnorm2d_backward

return BatchNorm2d
