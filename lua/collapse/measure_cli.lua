--- `collapse measure`: the collapse metrics of features stored in files (issue 13), streamed in
-- chunks of rows (memory O(C d)), optionally sharded, with the bound and the model-free
-- certificate when the weight decay and the loss are given. See docs/metrics.md, "From files".
local collapse = require("collapse")
local core = require("collapse.core")
local json = require("collapse.json")
local fs = require("collapse.fs")
local cli_flags = require("collapse.cli_flags")
local conventions = require("collapse.nc.conventions")

local M = {}

M.USAGE = [[
usage: collapse measure FEATURES LABELS [options]
       collapse measure --shard F1 L1 --shard F2 L2 ... [options]
  FEATURES: [N x d] float32/float64 .npy (streamed by rows) or .csv; LABELS: [N] integer .npy/.csv
  .npz: "a.npz:member" anywhere a file is named; a bare a.npz means its member "features" (FEATURES,
        --features-key K), "labels" (LABELS, --labels-key K), "classifier" / "bias" (--classifier,
        --bias); `collapse measure a.npz` takes both arrays from one archive. Members stream by rows
        (stored or deflated); the classifier and bias are read whole.
  --label-base 0|1      first class label (default 0, as numpy/PyTorch write them)
  --classes C           number of classes (default: largest label - base + 1)
  --classifier W.npy    [C x d] weight: adds the classifier metrics; --bias b.npy [C]
  --lambda L --loss X   weight decay and regularised loss: the collapse bound (docs/theory.md) and,
                        with --classifier, the model-free certificate; --no-bn: no last-layer BN
  --q 0.05              quantile fraction; --json OUT writes every number (atomically)
  --convention K=V      a metric convention (repeatable; docs/metrics.md, "Conventions"): global_mean=
                        class_means|samples, nc1=trace_over_C|trace, cdnv_variance=population|unbiased,
                        equinorm_std=population|unbiased, equiangular=absolute|signed,
                        self_duality=squared|norm, ncc_bias=with|without
]]

local function fail(msg, ...) error(("measure: " .. msg):format(...), 0) end

local FLAGS = { positionals = 2, flags = {
  { name = "shard", type = "pair", words = "FEATURES LABELS" },
  { name = "label-base", type = "integer" },
  { name = "classes", type = "integer", min = 2 },
  { name = "classifier", type = "string" },
  { name = "bias", type = "string" },
  { name = "lambda", type = "number" },
  { name = "loss", type = "number" },
  { name = "json", type = "string" },
  { name = "q", type = "number" },
  { name = "convention", type = "set" },
  { name = "features-key", type = "string" },
  { name = "labels-key", type = "string" },
  { name = "no-bn", type = "boolean" },
  { name = "help", type = "boolean" },
} }

local function is_npz(path) return path:match("%.npz$") or path:find(".npz:", 1, true) end

local function parse(args)
  local pos, flags = cli_flags.parse("measure", FLAGS, args)
  local shards = {}
  if #pos == 1 and is_npz(pos[1]) then shards[1] = { features = pos[1], labels = pos[1] }
  elseif #pos == 2 then shards[1] = { features = pos[1], labels = pos[2] }
  elseif #pos ~= 0 then fail("expected FEATURES LABELS, one ARCHIVE.npz (or --shard F L ...), got %d file name", #pos) end
  for _, p in ipairs(flags.shard or {}) do shards[#shards + 1] = { features = p[1], labels = p[2] } end
  -- a bare archive names its member by the role (--features-key / --labels-key)
  for _, sh in ipairs(shards) do
    if is_npz(sh.features) and not sh.features:find(".npz:", 1, true) then
      sh.features = sh.features .. ":" .. (flags.features_key or "features")
    end
    if is_npz(sh.labels) and not sh.labels:find(".npz:", 1, true) then
      sh.labels = sh.labels .. ":" .. (flags.labels_key or "labels")
    end
  end
  local conv = {}
  for _, kv in ipairs(flags.convention or {}) do conv[#conv + 1] = kv[1] .. "=" .. tostring(kv[2]) end
  flags.conventions = conventions.parse_assignments("measure", conv)
  return shards, flags
end

-- A small array file (the classifier) as a float64 tensor; "a.npz:member" or "a.npz" (member `what`).
local function read_array(path, what)
  local ok, t = pcall(function()
    if path:match("%.csv$") or path:match("%.csv%.gz$") then return collapse.data.csv(path, { dtype = "float64" }) end
    local archive, member = path:match("^(.*%.npz):(.+)$")
    if not archive and path:match("%.npz$") then archive, member = path, what end
    if archive then
      local members = collapse.data.npz(archive)
      if not members[member] then
        local names = {}
        for k in pairs(members) do names[#names + 1] = "'" .. k .. "'" end
        table.sort(names)
        error(("'%s' has no member '%s' (members: %s)"):format(archive, member, table.concat(names, ", ")), 0)
      end
      return members[member]
    end
    return collapse.data.npy(path)
  end)
  if not ok then fail("cannot read %s '%s': %s", what, path, tostring(t)) end
  return t:to("float64")
end

-- Two phases over the shards (docs/metrics.md, "Sharded measurement"): pass 1 per shard, merge,
-- end_pass1, pass 2 per shard from the merged state, merge.
local function measure_shards(shards, C, d, base, W, b, q, conv)
  local p1 = {}
  for i, s in ipairs(shards) do
    p1[i] = core.nc_stats(C, d, false, conv)
    if W then p1[i]:set_classifier(W, b) end
    p1[i]:pass1_files(s.features, s.labels, base)
  end
  local merged = collapse.nc.merge_stats(p1)
  for _, s in ipairs(p1) do s:free() end
  merged:end_pass1()
  local p2 = {}
  for i, s in ipairs(shards) do
    p2[i] = merged:clone()
    p2[i]:pass2_files(s.features, s.labels, base)
  end
  merged:free()
  local total = collapse.nc.merge_stats(p2)
  for _, s in ipairs(p2) do s:free() end
  local r = total:result(q)
  total:free()
  return r
end

-- The BN bound at the given loss and the model-free certificate from the measured CE (needs W).
local function certificates(m, W, b, lambda, loss, bn, q)
  local C = m.classes
  local n_min = math.huge
  for _, c in ipairs(m.class_counts) do n_min = math.min(n_min, c) end
  if lambda == 0 then
    return collapse.nc.not_applicable(0, C, loss), collapse.nc.not_applicable(0, C, nil)
  end
  local bound = collapse.nc.bound{ lambda = lambda, classes = C, loss = loss, per_class = n_min, bn = bn, q = q }
  local model_free = { guaranteed = false, reason = "needs --classifier (and --bias if the model has one)" }
  if W then
    local centred = W - W:mean(1)
    local l_hat = m.loss + lambda / 2 * (centred:dot(centred) + m.mean_sq_norm + (b and b:dot(b) or 0))
    local ok, r = pcall(collapse.nc.bound, { lambda = lambda, classes = C, loss = l_hat, per_class = n_min, q = q })
    model_free = ok and r or { guaranteed = false, reason = tostring(r):gsub("^.-nc.bound: ", "") }
    model_free.loss = l_hat
  end
  return bound, model_free
end

local ROWS = { "samples", "classes", "dim", "intra_cos", "intra_cos_min", "intra_cos_q", "inter_cos", "inter_cos_max",
  "inter_cos_q", "feature_norm", "nc1", "variability", "cdnv", "equinorm", "equiangular", "max_cos", "etf_error",
  "w_equinorm", "self_duality", "ncc_agreement", "accuracy", "loss", "trace_within", "between_energy",
  "mean_sq_norm" }

local function fmt(v) return type(v) == "number" and ("%.10g"):format(v) or tostring(v) end

local function print_bound(title, bnd)
  print(("%s: %s"):format(title, bnd.guaranteed and "guaranteed" or "not guaranteed"))
  if bnd.loss then print(("  %-30s %s"):format("loss", fmt(bnd.loss))) end
  if bnd.guaranteed then
    print(("  %-30s %s"):format("intra-class cosine >=", fmt(bnd.intra_cos_min)))
    print(("  %-30s %s"):format("inter-class cosine <=", fmt(bnd.inter_cos_max)))
    print(("  %-30s %s"):format("within/between <=", fmt(bnd.variability_max)))
  else
    print(("  %-30s %s"):format("reason", bnd.reason))
  end
end

function M.run(args)
  local shards, flags = parse(args)
  if flags.help then io.stdout:write(M.USAGE) return end
  if #shards == 0 then fail("needs FEATURES LABELS or --shard F L\n%s", M.USAGE) end
  local base = flags.label_base or 0
  if base ~= 0 and base ~= 1 then fail("--label-base must be 0 or 1, got %d", base) end
  local want = flags.classes or 0
  local q = flags.q or 0.05
  if q <= 0 or q >= 1 then fail("--q must be in (0, 1), got %s", tostring(q)) end
  local lambda, loss = flags.lambda, flags.loss
  if (lambda == nil) ~= (loss == nil) then fail("--lambda and --loss go together") end
  if lambda and lambda < 0 then fail("--lambda must be >= 0, got %s", tostring(lambda)) end
  if flags.bias and not flags.classifier then fail("--bias needs --classifier") end
  local C, d, N = want, nil, 0
  for i, s in ipairs(shards) do
    local n, dim, c = core.nc_files_info(s.features, s.labels, base, want)
    if d and dim ~= d then fail("shard %d ('%s') has %d features per row, shard 1 has %d", i, s.features, dim, d) end
    d, N = dim, N + n
    if want == 0 then C = math.max(C, c) end
  end
  if C < 2 then fail("the labels name %d class%s; at least 2 are needed", C, C == 1 and "" or "es") end
  local W = flags.classifier and read_array(flags.classifier, "classifier")
  local b = flags.bias and read_array(flags.bias, "bias")
  local conv = conventions.bits("measure", flags.conventions, 0)
  local m = measure_shards(shards, C, d, base, W, b, q, conv)
  print(("collapse measure: %d samples, %d classes, dim %d, %d shard%s"):format(N, C, d, #shards,
    #shards == 1 and "" or "s"))
  for _, k in ipairs(ROWS) do
    if m[k] ~= nil then print(("  %-30s %s"):format(k, fmt(m[k]))) end
  end
  if conv ~= 0 then
    local parts = {}
    for _, k in ipairs(conventions.KEYS) do
      if flags.conventions[k[1]] then parts[#parts + 1] = k[1] .. "=" .. flags.conventions[k[1]] end
    end
    print("  conventions: " .. table.concat(parts, ", "))
  end
  local out = { shards = shards, label_base = base, q = q, metrics = m, conventions = conventions.names(conv) }
  if lambda then
    out.lambda, out.loss = lambda, loss
    out.bound, out.model_free = certificates(m, W, b, lambda, loss, not flags.no_bn, q)
    print_bound("bound (BN, Theorem 2)", out.bound)
    print_bound("model-free certificate", out.model_free)
  end
  if flags.json then
    fs.write_atomic(flags.json, json.encode(out, { indent = 2 }) .. "\n")
    print("written to " .. flags.json)
  end
  return out
end

return M
