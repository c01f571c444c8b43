--- collapse report DIR: an offline HTML page with tables and gnuplot plots for a run or sweep.
-- Writes DIR/report/index.html, the plot data (*.dat) and gnuplot scripts (*.gp); renders the
-- scripts to PNG when gnuplot is installed, and otherwise says how to render them.
local json = require("collapse.json")
local fs = require("collapse.fs")
local rbound = require("collapse.report_bound")

local report = {}

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function list_json(dir)
  local p = io.popen("ls -1 " .. shell_quote(dir) .. " 2>/dev/null")
  local out = {}
  if p then
    for name in p:lines() do
      if name:match("%.json$") and name ~= "sweep.json" then out[#out + 1] = dir .. "/" .. name end
    end
    p:close()
  end
  table.sort(out)
  return out
end

local function load_runs(dir)
  local runs = {}
  local files = list_json(dir .. "/runs")
  if #files == 0 then files = list_json(dir) end
  for _, f in ipairs(files) do
    local ok, r = pcall(json.decode, fs.read(f) or "")
    -- a results folder is data from anywhere: keep only runs of the expected shape
    if ok and type(r) == "table" and r.finished and type(r.final) == "table" then
      r.file = f
      r.grid = type(r.grid) == "table" and r.grid or {}
      r.history = type(r.history) == "table" and r.history or {}
      if type(r.final.bound) ~= "table" then r.final.bound = nil end
      if type(r.final.decomposition) ~= "table" then r.final.decomposition = nil end
      runs[#runs + 1] = r
    end
  end
  return runs
end

local function html_escape(s)
  return (tostring(s):gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;"):gsub('"', "&quot;"):gsub("'", "&#39;"))
end

--- A gnuplot string literal for any text. Single-quoted strings are the only ones gnuplot takes
-- literally: no backquote command substitution, no backslash escapes, no @macros; a quote is
-- doubled. Control characters (a newline would end the command) become spaces.
local function gp_string(s)
  return "'" .. tostring(s):gsub("%c", " "):gsub("'", "''") .. "'"
end
report.gp_string = gp_string

-- A table cell: numbers formatted, anything else (a string from a crafted file) escaped.
local function fmt(v)
  if v == nil then return "" end
  if type(v) == "number" then return ("%.4g"):format(v) end
  return html_escape(tostring(v))
end

local function has_gnuplot()
  return os.execute("command -v gnuplot >/dev/null 2>&1") == true
end

-- mean and standard error of a list
local function mean_se(xs)
  local n, s = #xs, 0
  for _, x in ipairs(xs) do s = s + x end
  local m = s / n
  if n < 2 then return m, 0 end
  local v = 0
  for _, x in ipairs(xs) do v = v + (x - m) ^ 2 end
  return m, math.sqrt(v / (n - 1) / n)
end

local PLOT_METRICS = {
  { key = "intra_cos", title = "average intra-class cosine", bound = "intra_cos_min", side = "intra" },
  { key = "inter_cos", title = "average inter-class cosine", bound = "inter_cos_max", side = "inter" },
  { key = "ce", title = "training loss (cross-entropy)" },
  { key = "feature_norm", title = "last-layer feature norm" },
  { key = "regularized_loss", title = "regularised last-layer loss" },
  { key = "test_accuracy", title = "test accuracy" },
}

local function write(path, s) fs.write_atomic(path, s) end

-- The bound columns of one point of a sweep plot (the runs of its seeds): 1 the certified bound
-- (mean over seeds, only when every seed's is guaranteed and non-vacuous), 2 the trivial value
-- when some seed's is vacuous (drawn as a marker, never as a pass), 3 and 4 the same for the
-- asymptotic form; not_applicable when some seed ran at weight decay 0.
local function bound_columns(point_runs, side)
  local out, cert, asym, n = {}, {}, {}, 0
  local cert_vac, asym_vac, trivial = false, false, side == "intra" and -1 or 1
  for _, r in ipairs(point_runs) do
    local b = r.final.bound
    if type(b) == "table" and rbound.applicable(b, r.lambda) then
      n = n + 1
      local s = rbound.bound_side(b, side)
      if s.cert then cert[#cert + 1] = s.cert else cert_vac = true end
      if s.asym then asym[#asym + 1] = s.asym else asym_vac = true end
    elseif type(b) == "table" then out.not_applicable = true end
  end
  if n == 0 then return out end
  out[1] = not cert_vac and mean_se(cert) or nil
  out[2] = cert_vac and trivial or nil
  out[3] = not asym_vac and mean_se(asym) or nil
  out[4] = asym_vac and trivial or nil
  return out
end

local BOUND_STYLES = {
  { "with lines dt 2 lw 2", "certified bound, %s" },
  { "with points pt 2 ps 1.3", "certified bound vacuous, %s (drawn at the trivial value %s)" },
  { "with lines dt 3 lw 1.5", "asymptotic bound (epsilon -> 0 form, not a certificate), %s" },
  { "with points pt 6 ps 1.3", "asymptotic bound vacuous, %s (at the trivial value %s)" },
}

-- Plots of final metrics against x_key (log axis), one series per value of the other grid keys,
-- mean +- standard error over seeds; the certified bound (mean over seeds, where guaranteed)
-- drawn as a dashed line of the same series.
local function sweep_plots(outdir, runs, keys, x_key)
  local series_keys = {}
  for _, k in ipairs(keys) do if k ~= x_key then series_keys[#series_keys + 1] = k end end
  local groups, order = {}, {}
  local numeric = {}
  for _, r in ipairs(runs) do
    if type(r.grid[x_key]) == "number" then numeric[#numeric + 1] = r end
  end
  runs = numeric
  for _, r in ipairs(runs) do
    local parts = {}
    for _, k in ipairs(series_keys) do parts[#parts + 1] = tostring(k) .. "=" .. tostring(r.grid[k]) end
    local name = #parts > 0 and table.concat(parts, " ") or "all"
    if not groups[name] then groups[name] = {}; order[#order + 1] = name end
    local x = r.grid[x_key]
    groups[name][x] = groups[name][x] or {}
    table.insert(groups[name][x], r)
  end
  table.sort(order)
  local xmin, xmax = math.huge, -math.huge
  for _, r in ipairs(runs) do
    local x = r.grid[x_key]
    if type(x) == "number" and x > 0 then xmin, xmax = math.min(xmin, x), math.max(xmax, x) end
  end
  local xrange = xmin < xmax and ("set xrange [%g:%g]"):format(xmin / 1.5, xmax * 1.5) or ""
  local plots = {}
  for _, pm in ipairs(PLOT_METRICS) do
    local any, not_applicable = false, false
    local gp = { "set title " .. gp_string(pm.title), "set xlabel " .. gp_string((x_key:gsub("_", " "))),
      "set logscale x", "set key below", "set grid", "set offsets 0, 0, graph 0.05, graph 0.05",
      xrange, "set terminal pngcairo size 760,420 noenhanced", "set output " .. gp_string(pm.key .. ".png") }
    local plot_cmds = {}
    for si, name in ipairs(order) do
      local dat, has_bound = {}, {}
      local xs = {}
      for x in pairs(groups[name]) do xs[#xs + 1] = x end
      table.sort(xs)
      for _, x in ipairs(xs) do
        local vals = {}
        for _, r in ipairs(groups[name][x]) do
          local v = r.final[pm.key]
          if type(v) == "number" then vals[#vals + 1] = v end
        end
        if #vals > 0 then
          local m, se = mean_se(vals)
          local bcols = pm.bound and bound_columns(groups[name][x], pm.side) or {}
          for k = 1, 4 do if bcols[k] then has_bound[k] = true end end
          if pm.bound and bcols.not_applicable then not_applicable = true end
          local cells = { ("%.10g %.10g %.10g"):format(x, m, se) }
          for k = 1, 4 do cells[#cells + 1] = bcols[k] and ("%.10g"):format(bcols[k]) or "NaN" end
          dat[#dat + 1] = table.concat(cells, " ")
          any = true
        end
      end
      local file = ("%s_s%d.dat"):format(pm.key, si)
      write(outdir .. "/" .. file, "# " .. x_key:gsub("%c", " ") .. " mean stderr certified certified_vacuous "
        .. "asymptotic asymptotic_vacuous\n" .. table.concat(dat, "\n") .. "\n")
      plot_cmds[#plot_cmds + 1] = ("%s using 1:2:3 with yerrorlines lw 2 lc %d title %s"):format(gp_string(file), si,
        gp_string(name))
      for k, st in ipairs(BOUND_STYLES) do
        if has_bound[k] then
          plot_cmds[#plot_cmds + 1] = ("%s using 1:%d %s lc %d title %s"):format(gp_string(file), 3 + k, st[1], si,
            gp_string(st[2]:format(name, pm.side == "intra" and "-1" or "1")))
        end
      end
    end
    if any then
      if not_applicable then plot_cmds[#plot_cmds + 1] = rbound.key_note(gp_string, "weight decay 0: bound not applicable (not drawn)") end
      gp[#gp + 1] = "plot " .. table.concat(plot_cmds, ", \\\n     ")
      write(outdir .. "/" .. pm.key .. ".gp", table.concat(gp, "\n") .. "\n")
      plots[#plots + 1] = { file = pm.key .. ".png", script = pm.key .. ".gp", title = pm.title }
    end
  end
  return plots
end

-- Metric against epoch for each run (a run report, or the histories of a sweep).
local function epoch_plots(outdir, runs)
  local plots = {}
  for _, key in ipairs({ "train_loss", "train_accuracy", "intra_cos", "inter_cos", "feature_norm" }) do
    local cmds, any = {}, false
    for i, r in ipairs(runs) do
      local dat = {}
      for _, h in ipairs(r.history or {}) do
        if type(h) == "table" and math.type(h.epoch) == "integer" and type(h[key]) == "number" then
          dat[#dat + 1] = ("%d %.10g"):format(h.epoch, h[key])
        end
      end
      if #dat > 1 then
        any = true
        local file = ("epoch_%s_r%d.dat"):format(key, i)
        write(outdir .. "/" .. file, table.concat(dat, "\n") .. "\n")
        cmds[#cmds + 1] = ("%s using 1:2 with linespoints title %s"):format(gp_string(file),
          gp_string(r.run_id or r.name or ("run " .. i)))
      end
    end
    if any and #cmds <= 24 then
      local gp = { "set title " .. gp_string(key:gsub("_", " ") .. " by epoch"), "set xlabel 'epoch'", "set grid",
        "set key outside right font ',8'", "set terminal pngcairo size 1000,440 noenhanced",
        "set output " .. gp_string("epoch_" .. key .. ".png"), "plot " .. table.concat(cmds, ", \\\n     ") }
      write(outdir .. "/epoch_" .. key .. ".gp", table.concat(gp, "\n") .. "\n")
      plots[#plots + 1] = { file = "epoch_" .. key .. ".png", script = "epoch_" .. key .. ".gp",
        title = key:gsub("_", " ") .. " by epoch" }
    end
  end
  return plots
end

local TABLE_COLS = { "train_loss", "train_accuracy", "intra_cos", "inter_cos", "feature_norm", "nc1", "etf_error",
  "regularized_loss", "test_accuracy" }

-- The grid keys of a sweep folder (sweep.json), [] for a single run; a corrupt file names itself.
local function sweep_keys(dir)
  local path = dir .. "/sweep.json"
  local text = fs.read(path)
  if not text then return {} end
  local ok, s = pcall(json.decode, text)
  if not ok then error(("report: %s is not valid JSON: %s"):format(path, s), 0) end
  if type(s) ~= "table" or (s.keys ~= nil and type(s.keys) ~= "table") then
    error(("report: %s: expected an object with a list of grid keys"):format(path), 0)
  end
  local keys = {}
  for i, k in ipairs(s.keys or {}) do
    if type(k) ~= "string" then error(("report: %s: grid key %d is a %s, expected a string"):format(path, i, type(k)), 0) end
    keys[i] = k
  end
  return keys
end

-- Renders every plot script with gnuplot (the scripts hold only single-quoted literals, see
-- gp_string; paths go through shell_quote). Returns whether all rendered and the messages.
local function render(outdir, plots)
  local messages = {}
  if not has_gnuplot() then
    messages[1] = ("gnuplot not found: the plot data and scripts are in %s; render them with "
      .. "`apt-get install gnuplot-nox && cd %s && for f in *.gp; do gnuplot \"$f\"; done`"):format(outdir, outdir)
    return false, messages
  end
  local rendered = true
  for _, p in ipairs(plots) do
    local ok = os.execute(("cd %s && gnuplot %s 2>/dev/null"):format(shell_quote(outdir), shell_quote(p.script)))
    if not ok then rendered = false; messages[#messages + 1] = "gnuplot failed on " .. p.script end
  end
  return rendered, messages
end

local STYLE = "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
  .. "font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}th{background:#eee}"
  .. "figure{display:inline-block;width:48%;margin:0.5%;vertical-align:top}"
  .. "img{width:100%;border:1px solid #ddd}.bad{color:#a00}</style>"

-- Marks the page with how many images loaded (read by the browser test, shown when some fail).
local IMAGE_CHECK = [[<script>
window.addEventListener("load", function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  document.body.setAttribute("data-images-loaded", ok + "/" + imgs.length);
  if (ok < imgs.length) {
    var p = document.createElement("p");
    p.className = "bad";
    p.textContent = (imgs.length - ok) + " plot image(s) could not be loaded.";
    document.body.insertBefore(p, document.body.firstChild);
  }
});
</script>]]

-- The final-values table: every value from the run files is escaped (fmt, html_escape).
local function final_table(runs)
  local h = { "<h2>Final values</h2><table><tr><th>run</th>" }
  for _, c in ipairs(TABLE_COLS) do h[#h + 1] = "<th>" .. c .. "</th>" end
  h[#h + 1] = "<th>certified intra &ge;</th><th>certified inter &le;</th><th>bound</th>"
    .. "<th>epsilon = L_reg - L*</th><th>largest slack</th></tr>"
  for _, r in ipairs(runs) do
    local row = { "<tr><td>" .. html_escape(r.run_id or r.name or "run") .. "</td>" }
    for _, c in ipairs(TABLE_COLS) do row[#row + 1] = "<td>" .. fmt(r.final[c]) .. "</td>" end
    local b = r.final.bound or {}
    row[#row + 1] = "<td>" .. (b.guaranteed and fmt(b.intra_cos_min) or "") .. "</td>"
    row[#row + 1] = "<td>" .. (b.guaranteed and fmt(b.inter_cos_max) or "") .. "</td>"
    row[#row + 1] = "<td>" .. html_escape(b.guaranteed and "guaranteed" or (b.reason or "")) .. "</td>"
    local d = r.final.decomposition or {}
    row[#row + 1] = "<td>" .. fmt(d.epsilon) .. "</td><td>" .. fmt(d.dominant or d.reason) .. "</td></tr>"
    h[#h + 1] = table.concat(row)
  end
  h[#h + 1] = "</table>"
  return table.concat(h, "\n")
end

local function page(dir, runs, x_key, plots, rendered, messages)
  local h = { "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
    "<title>collapse report: " .. html_escape(dir) .. "</title>", STYLE, "</head><body>", "<h1>collapse report</h1>",
    ("<p>%d run(s) from <code>%s</code>%s.</p>"):format(#runs, html_escape(dir),
      x_key and (", plotted against " .. html_escape(x_key)) or "") }
  for _, m in ipairs(messages) do h[#h + 1] = '<p class="bad">' .. html_escape(m) .. "</p>" end
  if rendered then
    local section
    for _, p in ipairs(plots) do
      if p.section ~= section then -- a heading per group, so that the pairs of a run share a row
        section = p.section
        h[#h + 1] = "<h2>" .. html_escape(section or "Plots") .. "</h2>"
      end
      h[#h + 1] = ('<figure><img src="%s" alt="%s"><figcaption>%s</figcaption></figure>'):format(
        html_escape(p.file), html_escape(p.title), html_escape(p.title))
    end
  end
  h[#h + 1] = final_table(runs)
  if fs.exists(dir .. "/sweep.csv") then
    h[#h + 1] = '<p>All numbers: <a href="../sweep.csv">sweep.csv</a>.</p>'
  end
  h[#h + 1] = IMAGE_CHECK
  h[#h + 1] = "</body></html>"
  return table.concat(h, "\n") .. "\n"
end

--- Builds DIR/report/index.html. Returns the path and a list of messages. Everything in DIR is
-- treated as hostile data: no string from it reaches a shell or gnuplot unquoted, or the page unescaped.
function report.build(dir, opts)
  opts = opts or {}
  if type(dir) ~= "string" or dir == "" then
    error("report.build: bad argument #1 (folder path expected, got " .. type(dir) .. ")", 2)
  end
  local runs = load_runs(dir)
  if #runs == 0 then
    error(("report: no finished run found in '%s' (expected run JSON files or a sweep folder)"):format(dir), 0)
  end
  local keys = sweep_keys(dir)
  local outdir = dir .. "/report"
  fs.mkdir(outdir)
  local x_key = opts.x
  if not x_key then
    for _, k in ipairs(keys) do if k == "weight_decay" then x_key = k end end
  end
  local plots = {}
  if x_key then
    for _, p in ipairs(sweep_plots(outdir, runs, keys, x_key)) do plots[#plots + 1] = p end
  end
  for _, p in ipairs(epoch_plots(outdir, runs)) do plots[#plots + 1] = p end
  local ctx = { outdir = outdir, gp_string = gp_string, write = write }
  for _, p in ipairs(rbound.final_bars(ctx, runs)) do plots[#plots + 1] = p end
  local along, note = rbound.along_training(ctx, runs)
  for _, p in ipairs(along) do plots[#plots + 1] = p end
  local rendered, messages = render(outdir, plots)
  if note then table.insert(messages, 1, note) end
  local index = outdir .. "/index.html"
  write(index, page(dir, runs, x_key, plots, rendered, messages))
  return index, messages
end

return report
