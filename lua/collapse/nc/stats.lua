--- collapse.nc.stats: streaming NC statistics objects that can be saved, loaded and merged, so
-- features measured in shards give the single-pass result (docs/metrics.md, "Sharded measurement").
local collapse = require("collapse")
local core = require("collapse.core")
local conventions = require("collapse.nc.conventions")

local stats = {}

local function fail(fn, msg, ...) error(("%s: " .. msg):format(fn, ...), 3) end

local OPTS = { within_spectrum = true, classifier = true, bias = true, conventions = true }

--- nc.stats(classes, dim, {within_spectrum = false, classifier = W [C x d] or nn.Linear, bias = b,
-- conventions = {...} (docs/metrics.md, "Conventions"; also :set_conventions(bits) before end_pass1)})
-- -> object with :pass1(x, y), :end_pass1(), :pass2(x, y), :result(q), :save(path), :merge(other),
-- :set_classifier(W, b), :shape(), :free(). x is [n x dim] float32/float64, y int32 labels 1..classes.
function stats.new(classes, dim, opts)
  local fn = "nc.stats"
  if math.type(classes) ~= "integer" or classes < 2 then
    fail(fn, "classes must be an integer >= 2, got %s", tostring(classes))
  end
  if math.type(dim) ~= "integer" or dim < 1 then fail(fn, "dim must be a positive integer, got %s", tostring(dim)) end
  opts = opts or {}
  if type(opts) ~= "table" then fail(fn, "options must be a table, got %s", type(opts)) end
  for k in pairs(opts) do if not OPTS[k] then fail(fn, "unknown option '%s'", tostring(k)) end end
  local s = core.nc_stats(classes, dim, opts.within_spectrum and true or false, conventions.bits(fn, opts.conventions))
  local W, b = opts.classifier, opts.bias
  if type(W) == "table" and collapse.is_tensor(W.weight) then W, b = W.weight, b or W.bias end
  if W ~= nil then s:set_classifier(W:to("float64"), b and b:to("float64") or nil) end
  return s
end

--- nc.load_stats(path) -> the object saved by :save(path) (corrupt, truncated or foreign files fail).
function stats.load(path)
  if type(path) ~= "string" then fail("nc.load_stats", "path must be a string, got %s", type(path)) end
  return core.nc_stats_load(path)
end

--- nc.merge_stats(list) -> a new object holding the merge of every entry, combined in a fixed
-- pairwise tree ((1+2)+(3+4))+... so the rounding depends on nothing but the list order. The entries
-- are left unchanged.
function stats.merge(list)
  local fn = "nc.merge_stats"
  if type(list) ~= "table" or #list == 0 then fail(fn, "expected a non-empty array of stats objects") end
  local level = {}
  for i, s in ipairs(list) do
    if type(s) ~= "userdata" or type(s.merge) ~= "function" then fail(fn, "entry %d is not a stats object", i) end
    level[i] = s
  end
  local made = {} -- partial sums made here; the caller's objects are never modified
  while #level > 1 or not made[level[1]] do
    local nxt = {}
    for i = 1, #level, 2 do
      local a = level[i]
      if not made[a] then
        a = a:clone()
        made[a] = true
      end
      if level[i + 1] then a:merge(level[i + 1]) end
      nxt[#nxt + 1] = a
    end
    level = nxt
  end
  return level[1]
end

return stats
