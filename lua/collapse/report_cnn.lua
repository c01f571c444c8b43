--- collapse.report_cnn: the figures of the CNN experiments (examples/cnn_fashion.lua,
-- examples/paper_cnn.lua) in the paper's layout, as gnuplot PNGs:
--   report_cnn.collapse_figure(outdir, file, panels): per model a column, an "average" row (intra and
--     inter cosine against log weight decay, with and without BN) and a "worst" row (min intra /
--     max inter solid, the q-quantiles dashed); error bars = standard error over seeds.
--   report_cnn.layers_figure(outdir, file, panels): intra and inter cosine against depth (the
--     measured layers of nc.measure_layers in order), with and without BN.
-- Every file is written atomically (.dat and .gp through fs.write_atomic; gnuplot renders to a
-- temporary name that is renamed into place). Every string that reaches gnuplot (titles, model
-- names, file names) goes through report_cnn.gp_string: it is treated as hostile (a title could
-- carry a quote, a newline or a backquote, which gnuplot would run as a shell command).
local fs = require("collapse.fs")

local report_cnn = {}

--- A gnuplot single-quoted string literal: control characters dropped, ' doubled. Inside single
-- quotes gnuplot expands no backslash escapes and no backquote command substitution; with the
-- terminal's noenhanced option no markup is interpreted either.
function report_cnn.gp_string(s)
  s = tostring(s):gsub("[%c]", " "):gsub("'", "''")
  return "'" .. s .. "'"
end
local gp_string = report_cnn.gp_string

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function has_gnuplot() return os.execute("command -v gnuplot >/dev/null 2>&1") == true end

-- mean and standard error of a list of numbers (NaN entries skipped); nil when empty
local function mean_se(xs)
  local vals = {}
  for _, x in ipairs(xs) do if x == x then vals[#vals + 1] = x end end
  local n = #vals
  if n == 0 then return nil end
  local s = 0
  for _, x in ipairs(vals) do s = s + x end
  local m = s / n
  if n < 2 then return m, 0 end
  local v = 0
  for _, x in ipairs(vals) do v = v + (x - m) ^ 2 end
  return m, math.sqrt(v / (n - 1) / n)
end
report_cnn.mean_se = mean_se

--- Writes script (an array of lines) as <outdir>/<name>.gp and renders it to <outdir>/<name>.png
-- through a temporary file. Returns true, or false and a message (gnuplot missing or failing:
-- the .dat and .gp files stay for rendering by hand).
function report_cnn.render(outdir, name, script)
  if type(name) ~= "string" or not name:match("^[%w_%-]+$") then
    error(("report_cnn: figure name must be letters, digits, '_' or '-', got %s"):format(tostring(name)), 2)
  end
  local png, tmp = name .. ".png", name .. ".png.tmp"
  local lines = { "set terminal pngcairo noenhanced size " .. script.size, "set output " .. gp_string(tmp) }
  for _, l in ipairs(script) do lines[#lines + 1] = l end
  lines[#lines + 1] = "unset multiplot"
  lines[#lines + 1] = "set output"
  fs.write_atomic(outdir .. "/" .. name .. ".gp", table.concat(lines, "\n") .. "\n")
  if not has_gnuplot() then
    return false, ("gnuplot not found: render %s/%s.gp with `cd %s && gnuplot %s.gp`"):format(outdir, name, outdir, name)
  end
  local ok = os.execute(("cd %s && gnuplot %s 2>/dev/null"):format(shell_quote(outdir), shell_quote(name .. ".gp")))
  if not ok then
    os.remove(outdir .. "/" .. tmp)
    return false, "gnuplot failed on " .. outdir .. "/" .. name .. ".gp"
  end
  local renamed, err = os.rename(outdir .. "/" .. tmp, outdir .. "/" .. png)
  if not renamed then return false, "cannot rename the plot: " .. tostring(err) end
  return true
end

-- Writes the points {x, mean, se} of one curve to a .dat file; returns its name (or nil if empty).
local function curve_file(outdir, name, points)
  if #points == 0 then return nil end
  local lines = { "# x mean stderr" }
  for _, p in ipairs(points) do lines[#lines + 1] = ("%.10g %.10g %.10g"):format(p[1], p[2], p[3]) end
  fs.write_atomic(outdir .. "/" .. name, table.concat(lines, "\n") .. "\n")
  return name
end

-- The curves of a metric against weight decay for one setting: runs = array of {wd =, metrics},
-- means and standard errors over the runs of each weight decay.
local function by_weight_decay(runs, key)
  local groups, xs = {}, {}
  for _, r in ipairs(runs) do
    local v = r.metrics[key]
    if type(v) == "number" then
      if not groups[r.wd] then groups[r.wd] = {}; xs[#xs + 1] = r.wd end
      table.insert(groups[r.wd], v)
    end
  end
  table.sort(xs)
  local pts = {}
  for _, x in ipairs(xs) do
    local m, se = mean_se(groups[x])
    if m then pts[#pts + 1] = { x, m, se } end
  end
  return pts
end

local SETTINGS = { { bn = true, label = "BN", color = 1 }, { bn = false, label = "no BN", color = 2 } }

-- plot commands of one panel: for each (key, style, label) and each BN setting a curve
local function panel_plot(outdir, prefix, runs, curves)
  local cmds = {}
  for _, c in ipairs(curves) do
    for _, s in ipairs(SETTINGS) do
      local sel = {}
      for _, r in ipairs(runs) do if r.bn == s.bn then sel[#sel + 1] = r end end
      local file = curve_file(outdir, ("%s_%s_%s.dat"):format(prefix, c.key, s.bn and "bn" or "nobn"),
        by_weight_decay(sel, c.key))
      if file then
        cmds[#cmds + 1] = ("%s using 1:2:3 with yerrorlines lw 2 lc %d dt %d pt %d title %s"):format(gp_string(file),
          s.color, c.dash, c.point, gp_string(c.label .. ", " .. s.label))
      end
    end
  end
  return cmds
end

local AVERAGE = { { key = "intra_cos", label = "intra", dash = 1, point = 7 },
  { key = "inter_cos", label = "inter", dash = 1, point = 5 } }
local WORST = { { key = "intra_cos_min", label = "min intra", dash = 1, point = 7 },
  { key = "inter_cos_max", label = "max inter", dash = 1, point = 5 },
  { key = "intra_cos_q", label = "intra q-quantile", dash = 2, point = 6 },
  { key = "inter_cos_q", label = "inter (1-q)-quantile", dash = 2, point = 4 } }

--- panels: array of {title = "ResNet18 w4", classes = C, runs = {{wd =, bn =, metrics = {...}}, ...}}.
-- Writes <outdir>/<file>.png (and its .gp / .dat files); returns ok, message as render.
function report_cnn.collapse_figure(outdir, file, panels)
  fs.mkdir(outdir)
  local lo, hi = math.huge, -math.huge -- the weight decays, with a margin (log axis)
  for _, p in ipairs(panels) do
    for _, r in ipairs(p.runs) do
      if r.wd > 0 then lo, hi = math.min(lo, r.wd), math.max(hi, r.wd) end
    end
  end
  local xrange = lo <= hi and ("set xrange [%.10g:%.10g]"):format(lo / 1.6, hi * 1.6) or ""
  local script = { xrange, size = ("%d,%d"):format(520 * #panels, 860),
    ("set multiplot layout 2,%d"):format(#panels), "set logscale x", "set grid", "set key below",
    "set yrange [-0.35:1]", 'set xlabel "weight decay"', 'set ylabel "cosine"', "set format x '%g'",
    "set key below horizontal maxcols 2 font ',9'" }
  for row, curves in ipairs({ AVERAGE, WORST }) do
    for i, p in ipairs(panels) do
      local cmds = panel_plot(outdir, ("%s_p%d_r%d"):format(file, i, row), p.runs, curves)
      local ideal = -1 / (p.classes - 1)
      script[#script + 1] = "set title " .. gp_string((row == 1 and "average: " or "worst: ") .. p.title)
      cmds[#cmds + 1] = ("%.10g with lines lc rgb 'gray' dt 3 title %s"):format(ideal, gp_string("-1/(C-1)"))
      script[#script + 1] = "plot " .. table.concat(cmds, ", \\\n     ")
    end
  end
  return report_cnn.render(outdir, file, script)
end

--- panels: array of {title =, classes =, settings = {{bn = true|false, layers = nc.measure_layers
-- result}, ...}}: intra and inter cosine of each measured layer against its position.
function report_cnn.layers_figure(outdir, file, panels)
  fs.mkdir(outdir)
  local script = { size = ("%d,%d"):format(520 * #panels, 460), ("set multiplot layout 1,%d"):format(#panels),
    "set grid", "set key below", "set yrange [-0.35:1]", 'set xlabel "measured layer (input side to classifier)"',
    'set ylabel "cosine"', "set key below horizontal maxcols 2 font ',9'" }
  for i, p in ipairs(panels) do
    local cmds = {}
    for _, s in ipairs(p.settings) do
      local setting = s.bn and SETTINGS[1] or SETTINGS[2]
      for _, key in ipairs({ "intra_cos", "inter_cos" }) do
        local pts = {}
        for k, l in ipairs(s.layers) do
          local v = l.metrics and l.metrics[key]
          if type(v) == "number" then pts[#pts + 1] = { k, v, 0 } end
        end
        local name = curve_file(outdir, ("%s_p%d_%s_%s.dat"):format(file, i, key, s.bn and "bn" or "nobn"), pts)
        if name then
          cmds[#cmds + 1] = ("%s using 1:2 with linespoints lw 2 lc %d dt %d pt %d title %s"):format(gp_string(name),
            setting.color, key == "intra_cos" and 1 or 2, key == "intra_cos" and 7 or 5,
            gp_string((key == "intra_cos" and "intra, " or "inter, ") .. setting.label))
        end
      end
    end
    cmds[#cmds + 1] = ("%.10g with lines lc rgb 'gray' dt 3 title %s"):format(-1 / (p.classes - 1), gp_string("-1/(C-1)"))
    script[#script + 1] = "set title " .. gp_string(p.title)
    script[#script + 1] = "plot " .. table.concat(cmds, ", \\\n     ")
  end
  return report_cnn.render(outdir, file, script)
end

return report_cnn
