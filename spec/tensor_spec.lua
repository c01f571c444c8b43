-- Tensor core: constructors, views, arithmetic, matmul against naive loops, rng, errors.
local collapse = require("collapse")

local function naive_matmul(a, b)
  -- a, b: Lua tables of rows
  local m, k, n = #a, #b, #b[1]
  local c = {}
  for i = 1, m do
    c[i] = {}
    for j = 1, n do
      local s = 0
      for l = 1, k do s = s + a[i][l] * b[l][j] end
      c[i][j] = s
    end
  end
  return c
end

local function max_rel_err(t, ref)
  local got, worst = t:totable(), 0
  for i = 1, #ref do
    for j = 1, #ref[i] do
      local e = math.abs(got[i][j] - ref[i][j]) / math.max(1, math.abs(ref[i][j]))
      if e > worst then worst = e end
    end
  end
  return worst
end

local expect_error = require("support.expect").error

describe("tensor constructors", function()
  it("zeros/ones/full give the shape, dtype and value asked for", function()
    local z = collapse.zeros({2, 3})
    assert.same({2, 3}, z:shape())
    assert.equal("float32", z:dtype())
    assert.equal(0, z:sum())
    assert.equal(6, collapse.ones({2, 3}, "float64"):sum())
    assert.equal("float64", collapse.ones({1}, "float64"):dtype())
    local f = collapse.full({4}, 2.5, "float64")
    assert.same({2.5, 2.5, 2.5, 2.5}, f:totable())
    assert.equal(7, collapse.full({7}, 3, "int32"):numel())
  end)

  it("tensor() reads nested tables and keeps values", function()
    local t = collapse.tensor({{1, 2, 3}, {4, 5, 6}}, "float64")
    assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
    assert.equal(2, t:dim())
    assert.equal(3, t:size(2))
    assert.equal(2, #t)
    local labels = collapse.tensor({1, 2, 3}, "int32")
    assert.equal("int32", labels:dtype())
    assert.equal(math.type(labels:get(1)), "integer")
  end)

  it("arange counts from 1", function()
    assert.same({1, 2, 3, 4}, collapse.arange(4):totable())
    assert.equal("float64", collapse.arange(3, "float64"):dtype())
  end)

  it("default dtype can be switched and is validated", function()
    collapse.set_default_dtype("float64")
    assert.equal("float64", collapse.zeros({1}):dtype())
    collapse.set_default_dtype("float32")
    assert.equal("float32", collapse.default_dtype())
    expect_error("set_default_dtype: expected 'float32' or 'float64'", collapse.set_default_dtype, "int8")
  end)

  it("rejects ragged, non-numeric, negative and unknown-dtype input", function()
    expect_error("ragged table", collapse.tensor, {{1, 2}, {3}})
    expect_error("non-numeric entry at [2][2] (got string)", collapse.tensor, {{1, 2}, {3, "x"}})
    expect_error("non-numeric entry at [1] (got boolean)", collapse.tensor, {true})
    expect_error("shape entry 1 must be a non-negative integer", collapse.zeros, {-1})
    expect_error("shape entry 2 must be a non-negative integer", collapse.zeros, {2, "a"})
    expect_error("unknown dtype 'float16'", collapse.zeros, {2}, "float16")
    expect_error("not an int32 value", collapse.tensor, {1.5}, "int32")
  end)
end)

describe("tensor element access", function()
  it("get/set use 1-based indices and reject out-of-range and zero indices", function()
    local t = collapse.zeros({2, 3}, "float64")
    t:set(2, 3, 7)
    assert.equal(7, t:get(2, 3))
    assert.equal(7, t[2][3])
    expect_error("get: index 0 out of range 1..2 in dimension 1", t.get, t, 0, 1)
    expect_error("get: index 4 out of range 1..3 in dimension 2", t.get, t, 1, 4)
    expect_error("get: expected 2 indices for a 2-d tensor, got 1", t.get, t, 1)
    expect_error("set: index 3 out of range 1..2", t.set, t, 3, 1, 0)
  end)

  it("wrong self type gives a clear error", function()
    local t = collapse.zeros({2})
    expect_error("sum: self: tensor expected, got number", t.sum, 5)
    expect_error("matmul: self: tensor expected, got table", t.matmul, {}, t)
  end)
end)

describe("views", function()
  it("row, narrow, t and reshape share storage and write through", function()
    local base = collapse.zeros({3, 4}, "float64")
    base:row(2):fill(5)
    assert.same({0, 0, 0, 0}, base:row(1):totable())
    assert.same({5, 5, 5, 5}, base:row(2):totable())
    base:t():row(1):fill(9) -- first column
    assert.equal(9, base:get(3, 1))
    base:narrow(2, 2, 2):fill(1)
    assert.same({9, 1, 1, 0}, base:row(3):totable())
    local flat = base:reshape({12})
    flat:set(12, 42)
    assert.equal(42, base:get(3, 4))
    base[1] = 3
    assert.same({3, 3, 3, 3}, base:row(1):totable())
  end)

  it("a view keeps its base alive after the base is collected", function()
    local v
    do
      local base = collapse.tensor({{1, 2}, {3, 4}}, "float64")
      v = base:row(2)
    end
    collectgarbage(); collectgarbage()
    assert.same({3, 4}, v:totable())
  end)

  it("reshape infers -1 and reports impossible shapes", function()
    local t = collapse.zeros({4, 6})
    assert.same({3, 8}, t:reshape({3, -1}):shape())
    expect_error("reshape: cannot view [4 x 6] (24 elements) as [5 x 5]", t.reshape, t, {5, 5})
  end)

  it("a closed tensor cannot be used", function()
    local t = collapse.zeros({2})
    t:close()
    expect_error("sum: self: the tensor is closed", t.sum, t)
  end)
end)

describe("arithmetic and reductions", function()
  local a = collapse.tensor({{1, 2, 3}, {4, 5, 6}}, "float64")
  it("elementwise operators and numbers", function()
    assert.same({{2, 4, 6}, {8, 10, 12}}, (a + a):totable())
    assert.same({{0, 1, 2}, {3, 4, 5}}, (a - 1):totable())
    assert.same({{1, 0, -1}, {-2, -3, -4}}, (2 - a):totable())
    assert.same({{1, 4, 9}, {16, 25, 36}}, (a * a):totable())
    assert.same({{0.5, 1, 1.5}, {2, 2.5, 3}}, (a / 2):totable())
    assert.same({{-1, -2, -3}, {-4, -5, -6}}, (-a):totable())
    assert.same({{1, 1, 1}, {4, 2.5, 2}}, a:div(collapse.tensor({1, 2, 3}, "float64")):totable())
  end)
  it("sum/mean/max/argmax/norm/dot", function()
    assert.equal(21, a:sum())
    assert.equal(3.5, a:mean())
    assert.equal(6, a:max())
    assert.same({5, 7, 9}, a:sum(1):totable())
    assert.same({2, 5}, a:mean(2):totable())
    local v, i = a:max(2)
    assert.same({3, 6}, v:totable())
    assert.same({3, 3}, i:totable())
    assert.same({2, 2, 2}, a:argmax(1):totable())
    assert.is_true(math.abs(a:norm() - math.sqrt(91)) < 1e-12)
    assert.equal(91, a:dot(a))
  end)
  it("shape and dtype mismatches name both operands", function()
    local b = collapse.zeros({3, 2}, "float64")
    expect_error("add: size mismatch, [2 x 3] and [3 x 2]", function() return a + b end)
    expect_error("add: dtype mismatch, float64 and float32", function() return a + collapse.zeros({2, 3}) end)
    expect_error("sum: dimension 3 out of range", a.sum, a, 3)
  end)
end)

describe("matmul", function()
  local g = collapse.rng(7)
  local function rand_table(r, c)
    local t = {}
    for i = 1, r do
      t[i] = {}
      for j = 1, c do t[i][j] = g:normal() end
    end
    return t
  end
  local function transpose(t)
    local r = {}
    for i = 1, #t[1] do
      r[i] = {}
      for j = 1, #t do r[i][j] = t[j][i] end
    end
    return r
  end

  for _, case in ipairs({ { dtype = "float64", tol = 1e-12 }, { dtype = "float32", tol = 1e-5 } }) do
    it("matches a naive triple loop (" .. case.dtype .. ", non-square)", function()
      local A, B = rand_table(7, 5), rand_table(5, 3)
      local ref = naive_matmul(A, B)
      local c = collapse.tensor(A, case.dtype):matmul(collapse.tensor(B, case.dtype))
      assert.same({7, 3}, c:shape())
      assert.is_true(max_rel_err(c, ref) < case.tol)
    end)
    it("matches with transposed operands (" .. case.dtype .. ")", function()
      local A, B = rand_table(5, 7), rand_table(3, 5) -- use A^T (7x5) and B^T (5x3)
      local ref = naive_matmul(transpose(A), transpose(B))
      local c = collapse.tensor(A, case.dtype):t():matmul(collapse.tensor(B, case.dtype):t())
      assert.is_true(max_rel_err(c, ref) < case.tol)
    end)
    it("matches with view operands (" .. case.dtype .. ")", function()
      local big = rand_table(9, 8)
      local tb = collapse.tensor(big, case.dtype)
      local va = tb:narrow(1, 2, 4):narrow(2, 3, 5) -- rows 2..5, cols 3..7: strided view
      local vb = tb:narrow(1, 1, 5):narrow(2, 1, 6)
      local A, B = {}, {}
      for i = 1, 4 do A[i] = { table.unpack(big[i + 1], 3, 7) } end
      for i = 1, 5 do B[i] = { table.unpack(big[i], 1, 6) } end
      assert.is_true(max_rel_err(va:matmul(vb), naive_matmul(A, B)) < case.tol)
      assert.is_true(max_rel_err(vb:t():matmul(va:t()), transpose(naive_matmul(A, B))) < case.tol)
    end)
  end

  it("handles vectors and reports mismatches with shapes", function()
    local m = collapse.tensor({{1, 2}, {3, 4}}, "float64")
    local v = collapse.tensor({1, 1}, "float64")
    assert.same({3, 7}, m:matmul(v):totable())
    assert.same({4, 6}, v:matmul(m):totable())
    expect_error("matmul: size mismatch, [2 x 3] @ [4 x 5]", function()
      return collapse.zeros({2, 3}):matmul(collapse.zeros({4, 5}))
    end)
    expect_error("matmul: dtype mismatch", function() return m:matmul(collapse.zeros({2, 2})) end)
    expect_error("matmul: self must be a float32 or float64 tensor, got int32", function()
      return collapse.zeros({2, 2}, "int32"):matmul(m)
    end)
  end)
end)

describe("rng", function()
  it("reproduces the documented xoshiro256** stream (independent Python reference)", function()
    local g = collapse.rng(42)
    local ref = { 0.08386297105988216, 0.3789802506626686, 0.6800434110281394, 0.9246929453253876, 0.9918039142821028 }
    for i = 1, #ref do assert.is_true(math.abs(g:uniform() - ref[i]) < 1e-15) end
    local h = collapse.rng(7)
    local nref = { -0.2790239910251981, 1.5277231859624536, 1.8997685786889567, -0.2266957459968598 }
    for i = 1, #nref do assert.is_true(math.abs(h:normal() - nref[i]) < 1e-12) end
  end)
  it("same seed, same stream; permutation is a permutation; integer stays in range", function()
    local a, b = collapse.randn({50}, { rng = collapse.rng(3) }), collapse.randn({50}, { rng = collapse.rng(3) })
    assert.same(a:totable(), b:totable())
    local p = collapse.rng(1):permutation(100):totable()
    table.sort(p)
    for i = 1, 100 do assert.equal(i, p[i]) end
    local g = collapse.rng(5)
    for _ = 1, 1000 do
      local k = g:integer(-3, 3)
      assert.is_true(k >= -3 and k <= 3)
    end
    expect_error("rng: seed must be an integer", collapse.rng, 1.5)
  end)
  it("randn has mean ~0 and variance ~1", function()
    local x = collapse.randn({20000}, { dtype = "float64", rng = collapse.rng(11) })
    assert.is_true(math.abs(x:mean()) < 0.03)
    assert.is_true(math.abs(x:dot(x) / 20000 - 1) < 0.05)
  end)
end)

describe("blas", function()
  it("reports the OpenBLAS core and thread count, and thread control works", function()
    local info = collapse.blas_info()
    assert.is_string(info.core)
    assert.is_true(#info.core > 0)
    assert.is_true(info.threads >= 1)
    collapse.set_num_threads(1)
    assert.equal(1, collapse.get_num_threads())
    expect_error("set_num_threads: n must be >= 1", collapse.set_num_threads, 0)
  end)
end)

describe("memory", function()
  it("a loop of 600 float32 tensors of 8 MB stays under 1.5 GB resident", function()
    for _ = 1, 600 do
      local t = collapse.full({2 * 1024 * 1024}, 1) -- written, so the pages are resident
      assert(t:numel() == 2097152)
    end
    local f = io.open("/proc/self/status")
    if f then
      local status = f:read("a")
      f:close()
      local hwm_kb = tonumber(status:match("VmHWM:%s*(%d+)"))
      assert.is_true(hwm_kb < 1.5 * 1024 * 1024, "peak RSS " .. hwm_kb .. " kB")
    end
    assert.is_true(collapse.bytes_in_use() < 600 * 1024 * 1024)
  end)
end)

describe("module hygiene", function()
  it("require sets no globals", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    package.loaded["collapse"] = nil
    require("collapse")
    for k in pairs(_G) do assert.is_true(before[k] ~= nil, "new global " .. tostring(k)) end
  end)
end)

describe("resize", function()
  it("keeps the dtype and the storage while its capacity suffices, returns the tensor", function()
    local t = collapse.zeros({ 0 }, "float64")
    assert.are.equal(t, t:resize({ 2, 3 }))
    assert.are.same({ 2, 3 }, t:shape())
    assert.are.equal("float64", t:dtype())
    t:fill(4)
    t:resize({ 6 }) -- the same element count: values unchanged
    assert.are.same({ 4, 4, 4, 4, 4, 4 }, t:totable())
    collectgarbage("collect")
    collectgarbage("stop") -- no other tensor is freed while we count bytes
    local before = collapse.bytes_in_use()
    t:resize({ 1, 2 }) -- smaller: no allocation
    local same = collapse.bytes_in_use()
    t:resize({ 4, 5 }) -- larger: a new storage of 20 doubles replaces the one of 6
    local grown = collapse.bytes_in_use()
    collectgarbage("restart")
    assert.are.equal(before, same)
    assert.are.equal(before + (20 - 6) * 8, grown)
  end)

  it("refuses views and bad shapes with the function named", function()
    local t = collapse.zeros({ 4, 5 })
    expect_error("tensor_resize: cannot resize a view", t.resize, t:narrow(1, 1, 2), { 3, 3 })
    expect_error("tensor_resize: cannot resize a view", t.resize, t:t(), { 3, 3 })
    expect_error("shape entry 1 must be a non-negative integer", t.resize, t, { -1 })
    t:narrow(1, 1, 2):resize({ 2, 5 }) -- already that shape: fine
  end)
end)

describe("errors blame the caller's line", function()
  it("for argument errors of the C binding and of the Lua layer", function()
    local ok, err = pcall(function() return collapse.zeros("x") end)
    assert.is_false(ok)
    assert.matches("^spec/tensor_spec%.lua:%d+: zeros: argument 1: shape table expected, got string", err)
    expect_error("randn: option rng must be a generator (collapse.rng(seed)), got number", collapse.randn, { 2 },
      { rng = 5 })
    expect_error("randn: unknown option 'seed'", collapse.randn, { 2 }, { seed = 5 })
    assert.is_nil(rawget(collapse, "io")) -- not a submodule (it was listed without existing)
  end)

  it("the generator state is portable bytes and restores the stream", function()
    local g = collapse.rng(3)
    g:normal() -- a cached spare is part of the state
    local s = g:state()
    assert.equal(44, #s)
    assert.equal("XS1", s:sub(1, 3))
    local h = collapse.rng(0)
    h:load_state(s)
    assert.equal(g:normal(), h:normal())
    assert.equal(g:uniform(), h:uniform())
    expect_error("rng_restore: state has 3 bytes, expected 44", h.load_state, h, "abc")
  end)
end)
