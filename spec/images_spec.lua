-- Image data-set loaders and .npz archives (lua/collapse/images.lua, csrc/io) against the small
-- files and expected values written by spec/fixtures/make_image_fixtures.py (numpy).
local collapse = require("collapse")
local fixture = require("support.fixture")
local expect = require("support.expect")
local data = collapse.data

local F = fixture.root .. "/spec/fixtures/images/"
local E = fixture.read("images/expected.txt")

-- Shape, labels, pixel sum and sampled pixels against the fixture's record for key.
local function check_set(d, key, classes)
  assert.are.same(E[key .. ".shape"], d.x:shape())
  assert.are.equal("float32", d.x:dtype())
  assert.are.equal("int32", d.y:dtype())
  assert.are.same(E[key .. ".labels"], d.y:totable())
  assert.are.equal(classes, d.classes)
  assert.is_true(math.abs(d.x:sum() - E[key .. ".sum"][1]) <= 1e-9 * E[key .. ".sum"][1])
  local flat, px = d.x:reshape({ -1 }), E[key .. ".px"]
  for i = 1, #px, 2 do
    assert.are.equal(px[i + 1], flat[px[i] + 1])
  end
end

describe("data.cifar10", function()
  it("reads the five training batches in order and the test batch", function()
    check_set(data.cifar10{ dir = F .. "cifar10" }, "cifar10.train", 10)
    check_set(data.cifar10{ dir = F .. "cifar10", split = "test" }, "cifar10.test", 10)
  end)
  it("stops after limit records, across files", function()
    local d = data.cifar10{ dir = F .. "cifar10", limit = 4 }
    assert.are.same({ 4, 3, 32, 32 }, d.x:shape())
    local all = E["cifar10.train.labels"]
    assert.are.same({ all[1], all[2], all[3], all[4] }, d.y:totable())
  end)
  it("normalizes per channel", function()
    local raw = data.cifar10{ dir = F .. "cifar10", split = "test" }
    local d = data.cifar10{ dir = F .. "cifar10", split = "test", normalize = { mean = { 0.5, 0.25, 0 }, std = { 0.5, 2, 1 } } }
    local a, b = raw.x:reshape({ -1 }), d.x:reshape({ -1 })
    for _, i in ipairs({ 1, 1024, 1025, 2048, 2049, 3072, 3073, 6144 }) do
      local c = ((i - 1) // 1024) % 3 + 1
      local m, s = ({ 0.5, 0.25, 0 })[c], ({ 0.5, 2, 1 })[c]
      assert.is_true(math.abs(b[i] - (a[i] - m) / s) < 1e-6)
    end
  end)
  it("names the missing directory or file and where to get it", function()
    expect.error("directory '" .. F .. "nope' does not exist; expected it to hold data_batch_1.bin", data.cifar10,
      { dir = F .. "nope" })
    expect.error("cifar-10-binary.tar.gz", data.cifar10, { dir = F .. "nope" })
    expect.error("cannot find '" .. F .. "mnist/test_batch.bin' (the CIFAR-10 binary version", data.cifar10,
      { dir = F .. "mnist", split = "test" })
  end)
  it("refuses a partial record and a foreign label byte", function()
    expect.error("3173 bytes is not a whole number of 3073-byte records", data.cifar10,
      { dir = F .. "bad/cifar10_partial", split = "test" })
    expect.error("label byte 1 of record 1 is 200, expected 0..9 (not a CIFAR-10 file?)", data.cifar10,
      { dir = F .. "bad/cifar10_label", split = "test" })
    -- a CIFAR-100 file read as CIFAR-10 has 3074-byte records
    expect.error("not a whole number of 3073-byte records", function()
      return collapse.core.cifar_read({ F .. "cifar100/train.bin" }, 10, false, 0)
    end)
  end)
  it("checks its options", function()
    expect.error("cifar10: unknown option 'path'", data.cifar10, { dir = F, path = F })
    expect.error("cifar10: split must be 'train' or 'test', got val", data.cifar10, { dir = F, split = "val" })
    expect.error("cifar10: limit must be a non-negative integer", data.cifar10, { dir = F, limit = -1 })
    expect.error("cifar10: dir must be the folder holding the files", data.cifar10, {})
    expect.error("normalize: mean must have 3 numbers", data.cifar10,
      { dir = F .. "cifar10", split = "test", normalize = { mean = { 0 }, std = { 1, 1, 1 } } })
    expect.error("channel 2 has mean 0 and std 0", data.cifar10,
      { dir = F .. "cifar10", split = "test", normalize = { mean = { 0, 0, 0 }, std = { 1, 0, 1 } } })
  end)
end)

describe("data.cifar100", function()
  it("reads fine labels (default) and coarse labels", function()
    check_set(data.cifar100{ dir = F .. "cifar100" }, "cifar100.train", 100)
    check_set(data.cifar100{ dir = F .. "cifar100", split = "test" }, "cifar100.test", 100)
    local d = data.cifar100{ dir = F .. "cifar100", labels = "coarse" }
    assert.are.same(E["cifar100.train.coarse"], d.y:totable())
    assert.are.equal(20, d.classes)
  end)
  it("refuses a CIFAR-10 file and bad options", function()
    expect.error("not a whole number of 3074-byte records (2 label bytes", function()
      return collapse.core.cifar_read({ F .. "cifar10/test_batch.bin" }, 100, true, 0)
    end)
    expect.error("labels must be 'fine' (100 classes) or 'coarse'", data.cifar100, { dir = F .. "cifar100", labels = "x" })
    expect.error("cannot find '" .. F .. "cifar10/train.bin' (the CIFAR-100 binary version", data.cifar100,
      { dir = F .. "cifar10" })
  end)
end)

describe("data.mnist", function()
  it("pads to 32 x 32 by default, from gzip and raw IDX files", function()
    check_set(data.mnist{ dir = F .. "mnist" }, "mnist.train", 10)
    check_set(data.mnist{ dir = F .. "mnist", split = "test" }, "mnist.test", 10)
  end)
  it("pad = 0 keeps 28 x 28; limit", function()
    check_set(data.mnist{ dir = F .. "mnist", pad = 0 }, "mnist.train.pad0", 10)
    assert.are.same({ 1, 1, 32, 32 }, data.mnist{ dir = F .. "mnist", limit = 1 }.x:shape())
  end)
  it("names missing files and refuses truncated ones", function()
    expect.error("cannot find '" .. F .. "cifar10/t10k-images-idx3-ubyte' or", data.mnist, { dir = F .. "cifar10", split = "test" })
    expect.error("yann.lecun.com", data.mnist, { dir = F .. "cifar10" })
    expect.error("truncated data", data.mnist, { dir = F .. "bad/mnist_truncated", split = "test" })
    expect.error("mnist: pad must be an integer in 0..64", data.mnist, { dir = F .. "mnist", pad = 1.5 })
  end)
end)

describe("data.imagenet32", function()
  it("reads the ten training batches (stored and deflated) and the validation file", function()
    check_set(data.imagenet32{ dir = F .. "imagenet32" }, "imagenet32.train", 1000)
    check_set(data.imagenet32{ dir = F .. "imagenet32", split = "test" }, "imagenet32.test", 1000)
  end)
  it("with a limit needs only the files it reads", function()
    local d = data.imagenet32{ dir = F .. "imagenet32", limit = 3 }
    local all = E["imagenet32.train.labels"]
    assert.are.same({ all[1], all[2], all[3] }, d.y:totable())
    assert.are.same({ 3, 3, 32, 32 }, d.x:shape())
  end)
  it("names what is missing or wrong", function()
    expect.error("cannot find '" .. F .. "cifar10/val_data.npz' (the downsampled ImageNet", data.imagenet32,
      { dir = F .. "cifar10", split = "test" })
    expect.error("no member 'labels' (expected 'data' and 'labels')", data.imagenet32,
      { dir = F .. "bad/imagenet32_nolabels", split = "test" })
    expect.error("data is [1 x 12288] '|u1', expected uint8 [N x 3072]", data.imagenet32,
      { dir = F .. "bad/imagenet32_64px", split = "test" })
  end)
end)

describe("data.npz", function()
  for _, file in ipairs({ "stored", "deflated" }) do
    it("reads every member of a " .. file .. " archive", function()
      local z = data.npz(F .. "npz/" .. file .. ".npz")
      local dtypes = { a_f4 = "float32", b_f8 = "float64", c_i8 = "int32", d_u1 = "int32", e_i4 = "int32" }
      local n = 0
      for name, t in pairs(z) do
        n = n + 1
        assert.are.equal(dtypes[name], t:dtype())
        local shape = E["npz." .. name .. ".shape"]
        assert.are.same(shape, t:shape())
        local got = t:reshape({ -1 }):totable()
        assert.are.same(E["npz." .. name .. ".values"], got)
      end
      assert.are.equal(5, n)
    end)
  end
  it("refuses foreign, truncated, damaged and zip64 files clearly", function()
    local cases = {
      not_zip = "no zip end-of-central-directory record (not an .npz/zip file, or truncated)",
      truncated = "no zip end-of-central-directory record",
      empty = "0 bytes, too short for a zip archive",
      corrupt_deflate = "member 'a_f4.npy': corrupt deflate data",
      foreign_member = "member 'readme.txt' is not an .npy file",
      not_npy_member = "[x.npy]: member is not an NPY array",
      zip64 = "zip64 archive (over 65535 members or 4 GiB), not supported",
    }
    for name, msg in pairs(cases) do expect.error("npz: " .. F .. "bad/" .. name .. ".npz", data.npz, F .. "bad/" .. name .. ".npz") end
    for name, msg in pairs(cases) do expect.error(msg, data.npz, F .. "bad/" .. name .. ".npz") end
    expect.error("npz: cannot open '" .. F .. "nope.npz'", data.npz, F .. "nope.npz")
    expect.error("data.npz: path must be a string, got nil", data.npz)
  end)
end)
