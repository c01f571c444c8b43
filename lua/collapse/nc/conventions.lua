--- collapse.nc.conventions: the metric conventions of docs/metrics.md ("Conventions") by name.
-- A table {global_mean = "samples", nc1 = "trace", ...} becomes the COLLAPSE_NC_CONV_* bits of the
-- C core; unknown keys and values are refused with the list of valid ones. The first value of each
-- key is the default (bit unset).
local core = require("collapse.core")

local conventions = {}

-- key, its values (default first), the bit of the second value
local KEYS = {
  { "global_mean", { "class_means", "samples" }, core.NC_CONV_MEAN_SAMPLES },
  { "nc1", { "trace_over_C", "trace" }, core.NC_CONV_NC1_TRACE },
  { "cdnv_variance", { "population", "unbiased" }, core.NC_CONV_CDNV_UNBIASED },
  { "equinorm_std", { "population", "unbiased" }, core.NC_CONV_STD_UNBIASED },
  { "equiangular", { "absolute", "signed" }, core.NC_CONV_EQUIANGULAR_SIGNED },
  { "self_duality", { "squared", "norm" }, core.NC_CONV_SELF_DUALITY_NORM },
  { "ncc_bias", { "with", "without" }, core.NC_CONV_NCC_NO_BIAS },
}
conventions.KEYS = KEYS

local BY_KEY, NAMES = {}, {}
for i, k in ipairs(KEYS) do
  BY_KEY[k[1]] = k
  NAMES[i] = k[1]
end

--- conventions.bits(fn, tbl) -> integer: raises "<fn>: unknown convention 'x' (expected one of ...)"
-- or "<fn>: convention nc1 = 'x' is not one of 'trace_over_C', 'trace'". nil gives 0. level: of
-- error() (default 3: the caller of the function calling bits; 0 for command-line messages).
function conventions.bits(fn, tbl, level)
  level = level or 3
  if tbl == nil then return 0 end
  if type(tbl) ~= "table" then error(("%s: conventions must be a table, got %s"):format(fn, type(tbl)), level) end
  local bits = 0
  for key, value in pairs(tbl) do
    local k = BY_KEY[key]
    if not k then
      error(("%s: unknown convention '%s' (expected one of %s)"):format(fn, tostring(key), table.concat(NAMES, ", ")),
        level)
    end
    if value == k[2][2] then
      bits = bits | k[3]
    elseif value ~= k[2][1] then
      error(("%s: convention %s = '%s' is not one of '%s', '%s'"):format(fn, key, tostring(value), k[2][1], k[2][2]),
        level)
    end
  end
  return bits
end

--- conventions.names(bits) -> {key = value} for every key (defaults included), JSON-ready.
function conventions.names(bits)
  local t = {}
  for _, k in ipairs(KEYS) do t[k[1]] = (bits & k[3]) ~= 0 and k[2][2] or k[2][1] end
  return t
end

--- conventions.parse_assignments(fn, list) -> table: {"nc1=trace", "global_mean=samples"} (the
-- repeatable `--convention key=value` of `collapse measure`) as a conventions table, checked.
function conventions.parse_assignments(fn, list)
  local t = {}
  for _, a in ipairs(list or {}) do
    local key, value = tostring(a):match("^([%w_]+)=([%w_]+)$")
    if not key then error(("%s: --convention expects key=value, got '%s'"):format(fn, tostring(a)), 0) end
    if t[key] ~= nil and t[key] ~= value then
      error(("%s: --convention %s is given twice ('%s' and '%s')"):format(fn, key, t[key], value), 0)
    end
    t[key] = value
  end
  conventions.bits(fn, t, 0)
  return t
end

return conventions
