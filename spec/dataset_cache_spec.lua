-- collapse.dataset_cache: the prepared dataset the demo's workers read instead of rebuilding it.
-- A hit gives back exactly the tensors that were built; a missing, corrupt, truncated or stale
-- file (other key) is never used: the datasets are rebuilt and the file rewritten.
local collapse = require("collapse")
local cache = require("collapse.dataset_cache")
local fs = require("collapse.fs")
local tmpdir = require("support.tmp").dir

-- A build function that counts its calls: small conic train and test sets.
local function builder()
  local calls = { n = 0 }
  calls.build = function()
    calls.n = calls.n + 1
    return { train = collapse.data.conic{ n = 60, classes = 3, dim = 5, seed = 4 },
      test = collapse.data.conic{ n = 30, classes = 3, dim = 5, seed = 5 } }
  end
  return calls
end

local function same_dataset(a, b)
  assert.equal(a.x:dtype(), b.x:dtype())
  assert.same(a.x:shape(), b.x:shape())
  assert.equal(a.x:tobytes(), b.x:tobytes())
  assert.equal(a.y:tobytes(), b.y:tobytes())
  assert.equal(a.classes, b.classes)
  assert.equal(a.name, b.name)
end

describe("collapse.dataset_cache", function()
  local dir, path
  before_each(function()
    dir = tmpdir()
    path = dir .. "/cache.ckpt"
  end)
  after_each(function() os.execute("rm -rf '" .. dir .. "'") end)

  it("builds once, then gives back exactly the built tensors", function()
    local b = builder()
    local d1, st1 = cache.get(path, "k1", b.build)
    assert.equal("built (missing)", st1)
    assert.is_true(fs.exists(path))
    local d2, st2 = cache.get(path, "k1", b.build)
    assert.equal("hit", st2)
    assert.equal(1, b.n)
    same_dataset(d1.train, d2.train)
    same_dataset(d1.test, d2.test)
    same_dataset(b.build().train, d2.train) -- and they are what a fresh build gives
  end)

  it("a stale file (other key) is rebuilt and rewritten, never used", function()
    local b = builder()
    cache.get(path, "settings A", b.build)
    local _, st = cache.get(path, "settings B", b.build)
    assert.equal("built (stale (made for other settings or source files))", st)
    assert.equal(2, b.n)
    assert.equal("hit", select(2, cache.get(path, "settings B", b.build)))
    assert.matches("^built", select(2, cache.get(path, "settings A", b.build)))
  end)

  it("a corrupt or truncated file is detected by its checksum and length, and rebuilt", function()
    local b = builder()
    cache.get(path, "k", b.build)
    local good = fs.read(path)
    -- one flipped byte in the middle of the tensors
    local mid = #good // 2
    local flipped = good:sub(1, mid - 1) .. string.char((good:byte(mid) + 1) % 256) .. good:sub(mid + 1)
    fs.write_atomic(path, flipped)
    local d, st = cache.get(path, "k", b.build)
    assert.matches("^built %(corrupt: .*checksum mismatch", st)
    same_dataset(b.build().train, d.train)
    assert.equal(good, fs.read(path)) -- rewritten
    fs.write_atomic(path, good:sub(1, #good - 7))
    assert.matches("^built %(corrupt: ", select(2, cache.get(path, "k", b.build)))
    fs.write_atomic(path, "not a checkpoint")
    assert.matches("^built %(corrupt: ", select(2, cache.get(path, "k", b.build)))
  end)

  it("a checkpoint that is not a dataset cache is not used", function()
    local b = builder()
    collapse.save(path, { key = "k", train = { x = 1 } })
    assert.equal("built (not a dataset cache file)", select(2, cache.get(path, "k", b.build)))
  end)

  it("source_id changes with the bytes of a source file", function()
    local f = dir .. "/src.bin"
    fs.write_atomic(f, "abc")
    local a = cache.source_id{ f }
    fs.write_atomic(f, "abd")
    local b = cache.source_id{ f }
    assert.matches(":3:%x+$", a)
    assert.are_not.equal(a, b)
    local ok, err = pcall(cache.source_id, { dir .. "/missing" })
    assert.is_false(ok)
    assert.matches("dataset_cache.source_id: cannot read source file 1", err, 1, true)
  end)

  it("names the bad argument", function()
    local b = builder()
    local ok, err = pcall(cache.get, 1, "k", b.build)
    assert.is_false(ok)
    assert.matches("dataset_cache.get: path must be a string, got number", err, 1, true)
    ok, err = pcall(cache.get, path, nil, b.build)
    assert.matches("dataset_cache.get: key must be a string, got nil", err, 1, true)
    ok, err = pcall(cache.get, path, "k", "nope")
    assert.matches("dataset_cache.get: build must be a function, got string", err, 1, true)
    ok, err = pcall(cache.get, path, "k", function() return {} end)
    assert.matches("build() must return {train = Dataset", err, 1, true)
  end)
end)
