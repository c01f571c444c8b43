-- The report page in headless Chromium (Debian's chromium): loads with no console messages,
-- every plot image decodes, and a screenshot is taken (kept in the build folder for a human).
local collapse = require("collapse")
local fs = require("collapse.fs")
local models = require("collapse.models")

local browser = require("support.browser")

local function run(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

local test = browser.available and it or pending

describe("report in a browser", function()
  test("loads in headless Chromium without console errors, with its images, and is screenshotted", function()
    local dir = run("mktemp -d"):match("%S+")
    collapse.sweep{ out = dir, progress = false, seeds = { 1, 2 },
      grid = { weight_decay = { 1e-4, 1e-3, 1e-2 }, batchnorm = { true, false } },
      experiment = { data = { train = collapse.data.conic{ n = 400, seed = 2 } }, epochs = 4, measure_every = 2,
        optimizer = { "Adam", lr = 1e-3 }, progress = false,
        model = function(cfg)
          return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 32,
            batchnorm = cfg.batchnorm, rng = collapse.rng(cfg.seed) }
        end } }
    local index = require("collapse.report").build(dir)
    local profile = run("mktemp -d"):match("%S+")
    local log = dir .. "/chromium.log"
    local dom, console = browser.load(index, profile, log)
    local loaded, total = dom:match('data%-images%-loaded="(%d+)/(%d+)"')
    assert.is_not_nil(loaded, "the page's load handler did not run")
    assert.is_true(tonumber(total) >= 5, "only " .. tostring(total) .. " images on the page")
    assert.equal(total, loaded)
    assert.same({}, console)
    local shot = (os.getenv("COLLAPSE_BUILD_DIR") or dir) .. "/report-screenshot.png"
    os.remove(shot)
    browser.screenshot(index, profile, shot, "1100,1800")
    local png = fs.read(shot)
    assert.is_not_nil(png, "no screenshot written")
    assert.equal("\137PNG", png:sub(1, 4))
    assert.is_true(#png > 20000, "screenshot is suspiciously small")
    os.execute(("rm -rf '%s' '%s'"):format(dir, profile))
  end)
end)
