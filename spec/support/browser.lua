-- Headless Chromium (Debian's chromium) for the report specs: loads a page, returns its DOM and the
-- console messages the page logged. The browser never inherits the sanitizer run's LD_PRELOAD
-- (libasan) and never hangs a run (timeout).
local fs = require("collapse.fs")

local browser = {}

local CHROMIUM = "/usr/bin/chromium"
local LAUNCH = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS timeout 120 " .. CHROMIUM
local FLAGS = "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
  .. "--disable-component-update --disable-sync --enable-logging=stderr --v=0 --virtual-time-budget=5000"

browser.available = fs.exists(CHROMIUM)

local function run(cmd)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end

--- The DOM of file://index after its scripts ran, and the page's console lines (logged to log).
function browser.load(index, profile, log)
  local dom = run(("%s %s --user-data-dir=%s --dump-dom 'file://%s' 2>%s"):format(LAUNCH, FLAGS, profile, index, log))
  local console = {}
  for line in io.lines(log) do
    if line:find(":CONSOLE", 1, true) then console[#console + 1] = line end
  end
  return dom, console
end

--- A PNG screenshot of file://index at the given window size ("1100,1800").
function browser.screenshot(index, profile, shot, size)
  run(("%s %s --user-data-dir=%s --window-size=%s --screenshot='%s' 'file://%s' 2>/dev/null"):format(
    LAUNCH, FLAGS, profile, size, shot, index))
end

return browser
