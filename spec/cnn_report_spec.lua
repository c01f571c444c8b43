-- collapse.cnn_sweep (the resumable CNN protocol of examples/cnn_fashion.lua and paper_cnn.lua)
-- and collapse.report_cnn (its figures): a tiny ResNet18 sweep on synthetic images, its layer
-- files and resumption; gnuplot strings treated as hostile; PNGs renamed into place.
local collapse = require("collapse")
local fs = require("collapse.fs")
local json = require("collapse.json")
local cnn_sweep = require("collapse.cnn_sweep")
local report_cnn = require("collapse.report_cnn")

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  fs.mkdir(d)
  return d
end

-- 4 classes x 6 images [1 x 8 x 8]: a class-dependent mean plus noise
local function images()
  local rng = collapse.rng(3)
  local x = collapse.randn({ 24, 1, 8, 8 }, { rng = rng }) * 0.5
  local y = {}
  for i = 1, 24 do
    local c = (i - 1) % 4 + 1
    y[i] = c
    x:narrow(1, i, 1):copy(x:narrow(1, i, 1) + c)
  end
  return collapse.data.Dataset{ x = x, y = collapse.tensor(y, "int32"), classes = 4, name = "tiny" }
end

describe("cnn_sweep", function()
  local train = images()
  local function build(cfg)
    return collapse.models.resnet18{ classes = cfg.classes, in_channels = 1, width = 2, last_bn = cfg.last_bn,
      rng = collapse.rng(cfg.seed) }
  end
  local function run(out)
    return cnn_sweep.run{ name = "tiny", out = out, train = train, build = build, weight_decays = { 1e-3, 1e-2 },
      epochs = 1, lr = 1e-3, batch_size = 8, progress = false }
  end
  it("runs the grid, measures every stage, resumes, and retrains a run whose layer file is missing", function()
    local out = tmpdir()
    local rows = run(out)
    assert.are.equal(4, #rows)
    local idx = cnn_sweep.layer_indices(build{ classes = 4, last_bn = true, seed = 1 })
    assert.are.same({ 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 }, idx)
    for _, r in ipairs(rows) do
      assert.are.equal(r.bn and 11 or 10, #r.layers)
      assert.is_number(r.metrics.intra_cos)
      assert.is_number(r.layers[1].metrics.inter_cos)
      -- the last measured layer is the classifier's input: the run's own final metrics
      assert.is_true(math.abs(r.layers[#r.layers].metrics.intra_cos - r.metrics.intra_cos) < 1e-6)
    end
    -- a rerun trains nothing: the same numbers from the files
    local again = run(out)
    for k, r in ipairs(again) do assert.are.equal(rows[k].metrics.intra_cos, r.metrics.intra_cos) end
    local id = "last_bn=false_weight_decay=0.01_seed=1"
    os.remove(out .. "/layers/" .. id .. ".json")
    local before = json.decode(fs.read(out .. "/runs/" .. id .. ".json")).seconds
    run(out)
    assert.is_true(fs.exists(out .. "/layers/" .. id .. ".json"))
    assert.are_not.equal(before, json.decode(fs.read(out .. "/runs/" .. id .. ".json")).seconds)
    local lines = cnn_sweep.table("tiny", rows)
    assert.are.equal(4, #lines)
    assert.is_truthy(lines[1]:find("| tiny           | yes | 0.001  |", 1, true))
    os.execute("rm -rf '" .. out .. "'")
  end)
end)

describe("report_cnn", function()
  it("gp_string: quotes doubled, control characters dropped, nothing else special", function()
    assert.are.equal("'it''s'", report_cnn.gp_string("it's"))
    assert.are.equal("'a b'", report_cnn.gp_string("a\nb"))
    assert.are.equal("'`rm -rf x` \\n $HOME'", report_cnn.gp_string("`rm -rf x` \\n $HOME"))
  end)
  it("figures with hostile titles: no command runs, the PNGs are renamed into place", function()
    local out = tmpdir()
    local marker = out .. "/pwned"
    local hostile = "x' ; system('touch " .. marker .. "') ; '`touch " .. marker .. "`\nset output '/tmp/evil"
    local runs = {}
    for _, bn in ipairs({ true, false }) do
      for k, wd in ipairs({ 1e-4, 1e-3, 1e-2 }) do
        runs[#runs + 1] = { wd = wd, bn = bn, metrics = { intra_cos = 0.5 + 0.1 * k, inter_cos = -0.1,
          intra_cos_min = 0.2, inter_cos_max = 0.3, intra_cos_q = 0.25, inter_cos_q = 0.2 } }
      end
    end
    local ok, msg = report_cnn.collapse_figure(out, "fig", { { title = hostile, classes = 10, runs = runs } })
    local layers = { { metrics = { intra_cos = 0.1, inter_cos = 0 } }, { metrics = { intra_cos = 0.6, inter_cos = -0.1 } } }
    local ok2 = report_cnn.layers_figure(out, "depth", { { title = hostile, classes = 10,
      settings = { { bn = true, layers = layers }, { bn = false, layers = layers } } } })
    assert.is_false(fs.exists(marker))
    local gp = fs.read(out .. "/fig.gp")
    assert.is_truthy(gp:find("set title 'average: x'' ; system(''touch", 1, true))
    assert.is_nil(gp:find("\nset output '/tmp/evil", 1, true))
    if os.execute("command -v gnuplot >/dev/null 2>&1") then
      assert.is_true(ok, msg)
      assert.is_true(ok2)
      assert.is_true(fs.exists(out .. "/fig.png") and fs.exists(out .. "/depth.png"))
      assert.is_false(fs.exists(out .. "/fig.png.tmp"))
      assert.are.equal("\137PNG", fs.read(out .. "/fig.png"):sub(1, 4))
    end
    os.execute("rm -rf '" .. out .. "'")
  end)
end)
