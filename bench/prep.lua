-- Writes the inputs every contender reads, so that all of them run on the same numbers:
--   conic_x.npy [10000 x 16] float32, conic_y.npy int32 (1..4)          (collapse.data.conic)
--   nc_h.npy [60000 x 512] float32, nc_y.npy int32 (1..10), nc_w.npy [10 x 512] float32,
--   nc_b.npy [10] float32                                                 (workload c)
--   cnn_x.npy, cnn_y.npy (the CNN workloads, at the end of this file)
-- Usage: scripts/lua bench/prep.lua DIR
local collapse = require("collapse")
local data = collapse.data

local dir = assert(arg[1], "usage: prep.lua DIR")

local conic = data.conic{ n = 10000, dim = 16, classes = 4, seed = 0, dtype = "float32" }
data.save_npy(conic.x, dir .. "/conic_x.npy")
data.save_npy(conic.y, dir .. "/conic_y.npy")

-- Random features with a class-dependent offset (so accuracy, nc1, ... are not all at chance).
local N, d, C = 60000, 512, 10
local g = collapse.rng(2024)
local h = collapse.randn({ N, d }, { rng = g, dtype = "float32" })
local means = collapse.randn({ C, d }, { rng = g, dtype = "float32" })
local perm = g:permutation(N):totable()
local labels = {}
for i = 1, N do labels[i] = perm[i] % C + 1 end
local y = collapse.tensor(labels, "int32")
h = h + means:rows(y) * 0.5
data.save_npy(h, dir .. "/nc_h.npy")
data.save_npy(y, dir .. "/nc_y.npy")
data.save_npy(collapse.randn({ C, d }, { rng = g, dtype = "float32" }) * 0.1 + means * 0.05, dir .. "/nc_w.npy")
data.save_npy(collapse.randn({ C }, { rng = g, dtype = "float32" }), dir .. "/nc_b.npy")
print("prep: wrote inputs to " .. dir)

-- The CNN workloads of issue 9 (bench/torch_cnn.py): cnn_x.npy [1024 x 3 x 32 x 32] float32
-- (standard normal), cnn_y.npy int32 (1..10).
local gc = collapse.rng(909)
data.save_npy(collapse.randn({ 1024, 3, 32, 32 }, { rng = gc, dtype = "float32" }), dir .. "/cnn_x.npy")
local cy = {}
for i = 1, 1024 do cy[i] = (i * 7) % 10 + 1 end
data.save_npy(collapse.tensor(cy, "int32"), dir .. "/cnn_y.npy")
print("prep: wrote the CNN inputs to " .. dir)
