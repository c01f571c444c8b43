-- Bad inputs to collapse.optim: constructors and their options, parameter groups, step and
-- zero_grad (with '.'), state loading, the schedules. Each error names the function, the argument
-- and what was expected (spec/support/catalogue.lua); valid edge cases follow (lr 0, CosineLR of
-- an lr of 0, a group of frozen parameters only).
local collapse = require("collapse")
local C = require("support.catalogue")
local nn, optim = collapse.nn, collapse.optim

local function params() return nn.Linear(3, 2, { dtype = "float64" }):parameters() end
local function sgd() return optim.SGD(params(), { lr = 0.1 }) end

local entries = {
  -- constructors
  { "SGD: no lr", function() optim.SGD(params()) end, { "SGD", "lr is required" } },
  { "SGD: lr -1", function() optim.SGD(params(), { lr = -1 }) end, { "SGD", "lr", "number in [0, inf]", "-1" } },
  { "SGD: lr NaN", function() optim.SGD(params(), { lr = 0 / 0 }) end, { "SGD", "lr", "number in [0, inf]" } },
  { "SGD: lr a string", function() optim.SGD(params(), { lr = "0.1" }) end, { "SGD", "lr", "number in [0, inf]", "'0.1'" } },
  { "SGD: momentum -1", function() optim.SGD(params(), { lr = 0.1, momentum = -1 }) end, { "SGD", "momentum", "[0, inf]" } },
  { "SGD: dampening 2", function() optim.SGD(params(), { lr = 0.1, dampening = 2 }) end, { "SGD", "dampening", "[0, 1]" } },
  { "SGD: nesterov without momentum", function() optim.SGD(params(), { lr = 0.1, nesterov = true }) end,
    { "SGD", "nesterov", "momentum > 0 and dampening = 0" } },
  { "SGD: misspelt option", function() optim.SGD(params(), { lr = 0.1, weightdecay = 1 }) end, { "SGD", "unknown option 'weightdecay'" } },
  { "SGD: options a string", function() optim.SGD(params(), "fast") end, { "SGD", "options must be a table", "string" } },
  { "SGD: no parameters", function() optim.SGD({}, { lr = 0.1 }) end, { "SGD", "params", "non-empty list" } },
  { "SGD: params a tensor list", function() optim.SGD({ collapse.zeros({ 2 }) }, { lr = 0.1 }) end,
    { "SGD", "group 1, parameter 1", "{value =, grad =} entry of model:parameters()" } },
  { "Adam: betas {0.9, 1}", function() optim.Adam(params(), { betas = { 0.9, 1 } }) end, { "Adam", "betas[2]", "[0, 1)" } },
  { "Adam: betas a number", function() optim.Adam(params(), { betas = 0.9 }) end, { "Adam", "betas must be a table", "{beta1, beta2}" } },
  { "Adam: eps -1", function() optim.Adam(params(), { eps = -1 }) end, { "Adam", "eps", "[0, inf]" } },
  { "Adam: weight_decay NaN", function() optim.Adam(params(), { weight_decay = 0 / 0 }) end, { "Adam", "weight_decay", "[0, inf]" } },
  { "AdamW: unknown option", function() optim.AdamW(params(), { amsgrad = true }) end, { "AdamW", "unknown option 'amsgrad'" } },
  -- groups
  { "group without params", function() optim.SGD({ { params = "x" } }, { lr = 0.1 }) end, { "SGD", "group 1 has no params list" } },
  { "group with an unknown option", function() optim.SGD({ { params = params(), lrate = 1 } }, { lr = 0.1 }) end,
    { "SGD", "group 1", "unknown option 'lrate'" } },
  { "group with a bad lr", function() optim.Adam({ { params = params() }, { params = params(), lr = -2 } }) end,
    { "Adam group 2", "lr", "[0, inf]" } },
  { "group with a bad parameter", function() optim.SGD({ { params = { 5 } } }, { lr = 0.1 }) end,
    { "SGD", "group 1, parameter 1", "entry of model:parameters()" } },
  -- step / zero_grad
  { "step with '.'", function() local o = sgd(); o.step() end, { "SGD.step", "call with ':'", "opt:step()" } },
  { "step with '.' and options", function() local o = optim.Adam(params()); o.step({ zero_grad = true }) end,
    { "Adam.step", "call with ':'" } },
  { "zero_grad with '.'", function() local o = sgd(); o.zero_grad() end, { "SGD.zero_grad", "call with ':'", "opt:zero_grad()" } },
  { "step: unknown option", function() sgd():step{ zero = true } end, { "SGD.step", "unknown option 'zero'", "zero_grad" } },
  { "step: options a string", function() sgd():step("now") end, { "SGD.step", "options must be a table", "{zero_grad = true}" } },
  -- state
  { "load_state: a number", function() sgd():load_state(5) end, { "load_state", "optimiser state table expected" } },
  { "load_state: parameter count", function() sgd():load_state({ params = { false } }) end,
    { "load_state", "state has 1 parameters", "optimiser has 2" } },
  -- schedules
  { "MultiStepLR: no milestones", function() optim.MultiStepLR(sgd(), {}) end, { "MultiStepLR", "milestones", "list of epochs" } },
  { "MultiStepLR: milestone 0", function() optim.MultiStepLR(sgd(), { milestones = { 0 } }) end,
    { "MultiStepLR", "milestone 1", "positive integer", "0" } },
  { "MultiStepLR: gamma -1", function() optim.MultiStepLR(sgd(), { milestones = { 1 }, gamma = -1 }) end,
    { "MultiStepLR", "gamma", "[0, inf]" } },
  { "MultiStepLR: unknown option", function() optim.MultiStepLR(sgd(), { milestones = { 1 }, last_epoch = 3 }) end,
    { "MultiStepLR", "unknown option 'last_epoch'" } },
  { "MultiStepLR: not an optimiser", function() optim.MultiStepLR({}, { milestones = { 1 } }) end,
    { "MultiStepLR", "first argument must be an optimiser", "table" } },
  { "CosineLR: T_max 0", function() optim.CosineLR(sgd(), { T_max = 0 }) end, { "CosineLR", "T_max", "positive integer", "0" } },
  { "CosineLR: eta_min -1", function() optim.CosineLR(sgd(), { T_max = 3, eta_min = -1 }) end, { "CosineLR", "eta_min", "[0, inf]" } },
  { "CosineLR: a number for the optimiser", function() optim.CosineLR(5, { T_max = 3 }) end,
    { "CosineLR", "first argument must be an optimiser", "number" } },
  { "schedule step with '.'", function() local s = optim.CosineLR(sgd(), { T_max = 3 }); s.step() end,
    { "CosineLR.step", "call with ':'", "sched:step()" } },
  { "paper_schedule: 0 epochs", function() optim.paper_schedule(sgd(), 0) end, { "paper_schedule", "epochs", "positive integer, got 0" } },
}

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

local valid = {
  { "lr 0: SGD and Adam leave the parameters unchanged", function()
      for _, make in ipairs({ function(p) return optim.SGD(p, { lr = 0, momentum = 0.9 }) end,
        function(p) return optim.Adam(p, { lr = 0 }) end }) do
        local l = nn.Linear(3, 2, { dtype = "float64" })
        local w = l.weight:clone()
        local o = make(l:parameters())
        l.weight_grad:fill(1)
        o:step()
        assert(l.weight:tobytes() == w:tobytes())
      end
    end },
  { "CosineLR of an lr of 0 stays 0 (no 0/0 NaN)", function()
      local o = optim.SGD(params(), { lr = 0 })
      local s = optim.CosineLR(o, { T_max = 4 })
      for _ = 1, 6 do assert(s:step() == 0) end
    end },
  { "CosineLR of a group lr of 0 with eta_min", function()
      local o = optim.SGD({ { params = params(), lr = 0 }, { params = params() } }, { lr = 0.2 })
      local s = optim.CosineLR(o, { T_max = 2, eta_min = 0.01 })
      s:step()
      assert(finite(rawget(o.groups[1], "lr")) and math.abs(rawget(o.groups[1], "lr") - 0.005) < 1e-15)
      assert(math.abs(o.lr - 0.105) < 1e-15)
    end },
  { "MultiStepLR of an lr of 0", function()
      local s = optim.MultiStepLR(optim.SGD(params(), { lr = 0 }), { milestones = { 1 } })
      assert(s:step() == 0)
    end },
  { "weight_decay changed between steps takes effect", function()
      local l = nn.Linear(1, 1, { bias = false, dtype = "float64" })
      l.weight:fill(1)
      local o = optim.SGD(l:parameters(), { lr = 1, weight_decay = 0 })
      o:step()
      assert(l.weight:get(1, 1) == 1)
      o.weight_decay = 0.5
      o:step()
      assert(l.weight:get(1, 1) == 0.5)
    end },
  { "an SGD group with its own lr and nesterov (options whose default is false)", function()
      optim.SGD({ { params = params(), lr = 0.5, nesterov = true, momentum = 0.9 } }, { lr = 0.1 })
    end },
  { "a group whose parameters are all frozen", function()
      local l = nn.Linear(2, 2, { dtype = "float64" })
      l:freeze("weight"); l:freeze("bias")
      local o = optim.Adam(l:parameters())
      o:step(); o:zero_grad(); o:step{ zero_grad = true }
    end },
}

describe("bad input: optimisers and schedules", function()
  C.run(it, entries)
  C.valid(it, valid)
end)
