-- bound_explorer: how the certified collapse moves with the weight decay lambda and the excess
-- loss epsilon = L_reg - L* (docs/theory.md). For C classes it prints the optimal loss, and the
-- certified and asymptotic intra/inter-class cosine bounds over a grid, then the lambda that
-- certifies the most at a fixed epsilon (the guarantee is strongest at an intermediate lambda).
--   scripts/lua examples/bound_explorer.lua [classes]      (instant)
local nc = require("collapse").nc

local C = tonumber(arg and arg[1]) or 10
print(("C = %d classes; perfect collapse: intra = 1, inter = %.4f"):format(C, -1 / (C - 1)))
print(("%-9s %-10s %-8s %-9s %-22s %-22s"):format("lambda", "L*", "t*", "epsilon", "certified intra/inter",
  "asymptotic intra/inter"))
for _, lambda in ipairs({ 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2 }) do
  local L, t = nc.optimal_loss(lambda, C)
  for _, eps in ipairs({ 1e-6, 1e-4, 1e-2 }) do
    local b = nc.bound{ lambda = lambda, classes = C, loss = L + eps }
    local cert = b.guaranteed and ("%.5f / %.5f"):format(b.intra_cos_min, b.inter_cos_max) or "none"
    local asym = b.asymptotic and ("%.5f / %.5f"):format(b.asymptotic.intra_cos_min, b.asymptotic.inter_cos_max) or "-"
    print(("%-9g %-10.6f %-8.3f %-9g %-22s %-22s"):format(lambda, L, t, eps, cert, asym))
  end
end

-- The asymptotic intra bound is 1 - 8 eps / (lambda t*(lambda)): best where lambda t* peaks.
local best, best_lambda = -math.huge, nil
for k = 0, 400 do
  local lambda = 10 ^ (-6 + k * (math.log(1 / math.sqrt(C), 10) + 6) / 400)
  if lambda * math.sqrt(C) < 1 then
    local _, t = nc.optimal_loss(lambda, C)
    if lambda * t > best then best, best_lambda = lambda * t, lambda end
  end
end
print(("\nlambda t*(lambda) peaks at lambda = %.3g (lambda t* = %.4f): for a fixed excess loss the"
  .. " guarantee is strongest there and weakens towards 0 and towards 1/sqrt(C) = %.3g"):format(best_lambda, best,
  1 / math.sqrt(C)))
