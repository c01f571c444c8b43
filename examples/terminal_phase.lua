-- terminal_phase: drive the paper's BN MLP (depth 4, width 300, BN before the classifier) on a
-- small balanced conic set as close to the optimum L* of its regularised last-layer loss as a few
-- minutes allow, printing where the excess epsilon = L_reg - L* sits (nc.decompose), and ask the
-- certified bound (nc.bound with the measured L_reg, bn = true, per_class) about the network.
--   nice scripts/lua examples/terminal_phase.lua [--lambda 5e-3] [--per-class 200] [--seed 1]
--       [--sgd-epochs 300] [--decay-epochs 150] [--full-steps 20000] [--lr 0.05] [--full-lr 1.5]
--       [--hidden-wd 0] [--every 50] [--budget 480 (wall seconds)] [--out FILE.json] [--quick]
-- Progress every 2 x every epochs, then every 20 x every full-batch steps. Three phases: (1) SGD, momentum 0.9, constant rate; (2) the rate annealed to 0 (cosine);
-- (3) full-batch gradient steps on the regularised objective, where the train-mode BN sees the
-- whole set - exactly the BN of the theory, so the objective's last-layer part is L_reg itself.
-- L_reg, the decomposition and the measured cosines use the features of that whole-set BN
-- (bn_mode = "batch"); the evaluate-mode numbers of nc.certify are printed at the end too.
local collapse = require("collapse")
local nn, optim, nc = collapse.nn, collapse.optim, collapse.nc

local function parse(argv)
  local o = { lambda = 5e-3, per_class = 200, seed = 1, sgd_epochs = 300, decay_epochs = 150, full_steps = 20000,
    budget = 480, lr = 0.05, full_lr = 1.5, every = 50, hidden_wd = 0 }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    if a == "--quick" then
      o.per_class, o.sgd_epochs, o.decay_epochs, o.full_steps, o.every = 25, 20, 10, 200, 10
    elseif a == "--out" then o.out = argv[i + 1]; i = i + 1
    else
      local key = a:match("^%-%-([%w%-]+)$")
      key = key and key:gsub("%-", "_")
      local v = tonumber(argv[i + 1] or "")
      if not key or o[key] == nil or type(o[key]) ~= "number" or not v then
        error(("terminal_phase: bad argument '%s' (see the header of examples/terminal_phase.lua)"):format(a), 0)
      end
      o[key] = math.tointeger(v) or v
      i = i + 1
    end
    i = i + 1
  end
  return o
end

local parsed, o = pcall(parse, arg or {})
if not parsed then io.stderr:write(tostring(o), "\n"); os.exit(2) end
collapse.set_num_threads(1)
-- The budget is wall time (the run must end within minutes on a shared machine); CPU time is reported.
local clock = os.clock
local t0, wall0 = clock(), os.time()
local lambda, C = o.lambda, 4
local all = collapse.data.conic{ n = math.floor(o.per_class * C * 1.5), classes = C, dim = 16, seed = o.seed, dtype = "float64" }
local ds = all:balanced(o.per_class, collapse.rng(o.seed + 1))
local N = ds:size()
local model = collapse.models.paper_mlp{ input_dim = 16, classes = C, depth = 4, width = 300, batchnorm = true,
  dtype = "float64", rng = collapse.rng(o.seed + 2) }
local crit, g = nn.CrossEntropyLoss(), collapse.rng(o.seed + 3)
local Lstar, tstar = nc.optimal_loss(lambda, C)
print(("terminal phase: conic, C = %d, N = %d (%d per class), lambda = %g, L* = %.6f, t* = %.4f, lambda t* = %.4f")
  :format(C, N, o.per_class, lambda, Lstar, tstar, lambda * tstar))

print("phase  epoch|step  CPU time  cross-entropy  L_reg  epsilon  epsilon/(lambda t*)  the three largest parts  bound")
local history = {}
-- One progress line: epsilon, its share of lambda t*, the dominant slack and the bound.
local function progress(phase, count)
  local r = nc.decompose(model, ds, lambda)
  local sorted = {}
  for _, p in ipairs(r.parts) do sorted[#sorted + 1] = p end
  table.sort(sorted, function(a, b) return a.value > b.value end)
  local b = nc.bound{ lambda = lambda, classes = C, loss = math.max(r.L_reg, Lstar), per_class = o.per_class }
  print(("%-6s %6d  %6.1fs  CE %.3e  L_reg %.6f  eps %.3e  eps/(lt*) %.2e  %s %.1e, %s %.1e, %s %.1e  %s")
    :format(phase, count, clock() - t0, r.quantities.CE, r.L_reg, r.epsilon, r.relative_epsilon,
      sorted[1].name, sorted[1].value, sorted[2].name, sorted[2].value, sorted[3].name, sorted[3].value,
      not b.guaranteed and "no guarantee" or b.intra_vacuous and "guaranteed, vacuous"
        or ("certified intra >= %.4f"):format(b.intra_cos_min)))
  local parts = {}
  for _, p in ipairs(r.parts) do parts[p.name] = p.value end
  history[#history + 1] = { phase = phase, count = count, seconds = clock() - t0, epsilon = r.epsilon,
    L_reg = r.L_reg, parts = parts }
  io.stdout:flush()
  return r
end

local function out_of_time() return os.difftime(os.time(), wall0) > o.budget end

-- Phases 1 and 2: mini-batch SGD, constant rate then annealed.
-- Weight decay lambda on the last layer (BN and classifier: the L_reg of the theory); the hidden
-- layers get hidden_wd (default 0). Under the BN their scale does not change the function, but
-- decay shrinks them until the pre-BN variances approach BN's eps = 1e-5, and then
-- E = sum_k gamma_k^2 var_k/(var_k + eps) falls short of ||gamma||^2: with hidden_wd = 5e-4 that
-- gamma slack alone was 1e-3 here, too much for any guarantee.
local hidden_wd = o.hidden_wd
local function groups()
  local hidden, last = {}, {}
  local mods = model.modules
  for i, mod in ipairs(mods) do
    for _, p in ipairs(mod:parameters()) do
      if i >= #mods - 1 then last[#last + 1] = p else hidden[#hidden + 1] = p end
    end
  end
  return { { params = hidden, weight_decay = hidden_wd }, { params = last, weight_decay = lambda } }
end
local opt = optim.SGD(groups(), { lr = o.lr, momentum = 0.9 })
local sched = optim.CosineLR(opt, { T_max = o.decay_epochs })
local epochs_done = 0
for epoch = 1, o.sgd_epochs + o.decay_epochs do
  model:train()
  for x, y in ds:batches{ batch_size = 64, shuffle = true, rng = g } do
    crit:forward(model:forward(x), y)
    model:backward(x, crit.grad)
    opt:step()
    opt:zero_grad()
  end
  if epoch > o.sgd_epochs then sched:step() end
  epochs_done = epoch
  if epoch % (o.every * 2) == 0 or epoch == o.sgd_epochs then
    progress(epoch <= o.sgd_epochs and "sgd" or "decay", epoch)
  end
  if os.difftime(os.time(), wall0) > 0.4 * o.budget then break end -- leave time for phase 3
end

-- Phase 3: full-batch steps. The whole set in one batch: the BN statistics are the whole set's.
local full = optim.SGD(groups(), { lr = o.full_lr, momentum = 0.9 })
local steps_done = 0
local X, Y = ds.x, ds.y
for step = 1, o.full_steps do
  if out_of_time() then break end
  model:train()
  crit:forward(model:forward(X), Y)
  model:backward(X, crit.grad)
  full:step()
  full:zero_grad()
  steps_done = step
  if step % (o.every * 20) == 0 then progress("full", step) end
end

-- The verdict: the bound at the measured L_reg against the measured intra-class cosine, both
-- with the whole-set BN the theory speaks about.
local r = progress("final", steps_done)
local h, ys = nc.decompose.features(model, ds)
local m = nc.measure(h, ys, { classes = C })
local b = nc.bound{ lambda = lambda, classes = C, loss = math.max(r.L_reg, Lstar), per_class = o.per_class }
local certified = b.guaranteed and not b.intra_vacuous and m.intra_cos >= b.intra_cos_min
-- Evaluate mode (running statistics, as nc.regularized_loss / nc.certify): not the theory's BN,
-- so its L_reg may even fall below L* (then the gamma part is negative).
local re = nc.decompose(model, ds, lambda, { bn_mode = "running" })
local re_gamma = 0
for _, p in ipairs(re.parts) do if p.name == "gamma_norm" then re_gamma = p.value end end
local wall, cpu = os.difftime(os.time(), wall0), clock() - t0
print(("\nparts of epsilon = %.4e (chain order):"):format(r.epsilon))
for _, p in ipairs(r.parts) do print(("  %-18s %12.4e  %5.1f%%"):format(p.name, p.value, 100 * p.value / r.epsilon)) end
print(("measured (whole-set BN): intra %.5f, inter %.5f (ideal %.5f)"):format(m.intra_cos, m.inter_cos, -1 / (C - 1)))
if b.guaranteed then
  print(("certified: intra >= %.5f%s, inter <= %.5f; measured above the bound: %s"):format(b.intra_cos_min,
    b.intra_vacuous and " (vacuous)" or "", b.inter_cos_max, tostring(m.intra_cos >= b.intra_cos_min)))
else
  local dom = 0
  for _, p in ipairs(r.parts) do if p.name == r.dominant then dom = p.value end end
  print(("no guarantee (%s): smallest epsilon %.4e = %.3e lambda t*, dominant slack %s (%.1f%%)"):format(b.reason,
    r.epsilon, r.relative_epsilon, r.dominant, 100 * dom / r.epsilon))
end
print(("evaluate mode (running statistics): L_reg %.6f, epsilon %.3e, gamma part %.3e%s"):format(re.L_reg,
  re.epsilon, re_gamma, re.epsilon < 0 and " (below L*: the running statistics are not the whole-set BN)" or ""))
print(("outcome: %s; %d SGD epochs, %d full-batch steps, %.0f s wall, %.0f s CPU"):format(
  certified and "CERTIFIED (guaranteed, non-vacuous, measured above it)" or "not certified", epochs_done, steps_done,
  wall, cpu))

if o.out then
  local parts = {}
  for _, p in ipairs(r.parts) do parts[#parts + 1] = { name = p.name, value = p.value } end
  local result = { lambda = lambda, classes = C, per_class = o.per_class, seed = o.seed, L_reg = r.L_reg,
    L_star = Lstar, t_star = tstar, epsilon = r.epsilon, relative_epsilon = r.relative_epsilon, parts = parts,
    dominant = r.dominant, intra_cos = m.intra_cos, inter_cos = m.inter_cos, certified = certified,
    guaranteed = b.guaranteed, reason = b.reason, intra_cos_min = b.guaranteed and b.intra_cos_min or nil,
    inter_cos_max = b.guaranteed and b.inter_cos_max or nil, sgd_epochs = epochs_done, full_steps = steps_done,
    wall_seconds = wall, cpu_seconds = cpu, hidden_wd = hidden_wd, history = history, running = { L_reg = re.L_reg, epsilon = re.epsilon, gamma_norm = re_gamma } }
  require("collapse.fs").write_atomic(o.out, collapse.json.encode(result, { indent = 1 }) .. "\n")
  print("wrote " .. o.out)
end
