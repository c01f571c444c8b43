--- collapse.data: datasets, batching and the paper's synthetic generators.
local collapse = require("collapse")
local core = require("collapse.core")
local checks = require("collapse.checks")
local Module = require("collapse.nn.Module")

local data = {}

local fail, check_tensor = checks.fail, checks.tensor -- errors blame the user's line

local Dataset = {}
Dataset.__index = Dataset
Dataset.__name = "collapse.Dataset"

--- data.Dataset{x = tensor [n x ...], y = int32 labels in 1..C, classes = C}
function data.Dataset(spec)
  local fn = "Dataset"
  if type(spec) ~= "table" then fail(fn, "expected a table {x =, y =, classes =}, got %s", type(spec)) end
  for k in pairs(spec) do
    if k ~= "x" and k ~= "y" and k ~= "classes" and k ~= "name" then fail(fn, "unknown field '%s'", tostring(k)) end
  end
  check_tensor(fn, "x", spec.x)
  local y = checks.labels(fn, spec.y, nil, "y")
  if y:dim() ~= 1 then fail(fn, "y must be 1-d, got %d dimensions", y:dim()) end
  local n = spec.x:dim() > 0 and spec.x:size(1) or 0
  if y:size(1) ~= n then fail(fn, "x has %d samples but y has %d labels", n, y:size(1)) end
  local labels = y:totable()
  local lo, hi = math.huge, -math.huge
  for i = 1, #labels do
    local v = labels[i]
    if v < lo then lo = v end
    if v > hi then hi = v end
  end
  local classes = spec.classes or (n > 0 and hi or 0)
  if math.type(classes) ~= "integer" or classes < 1 then fail(fn, "classes must be a positive integer, got %s", tostring(classes)) end
  if n > 0 and (lo < 1 or hi > classes) then
    for i = 1, #labels do
      if labels[i] < 1 or labels[i] > classes then
        fail(fn, "label %d at index %d is outside 1..%d", labels[i], i, classes)
      end
    end
  end
  return setmetatable({ x = spec.x, y = y, classes = classes, name = spec.name }, Dataset)
end

function Dataset:size() return #self.y end

function Dataset:__tostring()
  local shape = self.x:shape()
  return ("collapse.Dataset%s: %d samples, x %s [%s], %d classes"):format(
    self.name and (" '" .. self.name .. "'") or "", self:size(), self.x:dtype(), table.concat(shape, " x "), self.classes)
end

--- Counts per class (a Lua array of length classes).
function Dataset:class_counts()
  local counts = {}
  for c = 1, self.classes do counts[c] = 0 end
  for _, v in ipairs(self.y:totable()) do counts[v] = counts[v] + 1 end
  return counts
end

--- The samples at the given 1-based positions (int32 tensor or Lua array) as a new Dataset.
function Dataset:subset(indices)
  return setmetatable({ x = self.x:rows(indices), y = self.y:rows(indices), classes = self.classes,
    name = self.name }, Dataset)
end

--- per_class random samples of every class (error if a class has fewer).
function Dataset:balanced(per_class, rng)
  if math.type(per_class) ~= "integer" or per_class < 1 then
    fail("balanced", "per_class must be a positive integer, got %s", tostring(per_class))
  end
  rng = rng or collapse.rng(0)
  local by_class = {}
  for c = 1, self.classes do by_class[c] = {} end
  local perm = rng:permutation(self:size()):totable()
  local labels = self.y:totable()
  for _, i in ipairs(perm) do
    local list = by_class[labels[i]]
    if #list < per_class then list[#list + 1] = i end
  end
  local chosen = {}
  for c = 1, self.classes do
    if #by_class[c] < per_class then
      fail("balanced", "class %d has %d samples, fewer than per_class = %d", c, #by_class[c], per_class)
    end
    for _, i in ipairs(by_class[c]) do chosen[#chosen + 1] = i end
  end
  table.sort(chosen)
  return self:subset(chosen)
end

--- Random split: returns (first, second) with round(fraction * n) samples in the first.
function Dataset:split(fraction, rng)
  if type(fraction) ~= "number" or fraction <= 0 or fraction >= 1 then
    fail("split", "fraction must be in (0, 1), got %s", tostring(fraction))
  end
  rng = rng or collapse.rng(0)
  local n = self:size()
  local perm = rng:permutation(n)
  local k = math.floor(fraction * n + 0.5)
  return self:subset(perm:narrow(1, 1, k)), self:subset(perm:narrow(1, k + 1, n - k))
end

--- Iterator over (x, y) mini-batches: for x, y in ds:batches{batch_size = 128, shuffle = true, rng = g} do
-- Shuffled batches are gathered into two buffers that the iterator reuses (no allocation per
-- step): each (x, y) is valid until the next iteration; clone() one to keep it, or pass
-- reuse = false for fresh tensors. Unshuffled batches are views of the dataset.
function Dataset:batches(opts)
  opts = opts or {}
  for k in pairs(opts) do
    if k ~= "batch_size" and k ~= "shuffle" and k ~= "rng" and k ~= "drop_last" and k ~= "reuse" then
      fail("batches", "unknown option '%s' (batch_size, shuffle, rng, drop_last, reuse)", tostring(k))
    end
  end
  local bs = opts.batch_size or 128
  if math.type(bs) ~= "integer" or bs < 1 then fail("batches", "batch_size must be a positive integer, got %s", tostring(bs)) end
  local n = self:size()
  local order
  if opts.shuffle == nil or opts.shuffle then
    order = (opts.rng or collapse.rng(0)):permutation(n)
  end
  local reuse = opts.reuse ~= false
  local start = 1
  local x, y = self.x, self.y
  local xshape = x:dim() > 0 and x:shape() or nil
  local bx, by -- reused buffers, (re)made when the batch length changes (the last, short batch)
  return function()
    if start > n then return nil end
    local len = math.min(bs, n - start + 1)
    if opts.drop_last and len < bs then return nil end
    local rx, ry
    if order and reuse then
      if not bx or bx:size(1) ~= len then
        xshape[1] = len
        bx, by = core.zeros(xshape, x:dtype()), core.zeros({ len }, y:dtype())
      end
      rx, ry = x:rows_into(bx, order, start, len), y:rows_into(by, order, start, len)
    elseif order then
      local idx = order:narrow(1, start, len)
      rx, ry = x:rows(idx), y:rows(idx)
    else
      rx, ry = x:narrow(1, start, len), y:narrow(1, start, len)
    end
    start = start + len
    return rx, ry
  end
end

--- Number of batches an epoch gives.
function Dataset:num_batches(batch_size, drop_last)
  local n = self:size()
  batch_size = batch_size or 128
  checks.positive_int("Dataset.num_batches", "batch_size", batch_size)
  return drop_last and n // batch_size or (n + batch_size - 1) // batch_size
end

-- Generators --------------------------------------------------------------------------

local function check_opts(fn, opts, allowed)
  if type(opts) ~= "table" then fail(fn, "expected an options table, got %s", type(opts)) end
  for k in pairs(opts) do
    if allowed[k] == nil then fail(fn, "unknown option '%s'", tostring(k)) end
  end
  local out = {}
  for k, def in pairs(allowed) do
    local v = opts[k]
    if v == nil then v = def end
    if v == false and def == false then v = nil end
    out[k] = v
  end
  return out
end

local positive_int = checks.positive_int

--- Gaussian blobs: class means at distance `separation` from the origin in random directions,
-- unit-variance noise; per_class samples of each class, in class order.
function data.gaussian(opts)
  local fn = "gaussian"
  local o = check_opts(fn, opts, { classes = 4, dim = 16, per_class = 100, separation = 3, seed = 0,
    dtype = false })
  positive_int(fn, "classes", o.classes); positive_int(fn, "dim", o.dim); positive_int(fn, "per_class", o.per_class)
  local dtype = o.dtype or collapse.default_dtype()
  local g = collapse.rng(o.seed)
  local n = o.classes * o.per_class
  local x = core.randn({ n, o.dim }, "float64", g)
  local labels = {}
  for c = 1, o.classes do
    local mean = core.randn({ o.dim }, "float64", g)
    mean = mean * (o.separation / mean:norm())
    for i = 1, o.per_class do
      local k = (c - 1) * o.per_class + i
      x[k] = x[k] + mean
      labels[k] = c
    end
  end
  return data.Dataset{ x = x:to(dtype), y = core.tensor(labels, "int32"), classes = o.classes, name = "gaussian" }
end

--- The paper's "conic hull" data: points from N(0, I) in R^dim, labelled by their sign pattern
-- against ceil(log2 C) random hyperplanes through the origin (pattern p -> class (p mod C) + 1),
-- so classes are close to, not exactly, balanced.
function data.conic(opts)
  local fn = "conic"
  local o = check_opts(fn, opts, { classes = 4, dim = 16, n = 10000, seed = 0, dtype = false })
  positive_int(fn, "classes", o.classes); positive_int(fn, "dim", o.dim); positive_int(fn, "n", o.n)
  if o.classes < 2 then fail(fn, "classes must be at least 2, got %d", o.classes) end
  local dtype = o.dtype or collapse.default_dtype()
  local g = collapse.rng(o.seed)
  local k = math.ceil(math.log(o.classes, 2) - 1e-12)
  local planes = core.randn({ k, o.dim }, "float64", g)
  local x = core.randn({ o.n, o.dim }, "float64", g)
  local side = x:matmul(planes:t()):totable()
  local labels = {}
  for i = 1, o.n do
    local p = 0
    for j = 1, k do
      if side[i][j] > 0 then p = p + (1 << (j - 1)) end
    end
    labels[i] = p % o.classes + 1
  end
  return data.Dataset{ x = x:to(dtype), y = core.tensor(labels, "int32"), classes = o.classes, name = "conic" }
end

--- The paper's "MLP teacher" data: x from N(0, I) in R^dim, labels = argmax of a random MLP
-- (depth Linear layers of the given width with ReLU between them, PyTorch's default uniform
-- initialisation), so the classes are learnable by a network of the same shape.
function data.teacher(opts)
  local fn = "teacher"
  local o = check_opts(fn, opts, { classes = 10, dim = 16, n = 10000, depth = 3, width = 300, seed = 0, dtype = false })
  positive_int(fn, "classes", o.classes); positive_int(fn, "dim", o.dim); positive_int(fn, "n", o.n)
  positive_int(fn, "depth", o.depth); positive_int(fn, "width", o.width)
  if o.classes < 2 then fail(fn, "classes must be at least 2, got %d", o.classes) end
  local dtype = o.dtype or collapse.default_dtype()
  local g = collapse.rng(o.seed)
  local x = core.randn({ o.n, o.dim }, "float64", g)
  local h, prev = x, o.dim
  for layer = 1, o.depth do
    local out = layer == o.depth and o.classes or o.width
    local bound = 1 / math.sqrt(prev)
    local W = Module.uniform({ out, prev }, bound, "float64", g) -- nn.Linear's initialiser
    local b = Module.uniform({ out }, bound, "float64", g)
    h = h:matmul(W:t()) + b
    if layer < o.depth then
      local relu = core.zeros(h:shape(), "float64")
      core.relu_forward(h, relu)
      h = relu
    end
    prev = out
  end
  return data.Dataset{ x = x:to(dtype), y = h:argmax(2), classes = o.classes, name = "teacher" }
end

-- Loaders ------------------------------------------------------------------------------------

local FASHION_DIR = "/usr/share/datasets/fashion-mnist"
data.FASHION_MNIST_DIR = FASHION_DIR

--- data.idx{images = path, labels = path, limit = n, scale = true, flatten = true}: IDX files
-- (gzip or raw) as a Dataset; ubyte pixels scaled to [0, 1], 0-based labels shifted to 1..C.
function data.idx(opts)
  local fn = "data.idx"
  local o = check_opts(fn, opts, { images = "", labels = "", limit = 0, scale = true, flatten = true,
    classes = false, name = false })
  if o.images == "" or o.labels == "" then fail(fn, "images and labels paths are required") end
  local x = core.idx_read(o.images, o.scale, 0, o.limit)
  local y = core.idx_read(o.labels, false, 1, o.limit)
  if o.flatten and x:dim() > 2 then x = x:reshape({ x:size(1), -1 }) end
  return data.Dataset{ x = x, y = y, classes = o.classes or nil, name = o.name or "idx" }
end

--- data.fashion_mnist{split = "train" | "test", path = Debian's folder, limit = nil}:
-- 28 x 28 images flattened to 784 float32 values in [0, 1], labels 1..10.
function data.fashion_mnist(opts)
  local fn = "fashion_mnist"
  local o = check_opts(fn, opts or {}, { split = "train", path = FASHION_DIR, limit = 0, flatten = true })
  local prefix
  if o.split == "train" then prefix = "train" elseif o.split == "test" then prefix = "t10k"
  else fail(fn, "split must be 'train' or 'test', got %s", tostring(o.split)) end
  local images = o.path .. "/" .. prefix .. "-images-idx3-ubyte.gz"
  local f = io.open(images, "rb")
  if not f then
    fail(fn, "cannot find '%s' (install Debian's dataset-fashion-mnist, or pass path = folder)", images)
  end
  f:close()
  return data.idx{ images = images, labels = o.path .. "/" .. prefix .. "-labels-idx1-ubyte.gz", limit = o.limit,
    flatten = o.flatten, classes = 10, name = "fashion_mnist-" .. o.split }
end

--- data.npy(path) -> tensor (float32, float64 or int32; int64 and small ints become int32).
function data.npy(path)
  if type(path) ~= "string" then fail("data.npy", "path must be a string, got %s", type(path)) end
  return core.npy_read(path)
end

--- data.save_npy(t, path): writes NPY v1.0 atomically.
function data.save_npy(t, path)
  check_tensor("data.save_npy", "t", t)
  if type(path) ~= "string" then fail("data.save_npy", "path must be a string, got %s", type(path)) end
  core.npy_write(t, path)
end

--- data.csv(path, {label_column = k, label_offset = 0, classes =}): numeric CSV (header line
-- optional); with label_column a Dataset (labels must be 1..C after the offset), else a tensor.
function data.csv(path, opts)
  local fn = "data.csv"
  if type(path) ~= "string" then fail(fn, "path must be a string, got %s", type(path)) end
  local o = check_opts(fn, opts or {}, { label_column = 0, label_offset = 0, classes = false, dtype = false })
  local x, y = core.csv_read(path, o.label_column, o.label_offset)
  if o.dtype then x = x:to(o.dtype) elseif x:dtype() ~= collapse.default_dtype() then x = x:to(collapse.default_dtype()) end
  if not y then return x end
  return data.Dataset{ x = x, y = y, classes = o.classes or nil, name = path:match("[^/]*$") }
end

-- Image data sets and .npz archives (data.cifar10, cifar100, mnist, imagenet32, npz): images.lua.
require("collapse.images").register(data)

return data
