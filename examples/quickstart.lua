-- quickstart: the smallest tour of collapse (runs in well under a second).
--   scripts/lua examples/quickstart.lua
local collapse = require("collapse")

local g = collapse.rng(2023)                       -- seeded, same stream everywhere
local x = collapse.randn({6, 4}, { rng = g, dtype = "float64" })
local w = collapse.randn({3, 4}, { rng = g, dtype = "float64" })
local logits = x:matmul(w:t())                     -- transposes go to BLAS, no copy
print(logits)
print(("row sums: %s"):format(table.concat(logits:sum(2):totable(), ", ")))
print(("predicted classes (1-based): %s"):format(table.concat(logits:argmax(2):totable(), ", ")))

local info = collapse.blas_info()
print(("OpenBLAS kernel %s, %d thread(s)"):format(info.core, info.threads))
