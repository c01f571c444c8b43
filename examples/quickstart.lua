-- quickstart: train the paper's MLP with BatchNorm on conic data, measure collapse, compare
-- with the bound. About 10 seconds.   scripts/lua examples/quickstart.lua
local collapse = require("collapse")
local nn, optim, nc = collapse.nn, collapse.optim, collapse.nc

local data = collapse.data.conic{ n = 10000, classes = 4, dim = 16, seed = 1 }
local model = nn.Sequential{
  nn.Linear(16, 300, { bias = false }), nn.ReLU(),
  nn.Linear(300, 300, { bias = false }), nn.ReLU(),
  nn.BatchNorm(300),                                 -- the last-layer BN the paper studies
  nn.Linear(300, 4, { bias = false }),
}
local lambda = 5e-3                                  -- weight decay (coupled L2, as the paper)
local opt = optim.Adam(model:parameters(), { lr = 1e-3, weight_decay = lambda })
local sched = optim.paper_schedule(opt, 40)          -- lr x0.1 at 25%, 50%, 75% of the epochs
local crit, rng = nn.CrossEntropyLoss(), collapse.rng(1)
for _ = 1, 40 do
  for x, y in data:batches{ batch_size = 128, rng = rng } do
    crit:forward(model:forward(x), y)
    model:backward(x, crit.grad)
    opt:step(); opt:zero_grad()
  end
  sched:step()
end
local c = nc.certify(model, data, lambda)             -- metrics, regularised loss, bound
print(("intra-class cosine %.4f, inter-class %.4f (ideal %.4f)"):format(c.metrics.intra_cos,
  c.metrics.inter_cos, -1 / 3))
print(("regularised loss %.4f, optimum L* %.4f: %s"):format(c.loss.total, c.bound.optimal_loss,
  c.bound.guaranteed and ("certified intra >= %.4f"):format(c.bound.intra_cos_min) or c.bound.reason))
