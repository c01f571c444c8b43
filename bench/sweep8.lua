-- The sweep of bench/jobs: 8 conic runs (the demo's MLP: depth 4, width 300, with and without BN,
-- 4 weight decays, Adam + the paper's schedule). `collapse run bench/sweep8.lua --out DIR [--jobs N]`.
local collapse = require("collapse")
local models = require("collapse.models")
return {
  out = "bench/results/sweep8", seeds = { 1 },
  grid = { weight_decay = { 1e-4, 5e-4, 1e-3, 5e-3 }, batchnorm = { true, false } },
  experiment = {
    data = function() return { train = collapse.data.conic{ n = 10000, classes = 4, dim = 16, seed = 1 } } end,
    epochs = 20, batch_size = 128, optimizer = { "Adam", lr = 1e-3 }, schedule = { "paper" },
    metrics = { "intra_cos", "inter_cos", "accuracy", "bound" },
    model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, depth = 4, width = 300,
        batchnorm = cfg.batchnorm, rng = collapse.rng(cfg.seed) }
    end,
  },
}
