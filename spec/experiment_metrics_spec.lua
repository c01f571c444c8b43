-- The names field 'metrics' accepts are checked when the experiment is made (not at its first
-- measurement, epochs later), and the list of known names is the one the measurement produces.
local collapse = require("collapse")
local models = require("collapse.models")
local expect_error = require("support.expect").error

local DATA = collapse.data.conic{ n = 80, seed = 2 }

local function spec(metrics, trained)
  return { name = "m", data = { train = DATA, test = DATA }, epochs = 1, batch_size = 40, progress = false,
    optimizer = { "Adam", lr = 1e-3, weight_decay = 1e-3 }, metrics = metrics,
    model = function(cfg)
      trained.count = (trained.count or 0) + 1
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 8, batchnorm = true,
        rng = collapse.rng(1) }
    end }
end

describe("experiment metrics", function()
  it("refuses an unknown name when the experiment is made, before any training", function()
    local trained = {}
    expect_error("experiment: unknown metric 'intra_coss' (entry 2 of field 'metrics'; known: accuracy, ",
      collapse.experiment, spec({ "nc1", "intra_coss" }, trained))
    assert.is_nil(trained.count)
  end)
  it("knows exactly the names a measurement can produce, and each of them runs", function()
    local known, names = require("collapse.experiment").known_metrics, {}
    for k in pairs(known) do names[#names + 1] = k end
    table.sort(names)
    local r = collapse.experiment(spec(names, {})):run()
    for _, k in ipairs(names) do
      if k ~= "decomposition" then assert.is_not_nil(r.final[k], k) end -- every name gives a value
    end
    -- and nothing nc.certify measures is missing from the list
    local model = r.model
    local cert = collapse.nc.certify(model, DATA, 1e-3, { batch_size = 80 })
    for k in pairs(cert.metrics) do assert.is_true(known[k] == true, "not in known_metrics: " .. k) end
  end)
end)
