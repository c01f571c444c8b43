-- bound_along_training: the paper's BN MLP (width 64, float64) on 400 conic points, full-batch SGD
-- (momentum 0.9, lr 0.1, x0.1 at 50% and 75% of 3,000 epochs) at four weight decays, measured every
-- 100 epochs: epsilon, the certified and asymptotic bounds and the epsilon decomposition along
-- training (about 30 s on this machine). Then the report draws them (docs/experiments.md):
--   scripts/collapse run examples/bound_along_training.lua && scripts/collapse report runs/bound_along_training
-- Weight decay 0 is in the grid on purpose: its bound is "not applicable" and the report says so.
local collapse = require("collapse")
local models = require("collapse.models")

return {
  out = "runs/bound_along_training",
  grid = { weight_decay = { 0, 5e-3, 1e-2, 2e-2 } },
  seeds = { 1 },
  experiment = {
    name = "bound_along_training",
    data = { train = collapse.data.conic{ n = 400, seed = 1, dtype = "float64" } },
    model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 64, batchnorm = true,
        dtype = "float64", rng = collapse.rng(cfg.seed) }
    end,
    optimizer = { "SGD", lr = 0.1, momentum = 0.9 },
    schedule = { "MultiStepLR", milestones_fraction = { 0.5, 0.75 }, gamma = 0.1 },
    epochs = 3000,
    batch_size = 400, -- full batch: the train-mode BN normalises by the whole set, as in the theory
    measure_every = 100,
  },
}
