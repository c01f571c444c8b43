-- nc.measure_layers (issue 9): every chosen module output of the top-level Sequential, measured in
-- two streaming passes, against nc.measure on the same outputs computed explicitly (whole dataset
-- forwarded module by module, flattened), float64, 1e-12.
local collapse = require("collapse")
local nc = collapse.nc
local nn = collapse.nn

local expect_error = require("support.expect").error

local KEYS = { "intra_cos", "intra_cos_min", "intra_cos_q", "inter_cos", "inter_cos_max", "inter_cos_q",
  "feature_norm", "nc1", "variability", "cdnv", "equinorm", "equiangular", "max_cos", "etf_error",
  "trace_within", "between_energy", "mean_sq_norm" }

local function rel(a, b) return math.abs(a - b) / math.max(1e-300, math.abs(b)) end

-- Every module output for the whole dataset at once, in evaluate mode, flattened to [N x d].
local function explicit_outputs(model, x)
  model:evaluate()
  local outs = {}
  for i, m in ipairs(model.modules) do
    x = m:forward(x)
    local h = x:dim() == 2 and x or x:reshape({ x:size(1), -1 })
    outs[i] = h:clone()
  end
  model:train()
  return outs
end

local function check_against_measure(model, ds, opts, expect_count)
  local ref = explicit_outputs(model, ds.x)
  local res = nc.measure_layers(model, ds, opts)
  assert.is_true(model.training) -- mode restored
  assert.equal(expect_count, #res)
  for _, layer in ipairs(res) do
    local direct = nc.measure(ref[layer.index], ds.y, { classes = ds.classes, q = opts.q })
    assert.equal(ref[layer.index]:size(2), layer.dim)
    assert.equal(model.modules[layer.index]:describe():match("[^\n]*"), layer.name)
    for _, k in ipairs(KEYS) do
      local a, b = layer.metrics[k], direct[k]
      assert.is_true(a == b or rel(a, b) < 1e-12,
        ("layer %d (%s) %s: streamed %.17g, direct %.17g"):format(layer.index, layer.name, k, a, b))
    end
    for c = 1, ds.classes do
      assert.is_true(rel(layer.metrics.intra_per_class[c], direct.intra_per_class[c]) < 1e-12)
    end
    assert.is_nil(layer.metrics.accuracy)
  end
  return res
end

describe("nc.measure_layers", function()
  it("MLP: every layer equals nc.measure on its explicitly computed outputs, the last being the logits", function()
    local ds = collapse.data.gaussian{ classes = 4, dim = 10, per_class = 40, seed = 3, dtype = "float64" }
    local rng = collapse.rng(5)
    local model = nn.Sequential{ nn.Linear(10, 16, { dtype = "float64", rng = rng }), nn.ReLU(),
      nn.BatchNorm(16, { dtype = "float64" }), nn.Linear(16, 12, { dtype = "float64", rng = rng }), nn.Tanh(),
      nn.Linear(12, 4, { dtype = "float64", rng = rng }) }
    model:forward(ds.x) -- BN running statistics away from their start
    local res = check_against_measure(model, ds, { batch_size = 37, q = 0.1 }, 6)
    assert.equal(6, res[6].index)
    assert.equal(4, res[6].dim) -- logits
    assert.equal("nn.ReLU()", res[2].name)
  end)

  it("small conv net (Conv2d, BatchNorm2d, MaxPool2d, Flatten): chosen layers only", function()
    local N, C = 90, 3
    local x = collapse.randn({ N, 1, 6, 6 }, { dtype = "float64", rng = collapse.rng(7) })
    local labels, off = {}, {}
    for i = 1, N do
      local c = (i - 1) % C + 1
      labels[i] = c
      local plane = {}
      for r = 1, 6 do
        plane[r] = {}
        for q = 1, 6 do plane[r][q] = q == c and 2 or 0 end -- class-dependent column
      end
      off[i] = { plane }
    end
    x = x + collapse.tensor(off, "float64")
    local ds = collapse.data.Dataset{ x = x, y = labels, classes = C }
    local rng = collapse.rng(9)
    local model = nn.Sequential{ nn.Conv2d(1, 4, 3, { padding = 1, dtype = "float64", rng = rng }),
      nn.BatchNorm2d(4, { dtype = "float64" }), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
      nn.Linear(36, C, { dtype = "float64", rng = rng }) }
    model:forward(ds.x)
    local res = check_against_measure(model, ds, { layers = { 6, 1, 4, 4 }, batch_size = 32 }, 3)
    assert.same({ 1, 4, 6 }, { res[1].index, res[2].index, res[3].index })
    assert.equal(4 * 6 * 6, res[1].dim)
    assert.equal(36, res[2].dim)
    check_against_measure(model, ds, { layers = "all", batch_size = 1000 }, 6)
  end)

  it("refuses bad options and restores the mode on error", function()
    local ds = collapse.data.gaussian{ classes = 3, dim = 4, per_class = 10, seed = 1, dtype = "float64" }
    local model = nn.Sequential{ nn.Linear(4, 3, { dtype = "float64" }) }
    expect_error("layers[1] = 2 is not a module index in 1..1", nc.measure_layers, model, ds, { layers = { 2 } })
    expect_error("unknown option 'layer'", nc.measure_layers, model, ds, { layer = "all" })
    expect_error("batch_size must be a positive integer", nc.measure_layers, model, ds, { batch_size = 0 })
    expect_error("model must be an nn.Sequential", nc.measure_layers, {}, ds)
    local bad = nn.Sequential{ nn.Linear(5, 3, { dtype = "float64" }) } -- input width mismatch
    expect_error("size mismatch", nc.measure_layers, bad, ds)
    assert.is_true(bad.training)
  end)
end)
