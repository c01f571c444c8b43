-- paper_synthetic: the authors' full synthetic-data grid (Pan & Cao, conic-hull data): MLPs of
-- depth 3, 4, 6 and 9, width 300, with and without a BatchNorm before the classifier, the seven
-- weight decays of the paper, 3 seeds, Adam lr 1e-3 with x0.1 steps at 25/50/75% of 300 epochs.
--   scripts/collapse run examples/paper_synthetic.lua --out runs/paper_synthetic
--   scripts/collapse report runs/paper_synthetic
-- 168 runs of 300 epochs: about 10 hours on 2 cores (kill and rerun any time: finished runs are
-- kept). For a first look: --set epochs=60 --set seeds=1 (about 1 hour).
local collapse = require("collapse")
local models = require("collapse.models")

return {
  out = "runs/paper_synthetic",
  grid = {
    weight_decay = { 1e-4, 3e-4, 5e-4, 1e-3, 3e-3, 5e-3, 1e-2 },
    batchnorm = { true, false },
    depth = { 3, 4, 6, 9 },
  },
  seeds = { 1, 2, 3 },
  experiment = {
    name = "paper_synthetic",
    data = { train = collapse.data.conic{ n = 10000, classes = 4, dim = 16, seed = 0 } },
    model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, depth = cfg.depth, width = 300,
        batchnorm = cfg.batchnorm, rng = collapse.rng(cfg.seed) }
    end,
    optimizer = { "Adam", lr = 1e-3 },
    schedule = { "paper" },
    epochs = 300,
    batch_size = 128,
    measure_every = 50,
  },
}
