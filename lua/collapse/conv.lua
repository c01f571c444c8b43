--- collapse.conv: convolutional modules on NCHW tensors over the C kernels of
-- csrc/nn/{conv2d,batchnorm2d,pool2d}, PyTorch 1.13 semantics.
--   require("collapse.conv")(nn)
-- adds nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d and nn.AvgPool2d (and nn.Conv2d_class, ... for
-- Sequential:find) to the collapse.nn table and returns it; a second call changes nothing.
-- The modules follow collapse.nn's conventions: forward(x), backward(x, grad_output
-- [, need_input_grad]) with output / gradient buffers reused between calls of the same shape,
-- parameters() (weight before bias, decay = true), buffers(), state() / load_state(), train(),
-- evaluate(), describe(), to(dtype).
-- This file must not require collapse.nn itself (collapse.nn calls it while it is loading).
local collapse = require("collapse")
local core = require("collapse.core")

return function(nn)
  if nn.Conv2d then return nn end
  local Module, buffer = nn.Module, nn.buffer

  local fail, positive_int, check_opts = nn.checks.fail, nn.checks.positive_int, nn.checks.check_opts

  local function shape_str(t) return "[" .. table.concat(t:shape(), " x ") .. "]" end

  local function class(name)
    local c = setmetatable({}, { __index = Module })
    c.__index = c
    c.__name = name
    c.__tostring = function(self) return self:describe() end
    return c
  end

  -- A 4-d input of this module's dtype (dtype == nil: any float dtype) with `channels` channels
  -- (nil: any), whose planes hold a k x k window after `padding`.
  local function check_input(self, x, fn, channels, k, padding)
    if not collapse.is_tensor(x) then fail(fn, "input must be a tensor, got %s", type(x)) end
    if x:dim() ~= 4 then
      fail(fn, "input must be 4-d [N x C x H x W], got %s for %s", shape_str(x), self:describe())
    end
    if channels and x:size(2) ~= channels then
      fail(fn, "size mismatch, input %s has %d channels, %s expects %d", shape_str(x), x:size(2), self:describe(),
        channels)
    end
    if self.dtype and x:dtype() ~= self.dtype then
      fail(fn, "input is %s but %s is %s (convert with x:to() or module:to())", x:dtype(), self:describe(), self.dtype)
    elseif not self.dtype and x:dtype() ~= "float32" and x:dtype() ~= "float64" then
      fail(fn, "input must be float32 or float64, got %s", x:dtype())
    end
    if k and (x:size(3) + 2 * padding < k or x:size(4) + 2 * padding < k) then
      fail(fn, "input %s is smaller than the %d x %d kernel of %s", shape_str(x), k, k, self:describe())
    end
  end

  -- Uniform(-bound, bound) initialisation as PyTorch's Conv2d default (bound = 1/sqrt(fan_in)).
  local function uniform(shape, bound, dtype, rng)
    return core.rand(shape, dtype, rng) * (2 * bound) - bound
  end

  -- Conv2d ------------------------------------------------------------------------------------
  local Conv2d = class("nn.Conv2d")
  nn.Conv2d_class = Conv2d

  --- nn.Conv2d(in_channels, out_channels, kernel_size, {stride = 1, padding = 0, bias = true,
  -- dtype =, rng =}): PyTorch's Conv2d (square kernel, zero padding, no dilation or groups) on
  -- [N x Cin x H x W]; weight is [Cout x Cin x k x k], initialised U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  -- like the bias, fan_in = Cin k k.
  function nn.Conv2d(cin, cout, k, opts)
    local fn = "Conv2d"
    positive_int(fn, "in_channels", cin)
    positive_int(fn, "out_channels", cout)
    positive_int(fn, "kernel_size", k)
    opts = check_opts(fn, opts, { stride = true, padding = true, bias = true, dtype = true, rng = true })
    local stride, padding = opts.stride or 1, opts.padding or 0
    positive_int(fn, "stride", stride)
    if math.type(padding) ~= "integer" or padding < 0 then
      fail(fn, "padding must be an integer >= 0, got %s", tostring(padding))
    end
    local dtype = opts.dtype or collapse.default_dtype()
    local rng = opts.rng or collapse.rng(0)
    local bound = 1 / math.sqrt(cin * k * k)
    local self = setmetatable({ in_channels = cin, out_channels = cout, kernel_size = k, stride = stride,
      padding = padding, dtype = dtype, training = true,
      _tensors = { "weight", "bias", "weight_grad", "bias_grad" } }, Conv2d)
    self.weight = uniform({ cout, cin, k, k }, bound, dtype, rng)
    self.weight_grad = core.zeros({ cout, cin, k, k }, dtype)
    if opts.bias == nil or opts.bias then
      self.bias = uniform({ cout }, bound, dtype, rng)
      self.bias_grad = core.zeros({ cout }, dtype)
    end
    return self
  end

  function Conv2d:describe()
    return ("nn.Conv2d(%d -> %d, %dx%d, stride=%d, padding=%d%s)"):format(self.in_channels, self.out_channels,
      self.kernel_size, self.kernel_size, self.stride, self.padding, self.bias and "" or ", no bias")
  end

  function Conv2d:parameters()
    local p = { { name = "weight", value = self.weight, grad = self.weight_grad, decay = true, module = self } }
    if self.bias then p[2] = { name = "bias", value = self.bias, grad = self.bias_grad, decay = true, module = self } end
    return p
  end

  -- Output shape and the im2col scratch buffer (nil for a 1x1 kernel with stride 1, padding 0).
  local function conv_buffers(self, x)
    local out_shape, ncol = core.conv2d_shape(x, self.weight, self.stride, self.padding)
    if ncol > 0 then self.columns = buffer(self.columns, { ncol }, self.dtype) else self.columns = nil end
    return out_shape
  end

  function Conv2d:forward(x)
    check_input(self, x, "Conv2d.forward", self.in_channels, self.kernel_size, self.padding)
    self.output = buffer(self.output, conv_buffers(self, x), self.dtype)
    core.conv2d_forward(x, self.weight, self.bias, self.output, self.columns, self.stride, self.padding)
    return self.output
  end

  function Conv2d:backward(x, gy, need_input_grad)
    check_input(self, x, "Conv2d.backward", self.in_channels, self.kernel_size, self.padding)
    conv_buffers(self, x)
    if need_input_grad ~= false then self.grad_input = buffer(self.grad_input, x:shape(), self.dtype) end
    core.conv2d_backward(x, self.weight, gy, need_input_grad ~= false and self.grad_input or nil, self.weight_grad,
      self.bias_grad, self.columns, self.stride, self.padding)
    return self.grad_input
  end

  -- BatchNorm2d ---------------------------------------------------------------------------------
  local BatchNorm2d = class("nn.BatchNorm2d")
  nn.BatchNorm2d_class = BatchNorm2d

  --- nn.BatchNorm2d(channels, {eps = 1e-5, momentum = 0.1, affine = true, dtype =}): PyTorch's
  -- BatchNorm2d on [N x C x H x W]: per-channel statistics over N, H, W; the biased variance
  -- normalises, the unbiased one enters running_var.
  function nn.BatchNorm2d(channels, opts)
    return nn.batchnorm_new("BatchNorm2d", BatchNorm2d, "channels", channels, opts)
  end

  function BatchNorm2d:describe()
    return ("nn.BatchNorm2d(%d, eps=%g, momentum=%g%s)"):format(self.channels, self.eps, self.momentum,
      self.affine and "" or ", affine=false")
  end

  -- the same affine parameters and running statistics as nn.BatchNorm
  BatchNorm2d.parameters = nn.BatchNorm_class.parameters
  BatchNorm2d.buffers = nn.BatchNorm_class.buffers

  function BatchNorm2d:forward(x)
    check_input(self, x, "BatchNorm2d.forward", self.channels)
    self.output = buffer(self.output, x:shape(), self.dtype)
    self.save_mean = buffer(self.save_mean, { self.channels }, self.dtype)
    self.save_invstd = buffer(self.save_invstd, { self.channels }, self.dtype)
    if self.training then
      if x:size(1) * x:size(3) * x:size(4) < 2 then
        fail("BatchNorm2d.forward", "training needs at least 2 values per channel (N H W), got input %s", shape_str(x))
      end
      self.num_batches_tracked = self.num_batches_tracked + 1
    end
    core.batchnorm2d_forward(x, self.output, self.weight, self.bias, self.running_mean, self.running_var,
      self.training, self.momentum, self.eps, self.save_mean, self.save_invstd)
    return self.output
  end

  function BatchNorm2d:backward(x, gy, need_input_grad)
    check_input(self, x, "BatchNorm2d.backward", self.channels)
    if need_input_grad ~= false then self.grad_input = buffer(self.grad_input, x:shape(), self.dtype) end
    core.batchnorm2d_backward(x, gy, need_input_grad ~= false and self.grad_input or nil, self.weight,
      self.save_mean, self.save_invstd, self.weight_grad, self.bias_grad, self.training,
      self.running_mean, self.running_var, self.eps)
    return self.grad_input
  end

  -- Pooling ---------------------------------------------------------------------------------------
  -- Square kernel k, stride (default k), no padding, floor mode; any float dtype (buffers follow x).
  local function pool_class(name, fwd, bwd, with_indices)
    local C = class("nn." .. name)
    nn[name .. "_class"] = C
    nn[name] = function(k, stride)
      positive_int(name, "kernel_size", k)
      if stride ~= nil then positive_int(name, "stride", stride) end
      return setmetatable({ kernel_size = k, stride = stride or k, training = true }, C)
    end
    function C:describe() return ("nn.%s(%d, stride=%d)"):format(name, self.kernel_size, self.stride) end
    function C:forward(x)
      check_input(self, x, name .. ".forward", nil, self.kernel_size, 0)
      local shape = core.pool2d_shape(x, self.kernel_size, self.stride)
      self.output = buffer(self.output, shape, x:dtype())
      if with_indices then
        self.indices = buffer(self.indices, shape, "int32")
        fwd(x, self.output, self.indices, self.kernel_size, self.stride)
        self._input = x
      else
        fwd(x, self.output, self.kernel_size, self.stride)
      end
      return self.output
    end
    function C:backward(x, gy)
      check_input(self, x, name .. ".backward", nil, self.kernel_size, 0)
      self.grad_input = buffer(self.grad_input, x:shape(), x:dtype())
      if with_indices then
        if self._input ~= x then self:forward(x) end -- the indices must come from this input
        bwd(gy, self.indices, self.grad_input, self.kernel_size, self.stride)
      else
        bwd(gy, self.grad_input, self.kernel_size, self.stride)
      end
      return self.grad_input
    end
    return C
  end

  --- nn.MaxPool2d(k, stride = k): window maxima; the gradient goes to the first maximum of each
  -- window (PyTorch's tie rule), recorded by the forward in an int32 `indices` buffer.
  pool_class("MaxPool2d", core.maxpool2d_forward, core.maxpool2d_backward, true)
  --- nn.AvgPool2d(k, stride = k): window means (divisor k^2).
  pool_class("AvgPool2d", core.avgpool2d_forward, core.avgpool2d_backward, false)

  return nn
end
