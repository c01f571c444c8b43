-- collapse.set_flush_denormal: PyTorch's torch.set_flush_denormal for this thread. Checked by what
-- the mode does to arithmetic (a product whose exact result is subnormal, a subnormal operand),
-- on Lua numbers (same thread, same MXCSR) and on a float32 matrix product through OpenBLAS.
local collapse = require("collapse")
local expect_error = require("support.expect").error

local tiny = 2.0 ^ -1060 -- a subnormal double (smallest normal: 2^-1022)

describe("collapse.set_flush_denormal", function()
  local before
  before_each(function() before = collapse.get_flush_denormal() end)
  after_each(function() collapse.set_flush_denormal(before) end)

  it("is off by default, as in IEEE arithmetic and PyTorch", function()
    assert.is_false(collapse.get_flush_denormal())
    assert.equal(2.0 ^ -1040, (2.0 ^ -520) * (2.0 ^ -520)) -- a subnormal result kept exactly
  end)
  it("flushes subnormal results and operands to zero when on, and restores them when off", function()
    assert.is_true(collapse.set_flush_denormal(true)) -- x86-64: supported
    assert.is_true(collapse.get_flush_denormal())
    assert.equal(0.0, (2.0 ^ -520) * (2.0 ^ -520)) -- result flushed
    local x = tonumber("0x1p-1060") -- parsed exactly (integer work), then used as an operand
    assert.equal(0.0, x * 2.0 ^ 100) -- operand read as zero: 2^-960 otherwise
    assert.equal(2.0 ^ -100, (2.0 ^ -50) * (2.0 ^ -50)) -- normal values unchanged
    assert.is_true(collapse.set_flush_denormal(false))
    assert.is_false(collapse.get_flush_denormal())
    assert.equal(tiny * 2.0 ^ 100, 2.0 ^ -960)
  end)
  it("reaches OpenBLAS's float32 products on this thread", function()
    collapse.set_num_threads(1)
    local rows = {}
    for i = 1, 16 do
      rows[i] = {}
      for j = 1, 16 do rows[i][j] = 1e-20 end
    end
    local a = collapse.tensor(rows, "float32") -- each product 1e-40: subnormal in float32
    local kept = a:matmul(a):totable()[3][5] -- 16 of them: 1.6e-39, still subnormal
    assert.is_true(kept > 1.5e-39 and kept < 1.7e-39, tostring(kept))
    collapse.set_flush_denormal(true)
    assert.equal(0, a:matmul(a):totable()[3][5])
  end)
  it("names the function and the argument on bad input", function()
    expect_error("set_flush_denormal: argument 1 (on) must be a boolean, got number", collapse.set_flush_denormal, 1)
    expect_error("set_flush_denormal: argument 1 (on) must be a boolean, got no value", collapse.set_flush_denormal)
  end)
end)

describe("collapse.experiment flush_denormal", function()
  local models = require("collapse.models")
  local data = collapse.data.conic{ n = 64, seed = 1 }
  local function spec(extra, seen)
    local s = { name = "ftz", seed = 1, data = { train = data }, epochs = 1, batch_size = 32, progress = false,
      optimizer = { "SGD", lr = 0.01 }, metrics = { "intra_cos" },
      model = function(cfg)
        seen.mode = collapse.get_flush_denormal() -- the mode while the run builds and trains its model
        return models.paper_mlp{ input_dim = cfg.input_dim, classes = cfg.classes, width = 8, rng = collapse.rng(1) }
      end }
    for k, v in pairs(extra or {}) do s[k] = v end
    return s
  end

  it("runs with subnormals flushed by default, records it and restores the caller's mode", function()
    local seen = {}
    collapse.set_flush_denormal(false)
    local r = collapse.experiment(spec(nil, seen)):run()
    assert.is_true(seen.mode)
    assert.is_true(r.flush_denormal)
    assert.is_false(collapse.get_flush_denormal())
  end)
  it("keeps IEEE subnormals with flush_denormal = false, and restores the mode after an error", function()
    local seen = {}
    collapse.set_flush_denormal(true)
    local r = collapse.experiment(spec({ flush_denormal = false }, seen)):run()
    assert.is_false(seen.mode)
    assert.is_false(r.flush_denormal)
    assert.is_true(collapse.get_flush_denormal())
    collapse.set_flush_denormal(false)
    local bad = spec({ model = function() seen.mode = collapse.get_flush_denormal(); return "not a module" end }, seen)
    expect_error("model(cfg) must return a module", function() collapse.experiment(bad):run() end)
    assert.is_true(seen.mode)
    assert.is_false(collapse.get_flush_denormal())
    expect_error("experiment: field 'flush_denormal' must be boolean, got integer", collapse.experiment,
      spec({ flush_denormal = 1 }, seen))
  end)
end)
