-- small_sweep: a 12-point sweep of short runs (3 weight decays x BN on/off x 2 seeds, 10 epochs
-- on 2,000 conic points; about 1 s in all on this machine), for trying the sweep machinery:
--   scripts/collapse run examples/small_sweep.lua --jobs auto          # on this machine
--   scripts/collapse slurm examples/small_sweep.lua --submit           # on a Slurm cluster (docs/cluster.md)
local collapse = require("collapse")
local models = require("collapse.models")

return {
  out = "runs/small_sweep",
  grid = { weight_decay = { 1e-4, 1e-3, 1e-2 }, batchnorm = { true, false } },
  seeds = { 1, 2 },
  experiment = {
    name = "small_sweep",
    data = { train = collapse.data.conic{ n = 2000, classes = 4, dim = 16, seed = 0 } },
    model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, depth = 3, width = 64,
        batchnorm = cfg.batchnorm, rng = collapse.rng(cfg.seed) }
    end,
    optimizer = { "Adam", lr = 1e-3 },
    schedule = { "paper" },
    epochs = 10,
    batch_size = 128,
  },
}
