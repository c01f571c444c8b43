--- The base of nn.MaxPool2d and nn.AvgPool2d: square window kernel_size, stride (default the
-- window), no padding, floor mode, on [N x C x H x W] of any float dtype (outputs follow x).
local checks = require("collapse.checks")
local class = require("collapse.nn.class")
local Module = require("collapse.nn.Module")

local Pool2d = class("nn.Pool2d", Module)

function Pool2d:init(k, stride)
  checks.positive_int(self.__short, "kernel_size", k)
  if stride ~= nil then checks.positive_int(self.__short, "stride", stride) end
  self.kernel_size, self.stride = k, stride or k
end

function Pool2d:describe() return ("%s(%d, stride=%d)"):format(self.__name, self.kernel_size, self.stride) end

return Pool2d
