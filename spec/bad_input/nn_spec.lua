-- Bad inputs to collapse.nn (every module's constructor, forward, backward, load_state, to, the
-- freeze API) and collapse.models.paper_mlp. Each error names the function, the argument and what
-- was expected (spec/support/catalogue.lua); valid edge cases follow.
local collapse = require("collapse")
local models = require("collapse.models")
local C = require("support.catalogue")
local nn = collapse.nn

local function X(n, f) return collapse.randn({ n, f }, { dtype = "float64", rng = collapse.rng(1) }) end
local function lin() return nn.Linear(3, 2, { dtype = "float64" }) end
local function img(...) return collapse.zeros({ ... }, "float64") end

local entries = {
  -- Linear
  { "Linear: in_features 0", function() nn.Linear(0, 3) end, { "Linear", "in_features", "positive integer, got 0" } },
  { "Linear: out_features a string", function() nn.Linear(3, "4") end, { "Linear", "out_features", "positive integer, got '4'" } },
  { "Linear: misspelt option", function() nn.Linear(3, 4, { bais = true }) end, { "Linear", "unknown option 'bais'" } },
  { "Linear: int32 dtype", function() nn.Linear(3, 4, { dtype = "int32" }) end, { "Linear", "dtype", "'float32' or 'float64'", "'int32'" } },
  { "Linear: rng a number", function() nn.Linear(3, 4, { rng = 5 }) end, { "Linear", "rng", "generator (collapse.rng(seed))" } },
  { "Linear.forward: a table", function() lin():forward({ 1, 2, 3 }) end, { "linear_forward", "input", "tensor, got table" } },
  { "Linear.forward: int32 input", function() lin():forward(collapse.zeros({ 4, 3 }, "int32")) end, { "linear_forward", "input", "int32, expected float64" } },
  { "Linear.forward: wrong width", function() lin():forward(X(2, 5)) end, { "linear_forward", "input [2 x 5]", "expected [n x 3]" } },
  { "Linear.forward: '.'-call", function() local l = lin(); l.forward(X(2, 3)) end, { "Linear.forward", "call with ':'" } },
  { "Linear.backward: grad_output shape", function() local l = lin(); l:forward(X(4, 3)); l:backward(X(4, 3), X(4, 3)) end,
    { "linear_backward", "grad_output [4 x 3]", "expected [4 x 2]" } },
  { "Linear.backward: '.'-call", function() local l = lin(); l.backward(X(4, 3), X(4, 2)) end, { "Linear.backward", "call with ':'" } },
  -- Identity
  { "Identity.forward: nil", function() nn.Identity():forward(nil) end, { "Identity:forward", "input", "tensor, got nil" } },
  { "Identity.backward: a number", function() nn.Identity():backward(X(2, 3), 5) end,
    { "Identity:backward", "grad_output", "tensor, got number" } },
  -- BatchNorm / BatchNorm2d
  { "BatchNorm: 0 features", function() nn.BatchNorm(0) end, { "BatchNorm", "features", "positive integer, got 0" } },
  { "BatchNorm: eps 0", function() nn.BatchNorm(3, { eps = 0 }) end, { "BatchNorm", "eps must be > 0", "got 0" } },
  { "BatchNorm: momentum 2", function() nn.BatchNorm(3, { momentum = 2 }) end, { "BatchNorm", "momentum", "[0, 1]", "got 2" } },
  { "BatchNorm: options a string", function() nn.BatchNorm(3, "x") end, { "BatchNorm", "options must be a table", "string" } },
  { "BatchNorm: affine 'yes'", function() nn.BatchNorm(3, { affine = "yes" }) end, { "BatchNorm", "affine", "true, false or 'fixed_gamma'" } },
  { "BatchNorm: gamma without fixed_gamma", function() nn.BatchNorm(3, { gamma = 2 }) end, { "BatchNorm", "gamma", "affine = 'fixed_gamma'" } },
  { "BatchNorm: fixed gamma NaN", function() nn.BatchNorm(3, { affine = "fixed_gamma", gamma = 0 / 0 }) end,
    { "BatchNorm.fix_gamma", "gamma", "finite number" } },
  { "BatchNorm.forward: a batch of 1 in training", function() nn.BatchNorm(3, { dtype = "float64" }):forward(X(1, 3)) end,
    { "batchnorm", "at least 2 samples", "got 1" } },
  { "BatchNorm.forward: wrong feature count", function() nn.BatchNorm(4, { dtype = "float64" }):forward(X(4, 3)) end,
    { "batchnorm_forward", "weight [4]", "expected [3]" } },
  { "BatchNorm.backward before forward", function() nn.BatchNorm(3, { dtype = "float64" }):backward(X(4, 3), X(4, 3)) end,
    { "BatchNorm.backward", "call forward first" } },
  { "BatchNorm.forward: '.'-call", function() local b = nn.BatchNorm(3); b.forward(X(4, 3)) end, { "BatchNorm.forward", "call with ':'" } },
  { "BatchNorm2d.forward: a matrix", function() nn.BatchNorm2d(2):forward(collapse.zeros({ 2, 2 })) end,
    { "batchnorm2d_forward", "input [2 x 2]", "expected [n x * x * x *]" } },
  -- the fused BatchNorm + ReLU pair of a training Sequential refuses the rank its BatchNorm refuses
  { "BatchNorm + ReLU fused: a 4-d input", function()
      nn.Sequential{ nn.BatchNorm(3, { dtype = "float64" }), nn.ReLU() }:forward(collapse.zeros({ 2, 3, 4, 4 }, "float64"))
    end, { "batchnorm_forward", "input [2 x 3 x 4 x 4]", "expected [n x *]" } },
  { "BatchNorm2d + ReLU fused: a matrix", function()
      nn.Sequential{ nn.BatchNorm2d(3, { dtype = "float64" }), nn.ReLU() }:forward(X(4, 3))
    end, { "batchnorm2d_forward", "input [4 x 3]", "expected [n x * x * x *]" } },
  -- activations, Flatten, Identity
  { "ReLU.forward: a number", function() nn.ReLU():forward(5) end, { "relu_forward", "input", "tensor, got number" } },
  { "ReLU.backward before forward", function() nn.ReLU():backward(X(2, 2), X(2, 2)) end, { "ReLU.backward", "call forward first" } },
  { "Tanh.backward before forward", function() nn.Tanh():backward(X(2, 2), X(2, 2)) end, { "Tanh.backward", "call forward first" } },
  { "ReLU(true): an argument", function() nn.ReLU(true) end, { "ReLU", "takes no arguments", "got 1" } },
  { "Flatten(2): an argument", function() nn.Flatten(2) end, { "Flatten", "takes no arguments", "got 1 (2)" } },
  { "Flatten.forward: a table", function() nn.Flatten():forward({}) end, { "Flatten.forward", "input", "tensor, got table" } },
  -- Conv2d, pooling
  { "Conv2d: 0 input channels", function() nn.Conv2d(0, 2, 3) end, { "Conv2d", "in_channels", "positive integer, got 0" } },
  { "Conv2d: stride 0", function() nn.Conv2d(1, 2, 3, { stride = 0 }) end, { "Conv2d", "stride", "positive integer, got 0" } },
  { "Conv2d: padding -1", function() nn.Conv2d(1, 2, 3, { padding = -1 }) end, { "Conv2d", "padding", "integer >= 0, got -1" } },
  { "Conv2d.forward: 3-d input", function() nn.Conv2d(1, 2, 3):forward(collapse.zeros({ 1, 4, 4 })) end,
    { "conv2d_forward", "input [1 x 4 x 4]", "expected [n x * x * x *]" } },
  { "Conv2d.forward: kernel larger than the input", function() nn.Conv2d(1, 2, 5):forward(collapse.zeros({ 1, 1, 3, 3 })) end,
    { "conv2d", "kernel 5 x 5", "larger than the padded input 3 x 3" } },
  { "MaxPool2d: kernel 0", function() nn.MaxPool2d(0) end, { "MaxPool2d", "kernel_size", "positive integer, got 0" } },
  { "AvgPool2d: stride a table", function() nn.AvgPool2d(2, { stride = 2 }) end, { "AvgPool2d", "stride", "positive integer, got a table" } },
  { "MaxPool2d.forward: a matrix", function() nn.MaxPool2d(2):forward(collapse.zeros({ 4, 4 })) end,
    { "maxpool2d_forward", "input [4 x 4]", "expected [n x * x * x *]" } },
  -- Sequential
  { "Sequential: a string", function() nn.Sequential("x") end, { "Sequential", "table of modules", "string" } },
  { "Sequential: a number entry", function() nn.Sequential{ 1 } end, { "Sequential", "entry 1 is not a module", "number" } },
  { "Sequential.forward: wrong width", function() nn.Sequential{ lin() }:forward(X(2, 5)) end,
    { "Sequential: module 1 (nn.Linear(3 -> 2)) failed in forward", "linear_forward", "expected [n x 3]" } },
  { "Sequential.backward: wrong gradient", function() local s = nn.Sequential{ lin() }; s:forward(X(4, 3)); s:backward(X(4, 3), X(4, 3)) end,
    { "module 1 (nn.Linear(3 -> 2)) failed in backward", "grad_output [4 x 3]", "expected [4 x 2]" } },
  { "Sequential.backward: '.'-call", function() local s = nn.Sequential{ nn.ReLU() }; s.backward(X(2, 2), X(2, 2)) end,
    { "Sequential.backward", "call with ':'" } },
  { "classifier: last module not Linear", function() nn.Sequential{ nn.ReLU() }:classifier() end,
    { "classifier", "nn.ReLU()", "not an nn.Linear" } },
  -- CrossEntropyLoss
  { "CrossEntropyLoss: options", function() nn.CrossEntropyLoss({ reduction = "sum" }) end, { "CrossEntropyLoss", "takes no arguments" } },
  { "CrossEntropyLoss.forward: label 4 of 3 classes", function() nn.CrossEntropyLoss():forward(X(2, 3), { 1, 4 }) end,
    { "CrossEntropyLoss.forward", "label 4 at index 2", "outside 1..3" } },
  { "CrossEntropyLoss.forward: label 1.5", function() nn.CrossEntropyLoss():forward(X(2, 3), { 1, 1.5 }) end,
    { "CrossEntropyLoss.forward", "label 1.5 at index 2", "not an integer" } },
  { "CrossEntropyLoss.forward: label count", function() nn.CrossEntropyLoss():forward(X(2, 3), { 1 }) end,
    { "cross_entropy", "labels [1]", "expected [2]" } },
  { "CrossEntropyLoss.forward: labels a string", function() nn.CrossEntropyLoss():forward(X(2, 3), "x") end,
    { "CrossEntropyLoss.forward", "labels", "int32 tensor or a list of integer labels", "got string" } },
  { "CrossEntropyLoss.forward: int32 label out of range", function()
      nn.CrossEntropyLoss():forward(X(2, 3), collapse.tensor({ 1, 9 }, "int32"))
    end, { "cross_entropy", "label 9 at position 1", "outside 1..3" } },
  { "CrossEntropyLoss.backward before forward", function() nn.CrossEntropyLoss():backward() end,
    { "CrossEntropyLoss.backward", "call forward first" } },
  -- load_state, to, freeze
  { "load_state: a number", function() lin():load_state(5) end, { "load_state", "table of tensors expected", "number" } },
  { "load_state: missing weight", function() lin():load_state({}) end, { "load_state", "missing entry 'weight'" } },
  { "load_state: wrong shape", function() lin():load_state({ weight = X(2, 2), bias = collapse.zeros({ 2 }, "float64") }) end,
    { "load_state", "entry 'weight' has shape [2 x 2]", "expected [2 x 3]" } },
  { "load_state: not a tensor", function() lin():load_state({ weight = 5, bias = collapse.zeros({ 2 }, "float64") }) end,
    { "load_state", "entry 'weight' must be a tensor of shape [2 x 3]", "number" } },
  { "Linear.to: int32", function() lin():to("int32") end, { "Linear.to", "dtype", "'float32' or 'float64'" } },
  { "Sequential.to: nil", function() nn.Sequential{ nn.ReLU() }:to(nil) end, { "Sequential.to", "dtype", "got nil" } },
  { "freeze: no such parameter", function() lin():freeze("gamma") end, { "Linear.freeze", "name", "(weight, bias)", "'gamma'" } },
  { "fix_gamma: affine = false", function() nn.BatchNorm(3, { affine = false }):fix_gamma(1) end,
    { "BatchNorm.fix_gamma", "affine = false", "no weight" } },
  -- models.paper_mlp
  { "paper_mlp: depth 1", function() models.paper_mlp{ input_dim = 3, classes = 2, depth = 1 } end,
    { "paper_mlp", "depth", "integer >= 2" } },
  { "paper_mlp: width 0", function() models.paper_mlp{ input_dim = 3, classes = 2, width = 0 } end,
    { "Linear", "out_features", "positive integer, got 0" } },
}

local valid = {
  { "a 1-sample batch in evaluate mode (BatchNorm uses its running statistics)", function()
      local m = nn.Sequential{ nn.Linear(3, 4, { dtype = "float64" }), nn.BatchNorm(4, { dtype = "float64" }), nn.ReLU(),
        nn.Linear(4, 2, { dtype = "float64" }) }
      m:evaluate()
      local y = m:forward(X(1, 3))
      assert(y:size(1) == 1 and y:size(2) == 2)
      local crit = nn.CrossEntropyLoss()
      crit:forward(y, { 2 })
      m:backward(X(1, 3), crit.grad)
    end },
  { "a 2-sample batch in training", function() nn.BatchNorm(3, { dtype = "float64" }):forward(X(2, 3)) end },
  { "Linear backward without forward (it needs only x)", function()
      local l = lin(); l:backward(X(2, 3), X(2, 2))
    end },
  { "MaxPool2d backward runs the forward it needs", function()
      local p = nn.MaxPool2d(2); p:backward(img(1, 1, 4, 4), img(1, 1, 2, 2))
    end },
  { "a 1x1 convolution on a 1x1 image", function() nn.Conv2d(2, 3, 1, { dtype = "float64" }):forward(img(1, 2, 1, 1)) end },
  { "load_state of state() and to('float32') then float32 input", function()
      local a, b = lin(), lin()
      b:load_state(a:state()):to("float32")
      b:forward(collapse.zeros({ 2, 3 }, "float32"))
    end },
  { "a frozen module's backward with nothing left to compute", function()
      local l = lin(); l:freeze("weight"); l:freeze("bias")
      assert(l:backward(X(2, 3), X(2, 2), false) == nil)
    end },
}

describe("bad input: nn modules and models", function()
  C.run(it, entries)
  C.valid(it, valid)
end)
