-- kill -9 at seeded random points: a checkpoint writer (the previous file must load intact, the
-- next successful save removes the killed writer's temporary) and a sweep (a rerun finishes with
-- every run present exactly once, no temporary left). Each victim is its own process.
local collapse = require("collapse")
local json = require("collapse.json")
local fs = require("collapse.fs")

local function sh(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end
local function tmpdir() return (sh("mktemp -d"):gsub("%s+$", "")) end
local function temporaries(dir) -- names of *.tmp.* files in dir
  local out = {}
  for name in sh("ls -A " .. dir):gmatch("[^\n]+") do
    if name:find("%.tmp%.") then out[#out + 1] = name end
  end
  return out
end
-- Starts `cmd` in the background; returns its pid.
local function spawn(cmd, log)
  return assert(tonumber(sh(("%s >%s 2>&1 & echo $!"):format(cmd, log)):match("%d+")))
end
local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end
local function kill9(pid)
  os.execute("kill -9 " .. pid .. " 2>/dev/null")
  for _ = 1, 500 do
    if not alive(pid) then return end
    os.execute("sleep 0.01")
  end
  error("process " .. pid .. " survived kill -9")
end
local function wait_for(path, seconds)
  for _ = 1, seconds * 100 do
    if fs.exists(path) then return end
    os.execute("sleep 0.01")
  end
  error("timed out waiting for " .. path)
end

-- A writer that saves ~8 MB checkpoints to PATH forever, version after version.
local WRITER = [[
local collapse = require("collapse")
local path, started = arg[1], arg[2]
for v = 1, math.huge do
  collapse.save(path, { version = v, w = collapse.full({ 1000, 1000 }, v, "float64") })
  if v == 1 then io.open(started, "w"):close() end
end
]]

describe("kill -9", function()
  it("of a checkpoint writer leaves the previous file intact, the next save removes its temporary", function()
    local dir = tmpdir()
    local script = dir .. "/writer.lua"
    fs.write_atomic(script, WRITER)
    math.randomseed(12)
    local path = dir .. "/model.ckpt"
    local stale_seen = 0
    -- at least 4 kills, and more (up to 20) until one has landed inside a write (most do)
    local round = 0
    while round < 4 or (stale_seen == 0 and round < 20) do
      round = round + 1
      local started = dir .. "/started" .. round
      local pid = spawn(("scripts/lua %s %s %s"):format(script, path, started), dir .. "/writer.log")
      wait_for(started, 60)
      os.execute(("sleep %.3f"):format(math.random() * 0.3)) -- a seeded random point in some save
      -- then kill as soon as a temporary shows (a save under way), so that most kills land inside a
      -- write whatever the machine's load; a save that completes between sighting and kill is fine
      sh(("for i in $(seq 1 400); do ls -A %s | grep -q '[.]tmp[.]' && break; sleep 0.005; done"):format(dir))
      kill9(pid)
      local t = collapse.load(path) -- never half-written: some complete version
      assert.is_true(math.type(t.version) == "integer" and t.version >= 1)
      assert.are.equal(t.version, t.w:max())
      assert.are.equal(-t.version, (-t.w):max())
      stale_seen = stale_seen + #temporaries(dir)
      collapse.save(path, { version = 0, w = collapse.zeros({ 1 }) })
      assert.are.same({}, temporaries(dir), "the killed writer's temporary was not removed")
    end
    -- the loop above ends early only once a kill has landed inside a write
    assert.is_true(stale_seen > 0, "no kill hit a write: the test did not test the cleanup")
  end)

  it("keeps another live writer's temporary and removes a dead one's", function()
    local dir = tmpdir()
    local path = dir .. "/x.json"
    local dead = assert(tonumber(sh("sh -c 'echo $$'"):match("%d+"))) -- has exited
    fs.write_atomic(("%s.tmp.%d.AbC123"):format(path, dead), "partial")
    fs.write_atomic(path .. ".tmp.1.XyZ789", "pid 1 is alive") -- init: a live process
    fs.write_atomic(path .. ".tmp.notapid", "not ours")
    fs.write_atomic(path, "{}")
    local left = temporaries(dir)
    table.sort(left)
    assert.are.same({ "x.json.tmp.1.XyZ789", "x.json.tmp.notapid" }, left)
  end)

  it("of a sweep: a rerun finishes with every run present once", function()
    local dir = tmpdir()
    local spec = dir .. "/sweep.lua"
    fs.write_atomic(spec, [[
local collapse = require("collapse")
local models = require("collapse.models")
return { seeds = { 1, 2 }, progress = false, grid = { weight_decay = { 1e-4, 1e-3, 1e-2 } },
  experiment = { data = { train = collapse.data.gaussian{ classes = 3, dim = 8, per_class = 40, seed = 3 } },
    epochs = 3, batch_size = 30, metrics = { "intra_cos", "inter_cos" }, optimizer = { "SGD", lr = 0.05 },
    progress = false, model = function(cfg)
      return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 16, depth = 2,
        rng = collapse.rng(cfg.seed) }
    end } }
]])
    math.randomseed(7)
    local out = dir .. "/out"
    for _ = 1, 3 do
      local pid = spawn(("scripts/collapse run %s --out %s"):format(spec, out), dir .. "/sweep.log")
      os.execute(("sleep %.3f"):format(0.3 + math.random() * 1.2)) -- seeded random point
      kill9(pid)
    end
    assert.is_true(os.execute(("scripts/collapse run %s --out %s >%s/rerun.log 2>&1"):format(spec, out, dir)) == true,
      fs.read(dir .. "/rerun.log"))
    local files = {}
    for name in sh("ls " .. out .. "/runs"):gmatch("[^\n]+") do files[#files + 1] = name end
    assert.are.equal(6, #files, table.concat(files, " "))
    local ids = {}
    for _, name in ipairs(files) do
      assert.is_truthy(name:match("%.json$"), "stray file " .. name)
      local r = json.decode(fs.read(out .. "/runs/" .. name))
      assert.is_true(r.finished)
      assert.is_nil(ids[r.run_id], "run twice: " .. tostring(r.run_id))
      ids[r.run_id] = true
    end
    local rows = 0
    for _ in fs.read(out .. "/sweep.csv"):gmatch("\n") do rows = rows + 1 end
    assert.are.equal(7, rows) -- header + 6 runs
    assert.are.same({}, temporaries(out))
    assert.are.same({}, temporaries(out .. "/runs"))
  end)
end)
