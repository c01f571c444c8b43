--- collapse.dataset_cache: a prepared dataset written once, so that the demo's worker processes
-- read it (about 50 MB, tens of ms) instead of rebuilding it (Fashion-MNIST: decompress and read
-- 60,000 images, about 0.5 s and 260 MB, then take the balanced subset) in every worker.
--   dataset_cache.get(path, key, build) -> datasets, status
-- `datasets` is {train = Dataset, test = Dataset?}; `key` is a string naming everything the
-- datasets depend on (settings and dataset_cache.source_id of the source files). The file is a
-- checkpoint (collapse.save: written to a temporary name and renamed, CRC-32 checked on load)
-- holding the key and the tensors. A missing, corrupt, truncated or stale file (other key) is
-- never used: build() makes the datasets and the file is rewritten. status says which happened.
local collapse = require("collapse")
local core = require("collapse.core")
local fs = require("collapse.fs")

local cache = {}

local FORMAT = "collapse dataset cache 1"
local SPLITS = { "train", "test" }

--- "name:bytes:crc32" of each file, joined with ";": changes when a source file does.
function cache.source_id(paths)
  local parts = {}
  for i, p in ipairs(paths) do
    local s, err = fs.read(p)
    if not s then error(("dataset_cache.source_id: cannot read source file %d '%s': %s"):format(i, p, err), 2) end
    parts[i] = ("%s:%d:%08x"):format(p, #s, core.crc32(s))
  end
  return table.concat(parts, ";")
end

-- The checkpoint table of datasets {train =, test =}.
local function encode(key, datasets)
  local t = { format = FORMAT, key = key }
  for _, split in ipairs(SPLITS) do
    local ds = datasets[split]
    if ds then t[split] = { x = ds.x, y = ds.y, classes = ds.classes, name = ds.name } end
  end
  return t
end

-- datasets from a loaded checkpoint table, or nil and why it cannot be used.
local function decode(t, key)
  if type(t) ~= "table" or t.format ~= FORMAT then return nil, "not a dataset cache file" end
  if t.key ~= key then return nil, "stale (made for other settings or source files)" end
  if type(t.train) ~= "table" then return nil, "no training set" end
  local out = {}
  for _, split in ipairs(SPLITS) do
    local d = t[split]
    if d ~= nil then
      local ok, ds = pcall(collapse.data.Dataset, { x = d.x, y = d.y, classes = d.classes, name = d.name })
      if not ok then return nil, ("bad %s set: %s"):format(split, tostring(ds)) end
      out[split] = ds
    end
  end
  return out
end

--- The cached datasets, or nil and the reason the file at path cannot be used.
function cache.load(path, key)
  if not fs.exists(path) then return nil, "missing" end
  local ok, t = pcall(collapse.load, path)
  if not ok then return nil, "corrupt: " .. tostring(t) end
  return decode(t, key)
end

--- Writes datasets {train =, test =} under key to path (atomically).
function cache.save(path, key, datasets)
  collapse.save(path, encode(key, datasets))
end

--- The datasets from the cache when it holds key; otherwise build() -> {train =, test =}, written to
-- path. Returns the datasets and "hit", or "built (<why the file was not used>)".
function cache.get(path, key, build)
  if type(path) ~= "string" then error("dataset_cache.get: path must be a string, got " .. type(path), 2) end
  if type(key) ~= "string" then error("dataset_cache.get: key must be a string, got " .. type(key), 2) end
  if type(build) ~= "function" then error("dataset_cache.get: build must be a function, got " .. type(build), 2) end
  local datasets, why = cache.load(path, key)
  if datasets then return datasets, "hit" end
  datasets = build()
  if type(datasets) ~= "table" or not datasets.train then
    error("dataset_cache.get: build() must return {train = Dataset, test = Dataset?}", 2)
  end
  cache.save(path, key, datasets)
  return datasets, ("built (%s)"):format(why)
end

return cache
