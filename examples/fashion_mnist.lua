-- fashion_mnist: the paper's MLP (depth 4, width 300) on all 60,000 Fashion-MNIST training images
-- (Debian package dataset-fashion-mnist), with and without last-layer BN, weight decay 5e-4,
-- 10 epochs each; prints collapse metrics on the training set and test accuracy.
-- About 1.5 minutes on 2 cores.   scripts/lua examples/fashion_mnist.lua [epochs]
local collapse = require("collapse")
local models = require("collapse.models")

local epochs = tonumber(arg and arg[1]) or 10
local train = collapse.data.fashion_mnist{ split = "train" }
local test = collapse.data.fashion_mnist{ split = "test" }
print(train)
for _, bn in ipairs({ true, false }) do
  local r = collapse.experiment{
    name = bn and "with BN" or "without BN", seed = 1, data = { train = train, test = test },
    model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, batchnorm = bn, rng = collapse.rng(cfg.seed) }
    end,
    optimizer = { "Adam", lr = 1e-3, weight_decay = 5e-4 }, schedule = { "paper" },
    epochs = epochs, batch_size = 128, progress = true,
    metrics = { "intra_cos", "inter_cos", "feature_norm", "nc1", "test_accuracy", "regularized_loss", "bound" },
  }:run()
  local f = r.final
  print(("%-10s train loss %.4f  intra %.4f  inter %.4f (ideal %.4f)  feature norm %.2f  nc1 %.3f  test acc %.4f")
    :format(r.name, f.train_loss, f.intra_cos, f.inter_cos, -1 / 9, f.feature_norm, f.nc1, f.test_accuracy))
end
