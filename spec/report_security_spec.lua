-- `collapse report DIR` on a crafted results folder: strings from run files (run names, grid
-- values and keys, metric values) hold gnuplot backquotes, system(...), shell $(...), quotes,
-- backslashes, newlines and <script>. Nothing may run (each would create a marker file), gnuplot
-- must still render every plot, and the page must show the text literally (escaped).
local json = require("collapse.json")
local fs = require("collapse.fs")
local report = require("collapse.report")

local tmpdir = require("support.tmp").dir

local function hostile(mark)
  return ("x`touch %s/bq`$(touch %s/sh)system('touch %s/sys') \"dq\" 'sq' \\ back\\slash\nnew line "
    .. "<script>alert(1)</script> @macro ;touch %s/semi; |touch %s/pipe"):format(mark, mark, mark, mark, mark)
end

local function run_file(name, grid, mark)
  local h = {}
  for e = 1, 3 do h[e] = { epoch = e, train_loss = 1 / e, intra_cos = 0.1 * e, inter_cos = -0.01 * e } end
  return json.encode{ finished = true, name = name, run_id = name, grid = grid, history = h,
    final = { train_loss = 0.1, train_accuracy = 1, intra_cos = 0.9, inter_cos = -0.1, nc1 = hostile(mark),
      bound = { guaranteed = false, reason = hostile(mark) } } }
end

describe("report on a crafted results folder", function()
  it("runs no command from the data and shows its text literally", function()
    local dir, mark = tmpdir(), tmpdir()
    local evil = hostile(mark)
    fs.mkdir(dir .. "/runs")
    fs.write_atomic(dir .. "/sweep.json", json.encode{ keys = { "weight_decay", evil } })
    for i, wd in ipairs({ 1e-4, 1e-3 }) do
      fs.write_atomic(("%s/runs/r%d.json"):format(dir, i),
        run_file(evil .. i, { weight_decay = wd, [evil] = evil }, mark))
    end
    local index, messages = report.build(dir)
    local listing = io.popen("ls -A " .. mark):read("a")
    assert.are.equal("", listing, "a command ran: " .. listing)
    local page = fs.read(index)
    assert.is_nil(page:find("<script>alert", 1, true))
    assert.is_truthy(page:find("&lt;script&gt;alert(1)&lt;/script&gt;", 1, true))
    assert.is_truthy(page:find("x`touch " .. mark .. "/bq`$(touch " .. mark .. "/sh)system(&#39;touch", 1, true))
    assert.is_truthy(page:find("&quot;dq&quot; &#39;sq&#39; \\ back\\slash\nnew line", 1, true))
    if os.execute("command -v gnuplot >/dev/null 2>&1") then
      -- gnuplot read every script without a syntax error (the strings are well-quoted)
      assert.are.same({}, messages)
      assert.is_true(fs.exists(dir .. "/report/intra_cos.png"))
      assert.is_true(fs.exists(dir .. "/report/epoch_train_loss.png"))
    end
  end)

  it("quotes any text as one gnuplot literal", function()
    assert.are.equal("'a''b `c` \\ d e'", report.gp_string("a'b `c` \\ d\ne"))
  end)

  it("names a corrupt sweep.json", function()
    local dir = tmpdir()
    fs.mkdir(dir .. "/runs")
    fs.write_atomic(dir .. "/runs/r.json", run_file("r", {}, dir))
    fs.write_atomic(dir .. "/sweep.json", "{ not json")
    local ok, err = pcall(report.build, dir)
    assert.is_false(ok)
    assert.is_truthy(err:find(dir .. "/sweep.json is not valid JSON", 1, true), err)
  end)
end)
