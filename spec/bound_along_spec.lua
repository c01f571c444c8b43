-- The bound along training and the epsilon decomposition in results: every measurement of a run
-- with measure_every carries epsilon, the certified and asymptotic bounds and the decomposition;
-- the JSON and the sweep CSV hold exactly what nc.decompose / nc.bound say when called directly on
-- the same model at that epoch; the report draws them (vacuous bounds as markers at the trivial
-- value, weight decay 0 labelled not applicable) and loads in headless Chromium.
local collapse = require("collapse")
local json = require("collapse.json")
local fs = require("collapse.fs")
local models = require("collapse.models")
local report = require("collapse.report")
local nc = collapse.nc

local tmpdir = require("support.tmp").dir

local DATA = collapse.data.conic{ n = 160, seed = 3, dtype = "float64" }
local LAMBDA = 5e-3

-- A tiny float64 BN MLP trained by SGD: deterministic, so a shorter run is the same model at an
-- earlier epoch of a longer one.
local function spec(epochs, wd, out)
  return { data = { train = DATA }, epochs = epochs, measure_every = 2, progress = false, seed = 4, out = out,
    optimizer = { "SGD", lr = 0.05, momentum = 0.9, weight_decay = wd }, batch_size = 32,
    model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 24, dtype = "float64",
        batchnorm = true, rng = collapse.rng(cfg.seed) }
    end }
end

local function close(a, b, rel, what)
  assert(type(a) == "number" and type(b) == "number", what .. ": not numbers: " .. tostring(a) .. ", " .. tostring(b))
  local tol = rel * math.max(math.abs(a), math.abs(b)) + 1e-300
  assert(math.abs(a - b) <= tol, ("%s: %.17g vs %.17g"):format(what, a, b))
end

-- The recorded decomposition equals a direct nc.decompose (running statistics, as nc.certify),
-- the recorded bound a direct nc.bound at nc.regularized_loss; the parts sum to epsilon.
local function check_against_model(rec, model, rel)
  local d = nc.decompose(model, DATA, LAMBDA, { bn_mode = "running" })
  local rd = rec.decomposition
  assert.is_true(rd.applicable)
  assert.equal(#d.parts, #rd.parts)
  local sum = 0
  for i, p in ipairs(d.parts) do
    assert.equal(p.name, rd.parts[i].name)
    close(rd.parts[i].value, p.value, rel, "part " .. p.name)
    sum = sum + rd.parts[i].value
  end
  close(sum, rd.epsilon, 1e-9, "sum of the parts vs epsilon")
  close(rd.epsilon, d.epsilon, rel, "epsilon")
  assert.equal(d.dominant, rd.dominant)
  local counts = nc.measure_model(model, DATA).class_counts
  local n_min = math.huge
  for _, c in ipairs(counts) do n_min = math.min(n_min, c) end
  local b = nc.bound{ lambda = LAMBDA, classes = DATA.classes, per_class = n_min,
    loss = nc.regularized_loss(model, DATA, LAMBDA).total }
  for _, k in ipairs({ "epsilon", "intra_cos_min", "inter_cos_max" }) do close(rec.bound[k], b[k], rel, "bound " .. k) end
  assert.equal(b.guaranteed, rec.bound.guaranteed)
  close(rec.bound.asymptotic.intra_cos_min, b.asymptotic.intra_cos_min, rel, "asymptotic intra")
  close(rec.bound.asymptotic.inter_cos_max, b.asymptotic.inter_cos_max, rel, "asymptotic inter")
  close(rec.epsilon, b.epsilon, rel, "record epsilon")
  -- the decomposition's float64 epsilon is the bound's epsilon (L_reg - L*) to rounding
  close(rd.epsilon, b.epsilon, 1e-10, "decomposition epsilon vs bound epsilon")
end

describe("the bound along training", function()
  local dir = tmpdir()
  local long = collapse.experiment(spec(6, LAMBDA, dir)):run()

  it("records epsilon, both bounds and the decomposition at every measurement", function()
    local saved = json.decode(fs.read(long.path))
    local measured = {}
    for _, h in ipairs(saved.history) do
      if h.intra_cos then
        measured[#measured + 1] = h.epoch
        assert.is_number(h.epsilon)
        assert.is_boolean(h.bound.guaranteed)
        assert.is_number(h.bound.intra_cos_min)
        assert.is_number(h.bound.asymptotic.inter_cos_max)
        assert.is_boolean(h.bound.intra_vacuous)
        assert.equal(13, #h.decomposition.parts)
        local sum = 0
        for _, p in ipairs(h.decomposition.parts) do sum = sum + p.value end
        close(sum, h.decomposition.epsilon, 1e-9, "parts at epoch " .. h.epoch)
      end
    end
    assert.same({ 2, 4, 6 }, measured)
  end)

  it("the final record in the JSON equals nc.decompose and nc.bound on the trained model", function()
    local saved = json.decode(fs.read(long.path))
    check_against_model(saved.final, long.model, 0) -- the JSON round trip is exact
  end)

  it("an earlier measurement equals nc.decompose and nc.bound on the same model at that epoch", function()
    local short = collapse.experiment(spec(4, LAMBDA)):run()
    local saved = json.decode(fs.read(long.path))
    check_against_model(saved.history[4], short.model, 1e-12)
  end)

  it("nc.certify carries the decomposition, and none at weight decay 0", function()
    local c = nc.certify(long.model, DATA, LAMBDA)
    assert.equal("running", c.decomposition.bn_mode)
    close(c.decomposition.L_reg, c.loss.total, 1e-12, "certify L_reg")
    assert.is_nil(nc.certify(long.model, DATA, 0).decomposition)
    assert.is_nil(nc.certify(long.model, DATA, LAMBDA, { decompose = false }).decomposition)
  end)

  it("a weight decay 0 run says the bound and the decomposition are not applicable", function()
    local r = collapse.experiment(spec(2, 0)):run()
    assert.is_false(r.final.decomposition.applicable)
    assert.is_false(r.final.bound.applicable)
    assert.is_nil(r.final.epsilon)
  end)
end)

-- The CSV cells of a sweep.csv as {column -> string} per row.
local function read_csv(path)
  local rows, header = {}, nil
  for line in io.lines(path) do
    local cells = {}
    for c in (line .. ","):gmatch("([^,]*),") do cells[#cells + 1] = c end
    if not header then header = cells
    else
      local row = {}
      for i, k in ipairs(header) do row[k] = cells[i] end
      rows[#rows + 1] = row
    end
  end
  return rows, header
end

describe("the sweep CSV and the report", function()
  local dir = tmpdir()
  local base = spec(4, LAMBDA)
  base.out, base.optimizer.weight_decay = nil, nil
  collapse.sweep{ experiment = base, grid = { weight_decay = { 0, LAMBDA } }, seeds = { 4 }, out = dir, progress = false }

  it("has one slack column per part, equal to nc.decompose on the same model", function()
    local rows, header = read_csv(dir .. "/sweep.csv")
    local parts = require("collapse.decompose").PARTS
    local at = {}
    for i, k in ipairs(header) do at[k] = i end
    for _, p in ipairs(parts) do assert.is_number(at["slack_" .. p[1]], "no column slack_" .. p[1]) end
    assert.is_true(at.run_id < at.slack_jensen_competing)
    local same = collapse.experiment(spec(4, LAMBDA)):run() -- the sweep point's model, trained again
    local d = nc.decompose(same.model, DATA, LAMBDA, { bn_mode = "running" })
    local row0, row = rows[1], rows[2]
    if row0.weight_decay ~= "0" then row0, row = row, row0 end
    local sum = 0
    for _, p in ipairs(d.parts) do
      close(tonumber(row["slack_" .. p.name]), p.value, 1e-9, "CSV " .. p.name)
      sum = sum + tonumber(row["slack_" .. p.name])
    end
    close(tonumber(row.decomposition_epsilon), d.epsilon, 1e-9, "CSV epsilon")
    close(sum, d.epsilon, 1e-8, "CSV parts sum")
    assert.equal(d.dominant, row.dominant_slack)
    for _, p in ipairs(parts) do assert.equal("", row0["slack_" .. p[1]]) end
    assert.equal("", row0.decomposition_epsilon)
  end)

  it("draws the decomposition and the bound along training, weight decay 0 labelled", function()
    local index, messages = report.build(dir)
    if not os.execute("command -v gnuplot >/dev/null 2>&1") then return end
    assert.same({}, messages)
    local page = fs.read(index)
    for _, f in ipairs({ "decomposition_final.png", "bound_epoch_r1.png", "bound_epoch_r2.png",
      "decomposition_epoch_r1.png", "intra_cos.png" }) do
      assert.is_true(fs.exists(dir .. "/report/" .. f), f)
      assert.is_truthy(page:find('src="' .. f .. '"', 1, true), f)
    end
    -- r2 is weight_decay=0 (file order): no decomposition figure, its bound figure says why
    assert.is_false(fs.exists(dir .. "/report/decomposition_epoch_r2.png"))
    assert.is_truthy(fs.read(dir .. "/report/bound_epoch_r2.gp"):find("bound not applicable (weight decay 0)", 1, true))
    assert.is_truthy(fs.read(dir .. "/report/decomposition_final.gp"):find("not applicable (weight decay 0)", 1, true))
    assert.is_truthy(fs.read(dir .. "/report/intra_cos.gp"):find("weight decay 0: bound not applicable", 1, true))
  end)
end)

-- A crafted run: a bound certified at some epochs and vacuous at others (values chosen by hand).
local function crafted_run(name, mark)
  local h, parts = {}, {}
  for i, p in ipairs(require("collapse.decompose").PARTS) do parts[i] = { name = p[1], value = i * 1e-3 } end
  parts[#parts + 1] = { name = "x'`touch " .. mark .. "/bq`", value = 5 } -- not a part: ignored
  for e = 1, 4 do
    local ok = e >= 3
    h[e] = { epoch = e, train_loss = 1 / e, intra_cos = 0.5 + 0.1 * e, inter_cos = -0.1 * e, epsilon = 0.1 / e,
      bound = { guaranteed = ok, applicable = true, intra_cos_min = ok and 0.25 or -1, inter_cos_max = ok and 0.75 or 1,
        intra_vacuous = not ok, inter_vacuous = not ok, reason = ok and "" or "x'); system('touch " .. mark .. "/sys",
        asymptotic = { intra_cos_min = ok and 0.375 or -1, inter_cos_max = ok and 0.625 or 1 } },
      decomposition = { applicable = true, epsilon = 0.091, dominant = "<b>'", parts = parts } }
  end
  return { finished = true, run_id = name, name = name, lambda = 1e-3, history = h, final = h[4] }
end

describe("the bound figure of a crafted run", function()
  it("draws a certified bound only where it is guaranteed, vacuous ones at the trivial value", function()
    local dir, mark = tmpdir(), tmpdir()
    fs.write_atomic(dir .. "/run.json", json.encode(crafted_run("evil'`touch " .. mark .. "/name`\nx", mark)))
    local index, messages = report.build(dir)
    assert.equal("", io.popen("ls -A " .. mark):read("a"), "a command ran")
    assert.is_truthy(fs.read(index):find("&lt;b&gt;&#39;", 1, true))
    local rows = {}
    for line in io.lines(dir .. "/report/bound_epoch_r1.dat") do
      if not line:find("^#") then
        local t = {}
        for v in line:gmatch("%S+") do t[#t + 1] = v end
        rows[#rows + 1] = t
      end
    end
    -- epoch intra inter | intra: cert, cert-vacuous, asym, asym-vacuous | inter: the same
    assert.same({ "1", "0.6", "-0.1", "NaN", "-1", "NaN", "-1", "NaN", "1", "NaN", "1" }, rows[1])
    assert.same({ "3", "0.8", "-0.3", "0.25", "NaN", "0.375", "NaN", "0.75", "NaN", "0.625", "NaN" }, rows[3])
    local gp = fs.read(dir .. "/report/bound_epoch_r1.gp")
    assert.is_truthy(gp:find("asymptotic intra >= bound (epsilon -> 0 form, not a certificate)", 1, true))
    assert.is_truthy(gp:find("vacuous (drawn at the trivial value -1)", 1, true))
    -- the stacked area: 13 parts stacked upwards, the unknown name ignored
    local first = io.lines(dir .. "/report/decomposition_epoch_r1.dat")
    first()
    local t = {}
    for v in first():gmatch("%S+") do t[#t + 1] = tonumber(v) end
    assert.equal(2 + 2 * 13, #t)
    close(t[#t], 91e-3, 1e-12, "top of the stack")
    if os.execute("command -v gnuplot >/dev/null 2>&1") then assert.same({}, messages) end
  end)
end)

local browser = require("support.browser")
local have = browser.available and os.execute("command -v gnuplot >/dev/null 2>&1")

describe("the report of a run with measure_every in a browser", function()
  (have and it or pending)("loads without console errors and decodes every image, the new figures among them", function()
    local dir = tmpdir()
    collapse.experiment(spec(6, LAMBDA, dir)):run()
    local index = report.build(dir)
    local page = fs.read(index)
    for _, f in ipairs({ "decomposition_final.png", "bound_epoch_r1.png", "decomposition_epoch_r1.png" }) do
      assert.is_truthy(page:find('src="' .. f .. '"', 1, true), f)
    end
    local profile, log = tmpdir(), dir .. "/chromium.log"
    local dom, console = browser.load(index, profile, log)
    local loaded, total = dom:match('data%-images%-loaded="(%d+)/(%d+)"')
    assert.is_not_nil(loaded, "the page's load handler did not run")
    assert.is_true(tonumber(total) >= 8, "only " .. tostring(total) .. " images")
    assert.equal(total, loaded)
    assert.same({}, console)
    os.execute(("rm -rf '%s' '%s'"):format(dir, profile))
  end)
end)
