--- collapse.images: loaders of the image data sets of the paper's CNN experiments (CIFAR-10,
-- CIFAR-100, MNIST, downsampled ImageNet 32 x 32) and of NumPy .npz archives. The reading, the
-- uint8 -> float32 conversion, padding and normalisation are C (csrc/io); this file finds the
-- files under their official names and says where to get them when they are missing.
-- data.lua registers these functions on the `data` table (data.cifar10, ...).
local core = require("collapse.core")

local images = {}

local function fail(fn, msg, ...) error(("%s: " .. msg):format(fn, ...), 3) end

-- Where each data set comes from (said in every "missing" message).
local SOURCES = {
  cifar10 = "the CIFAR-10 binary version, https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz "
    .. "(unpacked: cifar-10-batches-bin/)",
  cifar100 = "the CIFAR-100 binary version, https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz "
    .. "(unpacked: cifar-100-binary/)",
  mnist = "MNIST, http://yann.lecun.com/exdb/mnist/ (the four IDX files, gzip-compressed or not)",
  imagenet32 = "the downsampled ImageNet 32x32 (npz), https://image-net.org/download-images.php "
    .. "(Imagenet32_train_npz.zip / Imagenet32_val_npz.zip, unpacked)",
}

local FILES = {
  cifar10 = { train = { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
    "data_batch_5.bin" }, test = { "test_batch.bin" } },
  cifar100 = { train = { "train.bin" }, test = { "test.bin" } },
  imagenet32 = { train = {}, test = { "val_data.npz" } },
}
for k = 1, 10 do FILES.imagenet32.train[k] = ("train_data_batch_%d.npz"):format(k) end

local function check_opts(fn, opts, allowed)
  if type(opts) ~= "table" then fail(fn, "expected an options table {dir = folder, ...}, got %s", type(opts)) end
  for k in pairs(opts) do
    if allowed[k] == nil then fail(fn, "unknown option '%s'", tostring(k)) end
  end
  local o = {}
  for k, def in pairs(allowed) do
    if opts[k] == nil then o[k] = def else o[k] = opts[k] end
  end
  if type(o.dir) ~= "string" or o.dir == "" then
    fail(fn, "dir must be the folder holding the files (%s), got %s", SOURCES[fn], tostring(opts.dir))
  end
  if o.split ~= "train" and o.split ~= "test" then
    fail(fn, "split must be 'train' or 'test', got %s", tostring(o.split))
  end
  if math.type(o.limit) ~= "integer" or o.limit < 0 then
    fail(fn, "limit must be a non-negative integer (0 = all), got %s", tostring(o.limit))
  end
  return o
end

local function readable(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local ok = f:read(0) ~= nil or f:seek("end") == 0
  f:close()
  return ok
end

local function check_dir(fn, dir, names)
  local f = io.open(dir, "rb")
  if not f then
    fail(fn, "directory '%s' does not exist; expected it to hold %s (%s)", dir, table.concat(names, ", "), SOURCES[fn])
  end
  f:close()
end

-- Full paths of the files of a split, each checked to exist (the first missing one is named).
local function paths_of(fn, dir, names)
  check_dir(fn, dir, names)
  local out = {}
  for i, name in ipairs(names) do
    out[i] = dir .. "/" .. name
    if not readable(out[i]) then fail(fn, "cannot find '%s' (%s)", out[i], SOURCES[fn]) end
  end
  return out
end

-- normalize = {mean = {...}, std = {...}} (one number per channel), applied in place in C.
local function normalize(fn, x, spec)
  if spec == nil or spec == false then return x end
  if type(spec) ~= "table" or type(spec.mean) ~= "table" or type(spec.std) ~= "table" then
    fail(fn, "normalize must be {mean = {...}, std = {...}} (one number per channel), got %s", tostring(spec))
  end
  for k in pairs(spec) do
    if k ~= "mean" and k ~= "std" then fail(fn, "normalize: unknown field '%s' (expected mean, std)", tostring(k)) end
  end
  local ok, err = pcall(core.images_normalize, x, spec.mean, spec.std)
  if not ok then fail(fn, "%s", (tostring(err):gsub("^images_normalize: ", "normalize: "))) end
  return x
end

local function dataset(data, x, y, classes, name)
  return data.Dataset{ x = x, y = y, classes = classes, name = name }
end

local function cifar(data, fn, opts, extra)
  local o = check_opts(fn, opts, extra)
  local paths = paths_of(fn, o.dir, FILES[fn][o.split])
  local variant = fn == "cifar100" and 100 or 10
  local fine = true
  if variant == 100 then
    if o.labels ~= "fine" and o.labels ~= "coarse" then
      fail(fn, "labels must be 'fine' (100 classes) or 'coarse' (20 superclasses), got %s", tostring(o.labels))
    end
    fine = o.labels == "fine"
  end
  local x, y = core.cifar_read(paths, variant, fine, o.limit)
  local classes = variant == 10 and 10 or (fine and 100 or 20)
  return dataset(data, normalize(fn, x, o.normalize), y, classes, fn .. "-" .. o.split)
end

--- data.cifar10{dir =, split = "train" | "test", limit = 0, normalize = nil}
function images.cifar10(data, opts)
  return cifar(data, "cifar10", opts, { dir = false, split = "train", limit = 0, normalize = false })
end

--- data.cifar100{dir =, split =, labels = "fine" | "coarse", limit = 0, normalize = nil}
function images.cifar100(data, opts)
  return cifar(data, "cifar100", opts, { dir = false, split = "train", labels = "fine", limit = 0, normalize = false })
end

-- The IDX file of MNIST under its official name, gzip-compressed or not.
local function mnist_file(fn, dir, base)
  for _, name in ipairs({ base, base .. ".gz" }) do
    if readable(dir .. "/" .. name) then return dir .. "/" .. name end
  end
  fail(fn, "cannot find '%s/%s' or '%s/%s.gz' (%s)", dir, base, dir, base, SOURCES[fn])
end

--- data.mnist{dir =, split =, pad = 2, limit = 0, normalize = nil}: [N x 1 x 28+2pad x 28+2pad].
function images.mnist(data, opts)
  local fn = "mnist"
  local o = check_opts(fn, opts, { dir = false, split = "train", pad = 2, limit = 0, normalize = false })
  if math.type(o.pad) ~= "integer" or o.pad < 0 or o.pad > 64 then
    fail(fn, "pad must be an integer in 0..64, got %s", tostring(o.pad))
  end
  local prefix = o.split == "train" and "train" or "t10k"
  check_dir(fn, o.dir, { prefix .. "-images-idx3-ubyte[.gz]", prefix .. "-labels-idx1-ubyte[.gz]" })
  local ximg = core.idx_read(mnist_file(fn, o.dir, prefix .. "-images-idx3-ubyte"), true, 0, o.limit)
  local y = core.idx_read(mnist_file(fn, o.dir, prefix .. "-labels-idx1-ubyte"), false, 1, o.limit)
  if ximg:dim() ~= 3 or ximg:dtype() ~= "float32" then
    fail(fn, "the images file holds a %d-d %s array, expected ubyte [N x 28 x 28]", ximg:dim(), ximg:dtype())
  end
  if y:dim() ~= 1 or y:size(1) ~= ximg:size(1) then
    fail(fn, "%d images but %d labels (mismatched files?)", ximg:size(1), y:dim() == 1 and y:size(1) or -1)
  end
  local x = core.images_pad(ximg:reshape({ ximg:size(1), 1, ximg:size(2), ximg:size(3) }), o.pad)
  return dataset(data, normalize(fn, x, o.normalize), y, 10, "mnist-" .. o.split)
end

--- data.imagenet32{dir =, split =, limit = 0, normalize = nil}: train reads train_data_batch_1..10
-- in order and stops as soon as `limit` images are read (later files are then not needed).
function images.imagenet32(data, opts)
  local fn = "imagenet32"
  local o = check_opts(fn, opts, { dir = false, split = "train", limit = 0, normalize = false })
  local names = FILES.imagenet32[o.split]
  check_dir(fn, o.dir, o.split == "train" and { "train_data_batch_1.npz .. train_data_batch_10.npz" } or names)
  local paths = {}
  for i, name in ipairs(names) do
    paths[i] = o.dir .. "/" .. name
    if not readable(paths[i]) then
      if o.limit > 0 and i > 1 then paths[i] = nil break end -- only as many files as the limit needs
      fail(fn, "cannot find '%s' (%s)", paths[i], SOURCES[fn])
    end
  end
  local x, y = core.imagenet32_read(paths, o.limit)
  if o.limit > 0 and x:size(1) < o.limit and #paths < #names then
    fail(fn, "cannot find '%s/%s' (%d images read, limit %d; %s)", o.dir, names[#paths + 1], x:size(1), o.limit,
      SOURCES[fn])
  end
  return dataset(data, normalize(fn, x, o.normalize), y, 1000, "imagenet32-" .. o.split)
end

--- data.npz(path) -> {name = tensor, ...} (member names without ".npy"; dtypes as data.npy).
function images.npz(_, path)
  if type(path) ~= "string" then fail("data.npz", "path must be a string, got %s", type(path)) end
  return core.npz_read(path)
end

--- Registers the loaders on the data table (called once by data.lua).
function images.register(data)
  for _, name in ipairs({ "cifar10", "cifar100", "mnist", "imagenet32", "npz" }) do
    local f = images[name]
    data[name] = function(opts) return f(data, opts) end
  end
end

return images
