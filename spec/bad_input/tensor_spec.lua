-- Bad inputs to the tensor API (collapse.tensor/zeros/ones/full/arange/randn/rand, every tensor
-- method, arithmetic), collapse.rng and its methods, and the collapse-level setters. Each error
-- names the function, the argument and what was expected (spec/support/catalogue.lua).
local collapse = require("collapse")
local core = require("collapse.core")
local C = require("support.catalogue")

local function v4() return collapse.tensor({ 1, 2, 3, 4 }, "float64") end
local function m22() return collapse.tensor({ { 1, 2 }, { 3, 4 } }, "float64") end

local entries = {
  -- constructors
  { "tensor: a string", function() collapse.tensor("abc") end, { "tensor", "argument 1", "table of numbers expected, got string" } },
  { "tensor: ragged rows", function() collapse.tensor({ { 1, 2 }, { 3 } }) end, { "tensor", "ragged table", "entry" } },
  { "tensor: a non-number entry", function() collapse.tensor({ 1, "x" }) end, { "tensor", "non-numeric entry at [2]", "string" } },
  { "tensor: unknown dtype", function() collapse.tensor({ 1 }, "int8") end, { "tensor", "argument 2", "unknown dtype 'int8'", "float32, float64 or int32" } },
  { "tensor: 1.5 as int32", function() collapse.tensor({ 1.5 }, "int32") end, { "tensor", "entry 1.5", "int32 value" } },
  { "zeros: negative size", function() collapse.zeros({ -1 }) end, { "zeros", "argument 1", "shape entry 1 must be a non-negative integer, got -1" } },
  { "zeros: shape a string", function() collapse.zeros("3") end, { "zeros", "argument 1", "shape table expected, got string" } },
  { "zeros: fractional size", function() collapse.zeros({ 2, 1.5 }) end, { "zeros", "shape entry 2", "non-negative integer" } },
  { "zeros: 9 dimensions", function() collapse.zeros({ 1, 1, 1, 1, 1, 1, 1, 1, 1 }) end, { "zeros", "argument 1", "at most" } },
  { "zeros: 2^80 elements", function() collapse.zeros({ 2 ^ 40, 2 ^ 40 }) end, { "shape is too large" } },
  { "ones: unknown dtype", function() collapse.ones({ 2 }, "complex") end, { "full", "unknown dtype 'complex'" } },
  { "full: value a string", function() collapse.full({ 2 }, "x") end, { "full", "argument 2", "number expected, got string" } },
  { "arange: negative", function() collapse.arange(-1) end, { "arange", "argument 1", "non-negative length expected, got -1" } },
  { "arange: 1.5", function() collapse.arange(1.5) end, { "arange", "argument 1", "integer expected, got 1.5" } },
  { "randn: rng a number", function() collapse.randn({ 2 }, { rng = 3 }) end, { "randn", "option rng", "generator (collapse.rng(seed))" } },
  { "randn: int32 dtype", function() collapse.randn({ 2 }, { dtype = "int32" }) end, { "randn", "float32 or float64", "int32" } },
  { "rand: unknown option", function() collapse.rand({ 2 }, { seed = 1 }) end, { "rand", "unknown option 'seed'" } },
  { "randn: options a string", function() collapse.randn({ 2 }, "float64") end, { "randn", "options must be a table, got string" } },
  { "frombytes: too few bytes", function() core.frombytes("abc", { 2 }, "float64") end, { "frombytes", "3 bytes", "2 float64 elements" } },
  { "set_default_dtype: int32", function() collapse.set_default_dtype("int32") end, { "set_default_dtype", "'float32' or 'float64'", "int32" } },
  { "manual_seed: a string", function() collapse.manual_seed("x") end, { "seed", "argument 1", "integer expected, got string" } },
  -- element access and views
  { "get: index 0", function() v4():get(0) end, { "get", "index 0", "out of range 1..4" } },
  { "get: two indices for a 1-d tensor", function() v4():get(1, 1) end, { "get", "expected 1 indices for a 1-d tensor, got 2" } },
  { "set: value a string", function() v4():set(1, "x") end, { "set", "argument 2", "number expected, got string" } },
  { "set: index past the end", function() v4():set(9, 1) end, { "set", "index 9", "out of range 1..4" } },
  { "t[i] = x: index a string", function() local t = v4(); t[1.5] = 2 end, { "argument", "integer expected, got 1.5" } },
  { "reshape: wrong element count", function() v4():reshape({ 3 }) end, { "reshape", "[4] (4 elements)", "[3] (3 elements)" } },
  { "reshape: two -1", function() v4():reshape({ -1, -1 }) end, { "reshape", "dimension 2", "invalid" } },
  { "reshape: shape a number", function() v4():reshape(4) end, { "reshape", "argument 1", "table expected, got number" } },
  { "narrow: start 0", function() v4():narrow(1, 0, 1) end, { "narrow", "elements 0..0", "out of range 1..4" } },
  { "narrow: dimension 2 of a 1-d tensor", function() v4():narrow(2, 1, 1) end, { "narrow", "dimension 2", "out of range 1..1" } },
  { "narrow: past the end", function() v4():narrow(1, 3, 5) end, { "narrow", "elements 3..7", "out of range 1..4" } },
  { "narrow: length a string", function() v4():narrow(1, 1, "2") end, { "narrow", "argument 3", "integer expected, got string" } },
  { "select: dimension 2 of a 1-d tensor", function() v4():select(2, 1) end, { "select", "dimension 2", "1-d tensor" } },
  { "row: index 5 of 2", function() m22():row(5) end, { "select", "index 5", "out of range 1..2" } },
  { "rows: index 0", function() m22():rows({ 0 }) end, { "rows", "index 0 at position 1", "out of range 1..2" } },
  { "rows: index a string", function() m22():rows("x") end, { "rows", "index", "int32 tensor or an array of integers" } },
  { "rows_into: destination a table", function() m22():rows_into({ 1 }, {}) end, { "rows_into", "argument", "tensor expected" } },
  { "size: dimension 3 of a 1-d tensor", function() v4():size(3) end, { "size", "dimension 3", "out of range 1..1" } },
  { "t: a 1-d tensor", function() v4():t() end, { "t", "expected a 2-d tensor", "[4]" } },
  { "to: unknown dtype", function() v4():to("int8") end, { "to", "argument 1", "unknown dtype 'int8'" } },
  { "to: dtype a number", function() v4():to(3) end, { "to", "argument 1", "string expected, got number" } },
  -- in-place and arithmetic
  { "fill: a string", function() v4():fill("a") end, { "fill", "argument 1", "number expected, got string" } },
  { "copy: shape mismatch", function() v4():copy(m22():narrow(1, 1, 1)) end, { "copy", "size mismatch", "destination [4], source [1 x 2]" } },
  { "resize: negative", function() v4():resize({ -2 }) end, { "resize", "argument 1", "non-negative integer, got -2" } },
  { "add: shapes", function() return v4() + m22() end, { "add", "size mismatch", "[4] and [2 x 2]", "shapes must match" } },
  { "add: a string", function() return v4() + "x" end, { "add", "argument 2", "tensor or number expected, got string" } },
  { "add: float64 + float32", function() v4():add(collapse.tensor({ 1, 2, 3, 4 }, "float32")) end, { "add", "dtype mismatch", "float64 and float32" } },
  { "mul: trailing shape", function() return v4() * collapse.tensor({ 1, 2 }, "float64") end, { "mul", "size mismatch", "[4] and [2]" } },
  { "matmul: inner sizes", function() m22():matmul(collapse.tensor({ { 1, 2, 3 } }, "float64")) end, { "matmul", "size mismatch", "[2 x 2] @ [1 x 3]" } },
  { "matmul: int32", function() collapse.tensor({ 1, 2 }, "int32"):matmul(collapse.tensor({ 1, 2 }, "int32")) end, { "matmul", "float32 or float64", "int32" } },
  { "dot: lengths", function() v4():dot(collapse.tensor({ 1, 2 }, "float64")) end, { "dot", "size mismatch", "[4] and [2]" } },
  { "max: dimension 2 of a 1-d tensor", function() v4():max(2) end, { "max", "dimension 2", "out of range 1..1" } },
  { "argmax: no dimension", function() v4():argmax() end, { "argmax", "argument 1", "integer expected, got no value" } },
  { "a closed tensor", function() local t = v4(); t:close(); t:sum() end, { "sum", "self", "the tensor is closed" } },
  { "t.sum(5): self not a tensor", function() local t = v4(); t.sum(5) end, { "sum", "argument 1", "tensor expected, got number" } },
  { "t.close(): no self", function() v4().close() end, { "close", "tensor expected", "t:close()" } },
  -- generators
  { "rng: a string seed", function() collapse.rng("a") end, { "rng", "seed must be an integer", "a" } },
  { "rng: seed 1.5", function() collapse.rng(1.5) end, { "rng", "seed must be an integer", "1.5" } },
  { "rng:seed a string", function() collapse.rng(1):seed("x") end, { "seed", "argument 1", "integer expected, got string" } },
  { "rng:uniform a string", function() collapse.rng(1):uniform("x") end, { "uniform", "argument 1", "number expected, got string" } },
  { "rng:integer no bounds", function() collapse.rng(1):integer() end, { "integer", "argument", "integer expected, got no value" } },
  { "rng:permutation -2", function() collapse.rng(1):permutation(-2) end, { "permutation", "n must be in 0..2^31-1", "-2" } },
  { "rng:load_state 5 bytes", function() collapse.rng(1):load_state("short") end, { "rng_restore", "5 bytes", "expected 44" } },
  { "rng.normal(): self missing", function() local g = collapse.rng(1); g.normal() end, { "normal", "argument 1", "generator (collapse.rng) expected, got no value" } },
}

local valid = {
  { "an empty tensor and its sum", function() assert(collapse.zeros({ 0 }):sum() == 0) end },
  { "a 0-row matrix times a matrix", function()
      local p = collapse.zeros({ 0, 3 }, "float64"):matmul(collapse.zeros({ 3, 2 }, "float64"))
      assert(p:size(1) == 0 and p:size(2) == 2)
    end },
  { "closing twice", function() local t = v4(); t:close(); t:close() end },
  { "narrow to 0 elements at the end", function() assert(v4():narrow(1, 5, 0):numel() == 0) end },
  { "a scalar broadcast", function() assert((v4() * 2):sum() == 20) end },
  { "rng:permutation(0)", function() assert(#collapse.rng(1):permutation(0):totable() == 0) end },
  { "a generator state round trip", function()
      local g = collapse.rng(5); g:normal(); local s = g:state(); local a = g:normal(); g:load_state(s)
      assert(g:normal() == a)
    end },
}

describe("bad input: tensors and generators", function()
  C.run(it, entries)
  C.valid(it, valid)
end)
