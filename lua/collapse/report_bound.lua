--- The report's bound and decomposition figures (used by collapse.report): the final epsilon
-- decomposition as a stacked bar per run, and for runs measured along training (measure_every)
-- the measured intra/inter cosine with the certified and asymptotic bounds against epoch and the
-- decomposition as a stacked area. Run files are hostile data: only numbers reach the .dat files,
-- every title goes through gp_string, part names are matched against nc.decompose's own list.
local PARTS = require("collapse.decompose").PARTS

local M = {}

-- One colour per part of the chain (chain order), distinguishable side by side.
local COLOURS = { "#1f77b4", "#aec7e8", "#17becf", "#9edae5", "#2ca02c", "#ff7f0e", "#d62728", "#9467bd",
  "#c5b0d5", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f" }

M.MAX_RUNS_ALONG = 12 -- per-run figures along training: at most this many runs get them
M.MAX_BARS = 40       -- bars in the final stacked-bar figure

local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end
local function num(v) return finite(v) and ("%.10g"):format(v) or "NaN" end

-- The part values of a recorded decomposition, by chain index (nil when absent or not a number).
local function part_values(d)
  if type(d) ~= "table" or type(d.parts) ~= "table" then return nil end
  local by_name = {}
  for _, p in ipairs(d.parts) do
    if type(p) == "table" and type(p.name) == "string" and finite(p.value) then by_name[p.name] = p.value end
  end
  local out, any = {}, false
  for i, p in ipairs(PARTS) do
    out[i] = by_name[p[1]] or 0
    any = any or by_name[p[1]] ~= nil
  end
  return any and out or nil
end
M.part_values = part_values

-- Stacks the parts: positive parts upwards from 0, negative parts downwards (never hidden).
local function stack(values)
  local lo, hi, up, down = {}, {}, 0, 0
  for i, v in ipairs(values) do
    if v >= 0 then lo[i], hi[i], up = up, up + v, up + v
    else hi[i], lo[i], down = down, down + v, down + v end
  end
  return lo, hi
end

-- One data row of a stacked plot: x, epsilon, then the (low, high) ends of every part; marks in
-- used the parts that are non-zero somewhere (only those get a legend entry).
local function stacked_row(x, epsilon, values, used)
  local lo, hi = stack(values)
  local cells = { tostring(x), num(epsilon) }
  for j = 1, #PARTS do
    cells[#cells + 1] = num(lo[j]) .. " " .. num(hi[j])
    if values[j] ~= 0 then used[j] = true end
  end
  return table.concat(cells, " ")
end

-- Is the bound of a record applicable (weight decay > 0)? Old files without the flag: by lambda.
local function applicable(b, lambda)
  if type(b) ~= "table" then return false end
  if b.applicable == false or b.reason == "not applicable (weight decay 0)" then return false end
  return not (lambda == 0)
end
M.applicable = applicable

--- The certified and asymptotic values of a bound record for one side ("intra" or "inter"):
-- value or nil, and whether it is vacuous (not guaranteed, or no better than the trivial value).
function M.bound_side(b, side)
  local key, trivial = side .. "_cos_" .. (side == "intra" and "min" or "max"), side == "intra" and -1 or 1
  local function vacuous(v) return not finite(v) or (side == "intra" and v <= -1) or (side == "inter" and v >= 1) end
  local cert, asym = b[key], type(b.asymptotic) == "table" and b.asymptotic[key] or nil
  local cert_vac = b.guaranteed ~= true or b[side .. "_vacuous"] == true or vacuous(cert)
  return { cert = not cert_vac and cert or nil, cert_vacuous = cert_vac, asym = not vacuous(asym) and asym or nil,
    asym_vacuous = vacuous(asym), trivial = trivial }
end

--- A line of text in a plot's key (an invisible sample): notes such as "not applicable".
function M.key_note(gp_string, text)
  return "keyentry with points pt 0 lc rgb 'white' title " .. gp_string(text)
end

local function run_name(r, i) return r.run_id or r.name or ("run " .. i) end

-- Bar chart: one stacked bar per run of its final decomposition, epsilon as a point on each.
function M.final_bars(ctx, runs)
  local gp_string, rows, tics, used, labels = ctx.gp_string, {}, {}, {}, {}
  for i, r in ipairs(runs) do
    local d = r.final.decomposition
    local values = part_values(d)
    local na = type(d) == "table" and d.applicable == false
    if (values or na) and #tics < M.MAX_BARS then
      local x = #tics + 1
      tics[#tics + 1] = gp_string(run_name(r, i)) .. " " .. x
      if na then -- weight decay 0: no bar, a label saying why
        labels[#labels + 1] = ("set label %d %s at first %d, graph 0.5 center rotate by 90 font ',9'"):format(
          #labels + 1, gp_string("not applicable (weight decay 0)"), x)
      else
        rows[#rows + 1] = stacked_row(x, d.epsilon, values, used)
      end
    end
  end
  if #rows == 0 then return {} end
  ctx.write(ctx.outdir .. "/decomposition_final.dat", "# bar epsilon (lo hi) per part in chain order\n"
    .. table.concat(rows, "\n") .. "\n")
  local cmds = {}
  for j, p in ipairs(PARTS) do
    if used[j] then
      local c = 1 + 2 * j -- lo column; hi is c + 1
      cmds[#cmds + 1] = ("'decomposition_final.dat' using 1:(($%d+$%d)/2):($1-0.38):($1+0.38):%d:%d with boxxyerror "
        .. "fs solid 0.9 noborder lc rgb %s title %s"):format(c, c + 1, c, c + 1, gp_string(COLOURS[j]), gp_string(p[2]))
    end
  end
  cmds[#cmds + 1] = "'decomposition_final.dat' using 1:2 with points pt 7 ps 0.8 lc rgb 'black' title "
    .. gp_string("epsilon = L_reg - L* (sum of the parts)")
  local title = "where epsilon = L_reg - L* goes: final decomposition per run"
  if #tics == M.MAX_BARS and #runs > M.MAX_BARS then title = title .. (" (first %d runs)"):format(M.MAX_BARS) end
  local gp = { "set title " .. gp_string(title), "set ylabel 'slack'", "set grid ytics", "set key below font ',8'",
    ("set xrange [0.4:%g]"):format(#tics + 0.6), "set xtics rotate by -35 font ',8' (" .. table.concat(tics, ", ") .. ")",
    table.concat(labels, "\n"),
    "set terminal pngcairo size 1000,560 noenhanced", "set output 'decomposition_final.png'",
    "plot " .. table.concat(cmds, ", \\\n     ") }
  ctx.write(ctx.outdir .. "/decomposition_final.gp", table.concat(gp, "\n") .. "\n")
  return { { file = "decomposition_final.png", script = "decomposition_final.gp",
    title = "final epsilon decomposition (stacked bar per run)", section = "Where epsilon = L_reg - L* goes" } }
end

-- The measured records of a run's history that carry collapse numbers.
local function measured(r)
  local out = {}
  for _, h in ipairs(r.history or {}) do
    if type(h) == "table" and math.type(h.epoch) == "integer" and (finite(h.intra_cos) or type(h.decomposition) == "table") then
      out[#out + 1] = h
    end
  end
  return out
end

-- Measured intra/inter cosine with the certified and asymptotic bounds against epoch (one run).
local function bound_along(ctx, r, i, hs)
  local gp_string, rows, any_app, any_na = ctx.gp_string, {}, false, false
  local has = {}
  for _, h in ipairs(hs) do
    local cells = { tostring(h.epoch), num(h.intra_cos), num(h.inter_cos) }
    local app = applicable(h.bound, r.lambda)
    any_app = any_app or app
    any_na = any_na or (type(h.bound) == "table" and not app) -- a run measured without `bound` says nothing
    for _, side in ipairs({ "intra", "inter" }) do
      local s = app and M.bound_side(h.bound, side) or {}
      local vals = { s.cert, app and s.cert_vacuous and s.trivial or nil, s.asym, app and s.asym_vacuous and s.trivial or nil }
      for k = 1, 4 do
        cells[#cells + 1] = num(vals[k])
        if vals[k] then has[side .. k] = true end
      end
    end
    rows[#rows + 1] = table.concat(cells, " ")
  end
  local file = ("bound_epoch_r%d"):format(i)
  ctx.write(ctx.outdir .. "/" .. file .. ".dat", "# epoch intra inter, then per side: certified, certified vacuous "
    .. "(trivial), asymptotic, asymptotic vacuous (trivial)\n" .. table.concat(rows, "\n") .. "\n")
  local d = gp_string(file .. ".dat")
  local cmds = { d .. " using 1:2 with linespoints lw 2 pt 7 lc rgb '#1f77b4' title 'measured intra-class cosine'",
    d .. " using 1:3 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'measured inter-class cosine'" }
  local style = {
    { "with lines lw 2 dt 2 lc rgb %s title %s", "certified %s" },
    { "with points pt 2 ps 1.2 lc rgb %s title %s", "certified %s: vacuous (drawn at the trivial value %s)" },
    { "with lines lw 1.5 dt 3 lc rgb %s title %s", "asymptotic %s (epsilon -> 0 form, not a certificate)" },
    { "with points pt 6 ps 1.2 lc rgb %s title %s", "asymptotic %s: vacuous (at the trivial value %s)" } }
  for si, side in ipairs({ "intra", "inter" }) do
    local colour = si == 1 and "#1f77b4" or "#d62728"
    local what = side == "intra" and "intra >= bound" or "inter <= bound"
    for k = 1, 4 do
      if has[side .. k] then
        cmds[#cmds + 1] = ("%s using 1:%d " .. style[k][1]):format(d, 3 + (si - 1) * 4 + k, gp_string(colour),
          gp_string(style[k][2]:format(what, side == "intra" and "-1" or "1")))
      end
    end
  end
  local gp = { "set title " .. gp_string("collapse and its bound along training: " .. run_name(r, i)),
    "set xlabel 'epoch'", "set ylabel 'cosine'", "set yrange [-1.1:1.1]", "set grid", "set key below font ',8'",
    "set terminal pngcairo size 760,560 noenhanced", "set output " .. gp_string(file .. ".png") }
  if any_na and not any_app then cmds[#cmds + 1] = M.key_note(gp_string, "bound not applicable (weight decay 0): measured values only") end
  gp[#gp + 1] = "plot " .. table.concat(cmds, ", \\\n     ")
  ctx.write(ctx.outdir .. "/" .. file .. ".gp", table.concat(gp, "\n") .. "\n")
  return { file = file .. ".png", script = file .. ".gp", title = "bound along training: " .. run_name(r, i),
    section = "Along training: " .. run_name(r, i) }
end

-- The decomposition against epoch as a stacked area (negative parts below 0), epsilon as a line.
local function decomposition_along(ctx, r, i, hs)
  local gp_string, rows, used = ctx.gp_string, {}, {}
  for _, h in ipairs(hs) do
    local values = part_values(h.decomposition)
    if values then
      rows[#rows + 1] = stacked_row(h.epoch, h.decomposition.epsilon, values, used)
    end
  end
  if #rows < 2 then return nil end
  local file = ("decomposition_epoch_r%d"):format(i)
  ctx.write(ctx.outdir .. "/" .. file .. ".dat", "# epoch epsilon (lo hi) per part in chain order\n"
    .. table.concat(rows, "\n") .. "\n")
  local d, cmds = gp_string(file .. ".dat"), {}
  for j, p in ipairs(PARTS) do
    if used[j] then
      cmds[#cmds + 1] = ("%s using 1:%d:%d with filledcurves fs solid 0.85 noborder lc rgb %s title %s"):format(
        d, 1 + 2 * j, 2 + 2 * j, gp_string(COLOURS[j]), gp_string(p[2]))
    end
  end
  cmds[#cmds + 1] = d .. " using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb 'black' title "
    .. gp_string("epsilon = L_reg - L*")
  local gp = { "set title " .. gp_string("where epsilon goes along training: " .. run_name(r, i)),
    "set xlabel 'epoch'", "set ylabel 'slack'", "set grid", "set key below font ',8'",
    "set terminal pngcairo size 760,560 noenhanced", "set output " .. gp_string(file .. ".png"),
    "plot " .. table.concat(cmds, ", \\\n     ") }
  ctx.write(ctx.outdir .. "/" .. file .. ".gp", table.concat(gp, "\n") .. "\n")
  return { file = file .. ".png", script = file .. ".gp", title = "epsilon decomposition along training: " .. run_name(r, i),
    section = "Along training: " .. run_name(r, i) }
end

--- Per-run figures along training for runs with at least two measurements (at most MAX_RUNS_ALONG
-- runs); returns the plots and a note when runs were left out.
function M.along_training(ctx, runs)
  local plots, shown, eligible = {}, 0, 0
  for i, r in ipairs(runs) do
    local hs = measured(r)
    if #hs >= 2 then
      eligible = eligible + 1
      if shown < M.MAX_RUNS_ALONG then
        shown = shown + 1
        plots[#plots + 1] = bound_along(ctx, r, i, hs)
        plots[#plots + 1] = decomposition_along(ctx, r, i, hs)
      end
    end
  end
  local note = eligible > shown and ("Figures along training are shown for the first %d of %d runs measured along "
    .. "training."):format(shown, eligible) or nil
  return plots, note
end

return M
