-- collapse.sweep's run ids and sweep.csv cells: every point gets its own result file (a repeated
-- value is an error, close values get ids that tell them apart), and a text cell that a
-- spreadsheet would run as a formula is written as text.
local collapse = require("collapse")
local fs = require("collapse.fs")
local models = require("collapse.models")
local expect_error = require("support.expect").error
local tmpdir = require("support.tmp").dir

local DATA = collapse.data.conic{ n = 64, seed = 1 }

local function experiment()
  return { name = "pts", data = { train = DATA }, epochs = 1, batch_size = 32, progress = false,
    optimizer = { "SGD", lr = 0.01 }, metrics = { "intra_cos" },
    model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 8, rng = collapse.rng(cfg.seed) }
    end }
end

describe("collapse.sweep points", function()
  it("refuses a grid value or seed listed twice, naming both points and the file", function()
    local out = tmpdir()
    expect_error("sweep: points 1 (weight_decay=0.001_seed=1) and 2 (weight_decay=0.001_seed=1) would share the "
      .. "result file " .. out .. "/runs/weight_decay=0.001_seed=1.json", collapse.sweep,
      { experiment = experiment(), grid = { weight_decay = { 1e-3, 1e-3 } }, seeds = { 1 }, out = out })
    expect_error("a grid value or seed is listed twice", collapse.sweep,
      { experiment = experiment(), grid = { weight_decay = { 1e-3 } }, seeds = { 1, 1 }, out = out })
    assert.is_false(fs.exists(out .. "/runs")) -- refused before anything ran
  end)
  it("tells apart values that agree to 6 digits, and keeps the short form for the others", function()
    local out = tmpdir()
    local r = collapse.sweep({ experiment = experiment(), grid = { weight_decay = { 1e-3, 1.0000001e-3 } },
      seeds = { 1 }, out = out })
    assert.equal(2, #r.runs)
    assert.equal("weight_decay=0.001_seed=1", r.runs[1].run_id)
    assert.equal("weight_decay=" .. ("%.17g"):format(1.0000001e-3) .. "_seed=1", r.runs[2].run_id)
    assert.equal(1.0000001e-3, tonumber(r.runs[2].run_id:match("weight_decay=([^_]+)")))
  end)
  it("writes text cells that start like a formula with a leading apostrophe", function()
    local out = tmpdir()
    collapse.sweep({ experiment = experiment(), grid = { tag = { "=HYPERLINK(\"x\")", "-2+3", "plain" } },
      seeds = { 1 }, out = out })
    local csv = fs.read(out .. "/sweep.csv")
    assert.truthy(csv:find("\n\"'=HYPERLINK(\"\"x\"\")\",", 1, true), csv)
    assert.truthy(csv:find("\n'-2+3,", 1, true), csv)
    assert.truthy(csv:find("\nplain,", 1, true), csv)
    assert.falsy(csv:find("\n=", 1, true))
    assert.truthy(csv:find(",-0.", 1, true) or csv:find(",0.", 1, true)) -- numbers stay numbers
  end)
end)
