-- Lua -> C crossings of one steady-state training step of the paper's MLP, written as the README
-- writes it (forward, crit:forward, model:backward(x, crit.grad), opt:step(), opt:zero_grad()),
-- counted with a debug hook: every "call" event of a C function (kernels, but also pcall, xpcall,
-- type, ipairs, getmetatable, ... everything C). Issue 11: at most 3 per module.
local collapse = require("collapse")
local nn, optim = collapse.nn, collapse.optim

-- The number of calls of C functions while f runs (the hook itself is not counted).
local function count_c_calls(f)
  local n = 0
  debug.sethook(function()
    local info = debug.getinfo(2, "S")
    if info and info.what == "C" then n = n + 1 end
  end, "c")
  f()
  debug.sethook()
  return n - 1 -- the call of debug.sethook that removes the hook
end

describe("Lua -> C crossings", function()
  it("a training step of the paper's MLP makes at most 3 per module", function()
    local model = nn.Sequential{
      nn.Linear(16, 300, { bias = false }), nn.ReLU(),
      nn.Linear(300, 300, { bias = false }), nn.ReLU(),
      nn.Linear(300, 300, { bias = false }), nn.ReLU(),
      nn.BatchNorm(300),
      nn.Linear(300, 4, { bias = false }),
    }
    local opt = optim.Adam(model:parameters(), { lr = 1e-3, weight_decay = 5e-3 })
    local crit = nn.CrossEntropyLoss()
    local x = collapse.randn({ 128, 16 }, { rng = collapse.rng(1) })
    local labels = {}
    for i = 1, 128 do labels[i] = (i - 1) % 4 + 1 end
    local y = collapse.tensor(labels, "int32")
    local function step()
      crit:forward(model:forward(x), y)
      model:backward(x, crit.grad)
      opt:step(); opt:zero_grad()
    end
    step(); step() -- the first steps make the buffers and the optimiser's param lists
    local n = count_c_calls(step)
    -- 8 kernels forward + 8 backward, 2 xpcall, cross_entropy + a labels check, step, zero_grad
    print(("\ncrossings per training step of the paper's MLP (8 modules): %d"):format(n))
    assert.is_true(n <= 3 * #model.modules, "crossings: " .. n)
    -- a new labels tensor each batch (as data:batches gives) costs its check once more
    local y2 = collapse.tensor(labels, "int32")
    local n2 = count_c_calls(function()
      crit:forward(model:forward(x), y2)
      model:backward(x, crit.grad)
      opt:step(); opt:zero_grad()
    end)
    assert.is_true(n2 <= 3 * #model.modules, "crossings with new labels: " .. n2)
  end)

  it("one Linear:forward is one crossing", function()
    local lin = nn.Linear(3, 4)
    local x = collapse.randn({ 2, 3 })
    lin:forward(x)
    assert.equal(1, count_c_calls(function() lin:forward(x) end))
  end)
end)
