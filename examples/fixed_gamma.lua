-- fixed_gamma: the paper's fixed-gamma experiment (claim 3: a lower last-layer feature norm goes
-- with stronger collapse). The paper's BN MLP on the conic data, the BatchNorm weight frozen to a
-- constant c (nn.BatchNorm{affine = "fixed_gamma"}: bias still learned, no weight decay on the
-- frozen weight), so the features the classifier sees have norm about c * sqrt(width). A sweep
-- over c x weight decay (collapse.sweep: resumable, one JSON per run, sweep.csv), then a table and
-- two plots of the intra- and inter-class cosine against c * sqrt(width), one curve per weight
-- decay (gnuplot; PNGs written to a temporary name and renamed).
--   scripts/lua examples/fixed_gamma.lua [OUT]            # about 4 minutes on 2 cores
--   scripts/lua examples/fixed_gamma.lua OUT --quick      # a few seconds: the pipeline only
-- Rerunning with the same OUT skips the finished runs. Results: docs/fixed_gamma.md.
local collapse = require("collapse")
local fs = require("collapse.fs")
local report = require("collapse.report")
local models = require("collapse.models")
local nn = collapse.nn

local out, quick = "runs/fixed_gamma", false
for _, a in ipairs(arg or {}) do
  if a == "--quick" then quick = true else out = a end
end

local WIDTH = quick and 32 or 300
local GAMMAS = quick and { 0.1, 1 } or { 0.01, 0.05, 0.2, 1, 4 }
local DECAYS = quick and { 1e-3 } or { 1e-4, 1e-3, 1e-2 }

local spec = {
  out = out,
  grid = { gamma = GAMMAS, weight_decay = DECAYS },
  seeds = quick and { 1 } or { 1, 2 },
  experiment = {
    name = "fixed_gamma",
    data = { train = collapse.data.conic{ n = quick and 400 or 4000, classes = 4, dim = 16, seed = 0 } },
    model = function(cfg)
      local m = models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, depth = 4, width = WIDTH,
        batchnorm = true, rng = collapse.rng(cfg.seed) }
      m:find(nn.BatchNorm)[1]:fix_gamma(cfg.gamma) -- weight = c, frozen
      return m
    end,
    optimizer = { "Adam", lr = 1e-3 },
    schedule = { "paper" },
    epochs = quick and 3 or 40,
    batch_size = 128,
    metrics = { "intra_cos", "inter_cos", "feature_norm", "loss", "accuracy" },
  },
}

local result = collapse.sweep(spec)

-- Mean over seeds of each (weight decay, c) point.
local cells = {}
for _, r in ipairs(result.runs) do
  local key = ("%g %g"):format(r.grid.weight_decay, r.grid.gamma)
  local c = cells[key] or { n = 0, intra = 0, inter = 0, norm = 0, loss = 0 }
  c.n = c.n + 1
  c.intra, c.inter = c.intra + r.final.intra_cos, c.inter + r.final.inter_cos
  c.norm, c.loss = c.norm + r.final.feature_norm, c.loss + r.final.train_loss
  cells[key] = c
end

local function cell(wd, g)
  local c = cells[("%g %g"):format(wd, g)]
  return c.intra / c.n, c.inter / c.n, c.norm / c.n, c.loss / c.n
end

print(("\nfixed gamma: BN MLP (depth 4, width %d) on conic data, C = 4 (ideal inter = -0.3333)"):format(WIDTH))
print(("%-8s %-6s %-10s %-10s %-8s %-8s %-9s"):format("wd", "c", "c*sqrt(d)", "feat norm", "intra", "inter", "loss"))
for _, wd in ipairs(DECAYS) do
  for _, g in ipairs(GAMMAS) do
    local intra, inter, norm, loss = cell(wd, g)
    print(("%-8g %-6g %-10.4g %-10.4g %-8.4f %-8.4f %-9.4g"):format(wd, g, g * math.sqrt(WIDTH), norm, intra, inter,
      loss))
  end
end

-- Does collapse strengthen as the norm falls? Count, per weight decay, the neighbouring pairs of c
-- where the smaller c has the higher intra (and the lower inter) cosine.
local pairs_total, intra_ok, inter_ok = 0, 0, 0
for _, wd in ipairs(DECAYS) do
  for i = 1, #GAMMAS - 1 do
    local a_intra, a_inter = cell(wd, GAMMAS[i])
    local b_intra, b_inter = cell(wd, GAMMAS[i + 1])
    pairs_total = pairs_total + 1
    if a_intra > b_intra then intra_ok = intra_ok + 1 end
    if a_inter < b_inter then inter_ok = inter_ok + 1 end
  end
end
print(("smaller c gives the higher intra cosine in %d of %d neighbouring pairs, the lower inter cosine in %d of %d"):format(
  intra_ok, pairs_total, inter_ok, pairs_total))

-- Plots: one .dat per weight decay, one gnuplot script per metric; every string in the scripts
-- is a single-quoted gnuplot literal (report.gp_string).
local dir = out .. "/plots"
fs.mkdir(dir)
for si, wd in ipairs(DECAYS) do
  local rows = { "# c*sqrt(d) intra inter feature_norm c" }
  for _, g in ipairs(GAMMAS) do
    local intra, inter, norm = cell(wd, g)
    rows[#rows + 1] = ("%.10g %.10g %.10g %.10g %.10g"):format(g * math.sqrt(WIDTH), intra, inter, norm, g)
  end
  fs.write_atomic(("%s/wd%d.dat"):format(dir, si), table.concat(rows, "\n") .. "\n")
end

local gp = report.gp_string
local function plot(name, column, title)
  local png = name .. ".png"
  local tmp = ("%s.tmp.%d.png"):format(name, os.time())
  local cmds = {}
  for si, wd in ipairs(DECAYS) do
    cmds[#cmds + 1] = ("%s using 1:%d with linespoints lw 2 lc %d title %s"):format(gp(("wd%d.dat"):format(si)),
      column, si, gp(("weight decay %g"):format(wd)))
  end
  local script = { "set terminal pngcairo size 760,420 noenhanced", "set output " .. gp(tmp),
    "set title " .. gp(title), "set xlabel " .. gp("feature norm c * sqrt(d) (BN weight frozen to c)"),
    "set logscale x", "set grid", "set key below", "plot " .. table.concat(cmds, ", ") }
  fs.write_atomic(dir .. "/" .. name .. ".gp", table.concat(script, "\n") .. "\n")
  local q = "'" .. dir:gsub("'", "'\\''") .. "'" -- the folder single-quoted for sh
  if os.execute(("cd %s && gnuplot %s.gp 2>/dev/null"):format(q, name)) then
    os.rename(dir .. "/" .. tmp, dir .. "/" .. png) -- readers see no half-written PNG
    return dir .. "/" .. png
  end
  os.remove(dir .. "/" .. tmp)
  return nil
end

if os.execute("command -v gnuplot >/dev/null 2>&1") then
  for _, p in ipairs({ { "intra_cos", 2, "average intra-class cosine (higher: stronger collapse)" },
    { "inter_cos", 3, "average inter-class cosine (ideal -1/(C-1))" } }) do
    local path = plot(p[1], p[2], p[3])
    print(path and ("plot: " .. path) or ("gnuplot failed on " .. dir .. "/" .. p[1] .. ".gp"))
  end
else
  print("gnuplot not found: plot data and scripts are in " .. dir)
end
print("runs and sweep.csv: " .. out)
