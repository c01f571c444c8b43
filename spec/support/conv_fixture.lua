-- The fixture network of spec/fixtures/torch_conv/conv_net.txt (make_conv_fixtures.py) with
-- PyTorch's initial values: Conv2d(3,5,3,s2,p1)-BatchNorm2d(5)-ReLU-MaxPool2d(2,1)-AvgPool2d(2)-
-- Flatten-Linear(5,4), float64. `opts` goes to nn.Sequential (e.g. {share_grads = false}).
local collapse = require("collapse")
local fixture = require("support.fixture")
local nn = collapse.nn
local T = fixture.tensor

return function(fx, opts)
  local f64 = { dtype = "float64" }
  local model = nn.Sequential({ nn.Conv2d(3, 5, 3, { stride = 2, padding = 1, dtype = "float64" }),
    nn.BatchNorm2d(5, f64), nn.ReLU(), nn.MaxPool2d(2, 1), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(5, 4, f64) }, opts)
  model:get(1).weight:copy(T(fx.conv_weight, { 5, 3, 3, 3 }))
  model:get(1).bias:copy(T(fx.conv_bias, { 5 }))
  model:get(2).weight:copy(T(fx.gamma, { 5 }))
  model:get(2).bias:copy(T(fx.beta, { 5 }))
  model:get(2).running_mean:copy(T(fx.running_mean0, { 5 }))
  model:get(2).running_var:copy(T(fx.running_var0, { 5 }))
  model:get(7).weight:copy(T(fx.lin_weight, { 4, 5 }))
  model:get(7).bias:copy(T(fx.lin_bias, { 4 }))
  return model
end
