-- collapse.data: datasets, batching, generators and file loaders, with their error messages.
local collapse = require("collapse")
local data = collapse.data
local fixture = require("support.fixture")

local expect_error = require("support.expect").error

local function tmpname(suffix)
  local p = os.tmpname()
  os.remove(p)
  return p .. suffix
end

describe("Dataset", function()
  local ds = data.gaussian{ classes = 3, dim = 4, per_class = 10, seed = 1 }

  it("validates x, y and classes", function()
    expect_error("Dataset: x has 3 samples but y has 2 labels", data.Dataset, { x = collapse.zeros({ 3, 2 }), y = { 1, 2 } })
    expect_error("Dataset: label 4 at index 2 is outside 1..3", data.Dataset,
      { x = collapse.zeros({ 2, 2 }), y = { 1, 4 }, classes = 3 })
    expect_error("Dataset: unknown field 'labels'", data.Dataset, { x = collapse.zeros({ 2, 2 }), labels = { 1, 2 } })
    expect_error("Dataset: x must be a tensor", data.Dataset, { x = {}, y = { 1 } })
  end)

  it("batches cover every sample exactly once per epoch, shuffled or not", function()
    for _, shuffle in ipairs({ true, false }) do
      local seen, count = {}, 0
      -- x holds each sample's index in its first column
      local x = collapse.zeros({ 25, 2 }, "float64")
      for i = 1, 25 do x:set(i, 1, i) end
      local d = data.Dataset{ x = x, y = collapse.full({ 25 }, 1, "int32") }
      for bx, by in d:batches{ batch_size = 7, shuffle = shuffle, rng = collapse.rng(3) } do
        assert.equal(bx:size(1), by:size(1))
        for i = 1, bx:size(1) do
          local k = math.tointeger(bx:get(i, 1))
          assert.is_nil(seen[k])
          seen[k] = true
          count = count + 1
        end
      end
      assert.equal(25, count)
    end
    local n = 0
    for _ in ds:batches{ batch_size = 8, drop_last = true } do n = n + 1 end
    assert.equal(3, n)
    expect_error("batches: unknown option 'batchsize'", function() return ds:batches{ batchsize = 4 } end)
  end)

  it("subset, balanced and split", function()
    local sub = ds:subset({ 1, 11, 21 })
    assert.same({ 1, 2, 3 }, sub.y:totable())
    local bal = ds:balanced(4, collapse.rng(1))
    assert.same({ 4, 4, 4 }, bal:class_counts())
    expect_error("balanced: class 1 has 10 samples, fewer than per_class = 11", ds.balanced, ds, 11)
    local a, b = ds:split(0.8, collapse.rng(2))
    assert.equal(24, a:size())
    assert.equal(6, b:size())
    expect_error("split: fraction must be in (0, 1)", ds.split, ds, 1.5)
  end)
end)

describe("generators", function()
  it("conic labels are the sign pattern against random hyperplanes", function()
    local d = data.conic{ n = 500, classes = 4, dim = 3, seed = 4, dtype = "float64" }
    -- Two random hyperplanes through the origin cut N(0, I) into 4 cones: every class present.
    local counts = d:class_counts()
    for c = 1, 4 do assert.is_true(counts[c] > 60, "class " .. c .. " has " .. counts[c]) end
    -- same seed, same data; another seed, other data
    local again = data.conic{ n = 500, classes = 4, dim = 3, seed = 4, dtype = "float64" }
    assert.same(d.y:totable(), again.y:totable())
    assert.are_not.same(d.y:totable(), data.conic{ n = 500, classes = 4, dim = 3, seed = 5 }.y:totable())
    -- C = 2: one hyperplane, so the two classes are x and -x mirror images: opposite means
    local two = data.conic{ n = 4000, classes = 2, dim = 3, seed = 6, dtype = "float64" }
    local sums = { collapse.zeros({ 3 }, "float64"), collapse.zeros({ 3 }, "float64") }
    local labels = two.y:totable()
    for i = 1, two:size() do sums[labels[i]] = sums[labels[i]] + two.x:row(i) end
    local a, b = sums[1] / two:class_counts()[1], sums[2] / two:class_counts()[2]
    assert.is_true((a + b):norm() < 0.15 * a:norm(), "class means are not mirror images")
  end)

  it("teacher labels are the argmax of a random MLP; gaussian blobs are balanced", function()
    local t = data.teacher{ classes = 5, dim = 8, n = 300, depth = 3, width = 20, seed = 2 }
    assert.equal(300, t:size())
    assert.equal(5, t.classes)
    local g = data.gaussian{ classes = 4, dim = 3, per_class = 6, seed = 1 }
    assert.same({ 6, 6, 6, 6 }, g:class_counts())
    expect_error("conic: unknown option 'points'", data.conic, { points = 10 })
    expect_error("teacher: depth must be a positive integer", data.teacher, { depth = 0 })
  end)
end)

describe("loaders", function()
  it("npy round trip for every dtype, written atomically", function()
    for _, dt in ipairs({ "float32", "float64", "int32" }) do
      local t = collapse.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, dt)
      local path = tmpname(".npy")
      data.save_npy(t, path)
      local back = data.npy(path)
      assert.equal(dt, back:dtype())
      assert.same(t:totable(), back:totable())
      os.remove(path)
    end
  end)

  it("reads numpy's own files (fixtures made by make_io_fixtures.py)", function()
    local t = data.npy(fixture.root .. "/spec/fixtures/io/f4_2x3.npy")
    assert.same({ 2, 3 }, t:shape())
    local be = data.npy(fixture.root .. "/spec/fixtures/io/be_f8_3.npy")
    assert.equal("float64", be:dtype())
  end)

  it("csv with a label column becomes a Dataset", function()
    local path = tmpname(".csv")
    local f = io.open(path, "w")
    f:write("a,b,label\n1.5,2,1\n3,4.25,2\n5,6,2\n")
    f:close()
    local ds = data.csv(path, { label_column = 3, dtype = "float64" })
    assert.same({ { 1.5, 2 }, { 3, 4.25 }, { 5, 6 } }, ds.x:totable())
    assert.same({ 1, 2, 2 }, ds.y:totable())
    os.remove(path)
  end)

  it("missing and corrupt files give clear errors", function()
    expect_error("cannot open '/nonexistent/x.npy'", data.npy, "/nonexistent/x.npy")
    expect_error("idx: cannot open", data.idx, { images = "/nonexistent/i.gz", labels = "/nonexistent/l.gz" })
    expect_error("cannot find '/nowhere/train-images-idx3-ubyte.gz'", data.fashion_mnist, { path = "/nowhere" })
    local bad = tmpname(".npy")
    local f = io.open(bad, "wb")
    f:write("\147NUMPY\1\0\20\0{'descr': '<f4', 'fo")
    f:close()
    local ok, err = pcall(data.npy, bad)
    assert.is_false(ok)
    assert.matches("npy: ", tostring(err), 1, true)
    assert.matches(bad, tostring(err), 1, true)
    os.remove(bad)
    local badidx = tmpname(".idx")
    f = io.open(badidx, "wb")
    f:write("\0\0\8\3\0\0\0\10\0\0\0\28")
    f:close()
    expect_error("idx: ", data.idx, { images = badidx, labels = badidx })
    os.remove(badidx)
  end)

  it("Fashion-MNIST from Debian's package: 10,000 test images in [0, 1], labels 1..10", function()
    local dir = data.FASHION_MNIST_DIR
    local f = io.open(dir .. "/t10k-images-idx3-ubyte.gz")
    if not f then return pending("dataset-fashion-mnist not installed") end
    f:close()
    local test = data.fashion_mnist{ split = "test" }
    assert.same({ 10000, 784 }, test.x:shape())
    assert.equal("float32", test.x:dtype())
    assert.is_true(test.x:max() <= 1.0)
    assert.same({ 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000 }, test:class_counts())
  end)
end)
