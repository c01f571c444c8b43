--- collapse.decompose (exposed as nc.decompose): epsilon = L_reg - L* split into the slack of
-- every step of the proof chain of Theorem 1 (docs/theory.md, "Where the loss goes").
--   nc.decompose(model, dataset, lambda, {batch_size = 1024, bn_mode = "batch" | "running"})
--   nc.decompose.from_features(h, labels, {lambda =, classes =, W =, b =, gamma =, beta =})
--   nc.decompose.features(model, dataset, {batch_size =, bn_mode =}) -> h [N x d] float64, labels
-- Pure Lua over collapse tensors: the only O(N d C) work is three matrix products.
local collapse = require("collapse")
local core = require("collapse.core")

local decompose = {}

local function fail(fn, msg, ...) error(("%s: " .. msg):format(fn, ...), 3) end

-- Chain order. `holds`: when the theory guarantees the part is >= 0 (docs/theory.md).
local PARTS = {
  { "jensen_competing", "(1) Jensen over competing classes", "always" },
  { "jensen_samples", "(2) Jensen over the samples of each class", "always" },
  { "jensen_classes", "(3) Jensen over classes (weights n_c/N)", "always" },
  { "imbalance_offsets", "(3') class imbalance: weighted offsets and margins", "balanced classes (then 0)" },
  { "cauchy_schwarz", "(4) Cauchy-Schwarz alignment", "always" },
  { "weight_norm", "(5) ||W||^2 >= A: lambda/2 C ||w_bar||^2", "always" },
  { "gamma_norm", "(5) ||gamma||^2 >= E: lambda/2 (||gamma||^2 - E)", "train-mode BN over the whole set" },
  { "within_class", "(5) E >= B: lambda/2 V", "always" },
  { "imbalance_energy", "(5') class imbalance: lambda/2 (B_w - B)", "balanced classes (then 0)" },
  { "bias", "(5) lambda/2 ||b||^2", "always" },
  { "beta", "(5) lambda/2 ||beta||^2", "always" },
  { "am_gm", "(6) A + B >= 2 sqrt(AB): lambda/2 (sqrt A - sqrt B)^2", "always" },
  { "optimality", "(7) G(t) >= L* at t = sqrt(AB)", "always" },
}
decompose.PARTS = PARTS

-- log(1 + x) to full precision for small x (Lua has no log1p): Goldberg's correction.
local function log1p(x)
  local u = 1 + x
  if u == 1 then return x end
  return math.log(u) * x / (u - 1)
end

-- phi(a) = log(1 + (C-1) e^{-k a}), k = C/(C-1), without overflow for any a.
local function make_phi(C)
  local k, lc = C / (C - 1), math.log(C - 1)
  return function(a)
    local z = lc - k * a
    if z > 0 then return z + log1p(math.exp(-z)) end
    return log1p(math.exp(z))
  end
end

local function sq(t) return t and t:dot(t) or 0 end

local function check_vector(fn, name, v, len)
  if v == nil then return nil end
  if not collapse.is_tensor(v) or v:dim() ~= 1 or v:size(1) ~= len then
    fail(fn, "%s must be a 1-d tensor of length %d, got %s", name, len,
      collapse.is_tensor(v) and ("[" .. table.concat(v:shape(), " x ") .. "]") or type(v))
  end
  return v:to("float64")
end

-- Per-class counts and the one-hot matrix [N x C] of labels 1..C.
local function class_layout(fn, ytab, C)
  local counts, onehot = {}, {}
  for c = 1, C do counts[c] = 0 end
  for i, c in ipairs(ytab) do
    if math.type(c) ~= "integer" or c < 1 or c > C then
      fail(fn, "label %s at index %d is outside 1..%d", tostring(c), i, C)
    end
    counts[c] = counts[c] + 1
    local row = {}
    for j = 1, C do row[j] = 0 end
    row[c] = 1
    onehot[i] = row
  end
  for c = 1, C do
    if counts[c] == 0 then fail(fn, "class %d has no sample; every class needs at least one", c) end
  end
  return counts, core.tensor(onehot, "float64")
end

-- The geometry of the chain: centred features g, class means M, energies, the classifier's
-- centred rows U, the effective offsets o_c and the per-sample margins a_i = u_y.g_i + o_y.
local function geometry(h, Y, counts, W, b, N, C)
  local q = { N = N, classes = C }
  local hbar = h:mean(1)
  local g = h - hbar
  local inv = {}
  for c = 1, C do
    local row = {}
    for j = 1, C do row[j] = j == c and 1 / counts[c] or 0 end
    inv[c] = row
  end
  local M = core.tensor(inv, "float64"):matmul(Y:t():matmul(g))  -- C x d class means of g
  local R = g - Y:matmul(M)                                       -- within-class residuals
  q.E, q.V = g:dot(g) / N, R:dot(R) / N
  local wbar = W:mean(1)
  local U = W - wbar
  q.A, q.wbar_sq, q.W_sq = U:dot(U), wbar:dot(wbar), W:dot(W)
  local bt = b and b:totable() or nil
  local bbar = 0
  if bt then for c = 1, C do bbar = bbar + bt[c] / C end end
  local B, Bw, x, pi, o = 0, 0, 0, {}, {}
  for c = 1, C do
    local Mc, Uc = M:row(c), U:row(c)
    local m2, um = Mc:dot(Mc), Uc:dot(Mc)
    pi[c] = counts[c] / N
    B = B + m2 / C
    Bw = Bw + (pi[c] - 1 / C) * m2       -- B_w - B, exactly 0 for balanced classes
    x = x + um / C
    o[c] = Uc:dot(hbar) + (bt and bt[c] - bbar or 0)
  end
  q.B, q.B_weighted, q.a, q.pi, q.offsets = B, B + Bw, x, pi, o
  q.B_excess = Bw
  return q, g, U
end

-- Builds the parts from the geometry and the per-sample terms; checks that they add up.
local function assemble(fn, q, lambda, phi, Lstar, tstar)
  local C = q.classes
  local t = math.sqrt(q.A * q.B)
  q.t, q.L_star, q.t_star = t, Lstar, tstar
  local G = phi(t / math.sqrt(C)) + lambda * t
  local v = {
    jensen_competing = q.CE - q.phi_samples,
    jensen_samples = q.phi_samples - q.phi_classes,
    jensen_classes = q.phi_classes - phi(q.a_weighted),
    imbalance_offsets = phi(q.a_weighted) - phi(q.a),
    cauchy_schwarz = phi(q.a) - phi(t / math.sqrt(C)),
    weight_norm = lambda / 2 * C * q.wbar_sq,
    gamma_norm = lambda / 2 * (q.gamma_sq - q.E),
    within_class = lambda / 2 * q.V,
    imbalance_energy = lambda / 2 * q.B_excess,
    bias = lambda / 2 * q.b_sq,
    beta = lambda / 2 * q.beta_sq,
    am_gm = lambda / 2 * (math.sqrt(q.A) - math.sqrt(q.B)) ^ 2,
    optimality = G - Lstar,
  }
  local L_reg = q.CE + lambda / 2 * (q.W_sq + q.b_sq + q.gamma_sq + q.beta_sq)
  local epsilon = L_reg - Lstar
  local parts, sum, dominant, negative = {}, 0, nil, {}
  for i, p in ipairs(PARTS) do
    local val = v[p[1]]
    parts[i] = { name = p[1], label = p[2], holds = p[3], value = val }
    sum = sum + val
    if not dominant or val > dominant.value then dominant = parts[i] end
    if val < -1e-12 * (1 + math.abs(L_reg)) then negative[#negative + 1] = p[1] end
  end
  local residual = sum - epsilon
  -- The parts telescope exactly; only rounding (a few ulps of the O(1) terms) separates them.
  if not (math.abs(residual) <= 1e-9 * math.abs(epsilon) + 1e-13 * (1 + math.abs(L_reg) + math.abs(Lstar))) then
    fail(fn, "internal error: parts sum to %.17g, epsilon is %.17g", sum, epsilon)
  end
  return { epsilon = epsilon, L_reg = L_reg, L_star = Lstar, t_star = tstar, lambda = lambda, parts = parts,
    quantities = q, residual = residual, dominant = dominant.name, negative = negative,
    relative_epsilon = tstar > 0 and epsilon / (lambda * tstar) or math.huge }
end

local FEATURE_OPTS = { lambda = true, classes = true, W = true, b = true, gamma = true, beta = true,
  bn_mode = true }

--- decompose.from_features(h [N x d], labels 1..C, {lambda =, W = [C x d], b =, gamma =, beta =,
-- classes =}): the decomposition for features h at the input of the classifier (the output of
-- the BN whose affine parameters are gamma, beta; both nil means no BN).
function decompose.from_features(h, labels, spec)
  local fn = "nc.decompose.from_features"
  if type(spec) ~= "table" then fail(fn, "expected an options table {lambda =, W =, ...}, got %s", type(spec)) end
  for k in pairs(spec) do if not FEATURE_OPTS[k] then fail(fn, "unknown option '%s'", tostring(k)) end end
  local lambda = spec.lambda
  if type(lambda) ~= "number" or lambda ~= lambda or lambda <= 0 or lambda == math.huge then
    fail(fn, "lambda must be a positive number, got %s", tostring(lambda))
  end
  if not collapse.is_tensor(h) or h:dim() ~= 2 then fail(fn, "features must be a 2-d tensor [N x d]") end
  local N, d = h:size(1), h:size(2)
  local W = spec.W
  if not collapse.is_tensor(W) or W:dim() ~= 2 or W:size(2) ~= d then
    fail(fn, "W must be a 2-d tensor [C x %d], got %s", d, collapse.is_tensor(W) and
      ("[" .. table.concat(W:shape(), " x ") .. "]") or type(W))
  end
  local C = W:size(1)
  if C < 2 then fail(fn, "W must have at least 2 rows (classes), got %d", C) end
  if spec.classes ~= nil and spec.classes ~= C then fail(fn, "classes = %s but W has %d rows", tostring(spec.classes), C) end
  local ytab = collapse.is_tensor(labels) and labels:to("int32"):totable() or labels
  if type(ytab) ~= "table" or #ytab ~= N then
    fail(fn, "labels must be %d integers in 1..%d (one per feature row)", N, C)
  end
  h, W = h:to("float64"), W:to("float64")
  local b = check_vector(fn, "b", spec.b, C)
  local gamma, beta = check_vector(fn, "gamma", spec.gamma, d), check_vector(fn, "beta", spec.beta, d)
  local counts, Y = class_layout(fn, ytab, C)
  local q, g, U = geometry(h, Y, counts, W, b, N, C)
  q.class_counts = counts
  q.balanced = true
  for c = 2, C do if counts[c] ~= counts[1] then q.balanced = false end end
  q.gamma_sq, q.beta_sq, q.b_sq, q.has_bn = sq(gamma), sq(beta), sq(b), gamma ~= nil
  local phi = make_phi(C)
  -- Cross-entropy of W h + b (stable log-sum-exp) and the Jensen lower bound phi(a_i) per sample.
  local logits = h:matmul(W:t()):totable()
  local P = g:matmul(U:t()):totable()
  local bt = b and b:totable()
  local ce, phis, asum = 0, 0, {}
  for c = 1, C do asum[c] = 0 end
  for i = 1, N do
    local row, y, mx = logits[i], ytab[i], -math.huge
    for c = 1, C do
      if bt then row[c] = row[c] + bt[c] end
      if row[c] > mx then mx = row[c] end
    end
    local s = 0
    for c = 1, C do s = s + math.exp(row[c] - mx) end
    ce = ce + (mx + math.log(s) - row[y])
    local a = P[i][y] + q.offsets[y]
    phis = phis + phi(a)
    asum[y] = asum[y] + a
  end
  q.CE, q.phi_samples = ce / N, phis / N
  local pc, aw = 0, 0
  q.class_margins = {}
  for c = 1, C do
    local alpha = asum[c] / counts[c]
    q.class_margins[c] = alpha
    pc = pc + q.pi[c] * phi(alpha)
    aw = aw + q.pi[c] * alpha
  end
  q.phi_classes = pc
  -- For balanced classes the weighted mean margin is exactly the unweighted one (the offsets
  -- sum to zero); use it so that the imbalance part is 0, not rounding noise.
  q.a_weighted = q.balanced and q.a or aw
  for _, key in ipairs({ "CE", "E", "A", "W_sq", "gamma_sq", "beta_sq", "b_sq", "phi_samples" }) do
    local v = q[key]
    if v ~= v or v == math.huge or v == -math.huge then
      fail(fn, "features, W, b, gamma and beta must be finite (%s is %s)", key, tostring(v))
    end
  end
  local Lstar, tstar = core.optimal_loss(lambda, C)
  local r = assemble(fn, q, lambda, phi, Lstar, tstar)
  r.has_bn, r.balanced, r.bn_mode = q.has_bn, q.balanced, spec.bn_mode or (q.has_bn and "given" or "none")
  return r
end

-- The BatchNorm feeding the classifier: index of the last module with running statistics,
-- with only parameter-free modules between it and the classifier (nil if none).
local function last_bn_index(mods)
  for i = #mods - 1, 1, -1 do
    local m = mods[i]
    if m.running_mean ~= nil and m.running_var ~= nil then return i end
    if m.weight ~= nil or (m.parameters and #m:parameters() > 0) then return nil end
  end
  return nil
end

local function concat_rows(chunks, N)
  local d = chunks[1]:size(2)
  local out = core.zeros({ N, d }, "float64")
  local at = 1
  for _, t in ipairs(chunks) do
    out:narrow(1, at, t:size(1)):copy(t:to("float64"))
    at = at + t:size(1)
  end
  return out
end

local function forward_range(mods, from, to, x)
  for i = from, to do x = mods[i]:forward(x) end
  return x
end

-- BatchNorm in training mode with the statistics of the whole set (biased variance), as the
-- theory's BN: h = (z - mu) gamma / sqrt(var + eps) + beta.
local function bn_whole_set(bn, z)
  local N = z:size(1)
  local mu = z:mean(1)
  local zc = z - mu
  local var = (zc * zc):mean(1):totable()
  local gam = bn.weight and bn.weight:to("float64"):totable()
  local scale = {}
  for k = 1, #var do scale[k] = (gam and gam[k] or 1) / math.sqrt(var[k] + bn.eps) end
  local h = zc * core.tensor(scale, "float64")
  if bn.bias then h = h + bn.bias:to("float64") end
  assert(h:size(1) == N)
  return h
end

local BN_MODES = { batch = true, running = true }

--- decompose.features(model, dataset, {batch_size = 1024, bn_mode = "batch"}) -> h, labels, info:
-- the classifier's input for every sample (float64), with the last BN normalising by the whole
-- set's statistics ("batch", the theory's BN) or by its running statistics ("running", the
-- model in evaluate mode, as nc.regularized_loss). Earlier BNs use running statistics.
function decompose.features(model, dataset, opts)
  local fn = "nc.decompose"
  opts = opts or {}
  local bs, mode = opts.batch_size or 1024, opts.bn_mode or "batch"
  if math.type(bs) ~= "integer" or bs < 1 then fail(fn, "batch_size must be a positive integer, got %s", tostring(bs)) end
  if not BN_MODES[mode] then fail(fn, "bn_mode must be 'batch' or 'running', got %s", tostring(mode)) end
  if type(model) ~= "table" or type(model.modules) ~= "table" or type(model.classifier) ~= "function" then
    fail(fn, "model must be an nn.Sequential ending in an nn.Linear")
  end
  if type(dataset) ~= "table" or not dataset.x or not dataset.y then fail(fn, "dataset must be a data.Dataset") end
  local mods = model.modules
  local k = last_bn_index(mods)
  local was_training = model.training
  model:evaluate()
  local chunks, ys, N = {}, {}, 0
  local ok, err = pcall(function()
    for x, y in dataset:batches{ batch_size = bs, shuffle = false } do
      local f = (mode == "batch" and k) and forward_range(mods, 1, k - 1, x) or model:features(x)
      chunks[#chunks + 1] = f:to("float64")
      for _, v in ipairs(y:totable()) do ys[#ys + 1] = v end
      N = N + x:size(1)
    end
  end)
  local h
  if ok and N > 0 then
    ok, err = pcall(function()
      h = concat_rows(chunks, N)
      if mode == "batch" and k then
        if N < 2 then error("bn_mode 'batch' needs at least 2 samples") end
        h = bn_whole_set(mods[k], h)
        -- parameter-free modules between the BN and the classifier, in float64
        for i = k + 1, #mods - 1 do h = mods[i]:forward(h):to("float64") end
      end
    end)
  end
  if was_training and model.train then model:train() end
  if not ok then error(err, 2) end
  if N == 0 then fail(fn, "dataset is empty") end
  return h, ys, { bn = k and mods[k] or nil, bn_mode = k and mode or "none" }
end

--- nc.decompose(model, dataset, lambda, {batch_size = 1024, bn_mode = "batch" | "running"}) ->
-- {epsilon, L_reg, L_star, t_star, parts = {{name, label, holds, value}, ...}, quantities,
--  dominant, negative, bn_mode, balanced, has_bn}. See docs/theory.md, "Where the loss goes".
function decompose.decompose(model, dataset, lambda, opts)
  local fn = "nc.decompose"
  if opts ~= nil and type(opts) ~= "table" then fail(fn, "options must be a table, got %s", type(opts)) end
  for key in pairs(opts or {}) do
    if key ~= "batch_size" and key ~= "bn_mode" then fail(fn, "unknown option '%s'", tostring(key)) end
  end
  if type(lambda) ~= "number" or lambda ~= lambda or lambda <= 0 or lambda == math.huge then
    fail(fn, "lambda must be a positive number, got %s", tostring(lambda))
  end
  local h, ys, info = decompose.features(model, dataset, opts)
  local cls = model:classifier()
  local bn = info.bn
  local ok, r = pcall(decompose.from_features, h, ys, { lambda = lambda, W = cls.weight, b = cls.bias,
    gamma = bn and bn.weight or nil, beta = bn and bn.bias or nil, bn_mode = info.bn_mode })
  if not ok then error((tostring(r):gsub("nc%.decompose%.from_features", fn)), 2) end
  return r
end

return setmetatable(decompose, { __call = function(_, ...) return decompose.decompose(...) end })
