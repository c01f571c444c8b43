-- Bad inputs to the file readers and writers (NPY, IDX, CSV, gzip, atomic writes): hostile sizes,
-- corrupt headers, truncation, wrong types. Each error names the reader, the file and what was expected.
local collapse = require("collapse")
local core = require("collapse.core")
local data = collapse.data
local C = require("support.catalogue")

local npy, idx, file = C.npy, C.idx, C.file
local F4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"
local gz = function(s) -- gzip through the system tool (same format zlib reads)
  local p = file(s)
  os.execute("gzip -n -f " .. p)
  local f = io.open(p .. ".gz", "rb")
  local b = f:read("a")
  f:close()
  os.remove(p .. ".gz")
  return b
end

local big_digits = ("9"):rep(400)

local entries = {
  -- NPY
  { "npy: not a string path", function() data.npy(42) end, { "data.npy", "path", "string" } },
  { "npy: missing file", function() data.npy("/nonexistent/x.npy") end, { "npy", "/nonexistent/x.npy", "cannot open" } },
  { "npy: a directory", function() data.npy("/tmp") end, { "npy", "/tmp", "directory" } },
  { "npy: empty file", function() data.npy(file("")) end, { "npy", "truncated header" } },
  { "npy: bad magic", function() data.npy(file("PK\3\4 not numpy at all")) end, { "npy", "bad magic", "\\x93NUMPY" } },
  { "npy: version 9.0", function() data.npy(file("\147NUMPY\9\0\0\0")) end, { "npy", "version 9.0", "expected 1.0" } },
  { "npy: header longer than the file", function() data.npy(file("\147NUMPY\1\0\255\0{'descr'")) end,
    { "npy", "truncated header" } },
  { "npy: v2 header length 4 GiB", function() data.npy(file("\147NUMPY\2\0\255\255\255\255")) end,
    { "npy", "header length", "limit" } },
  { "npy: header not a dict", function() data.npy(file(npy("[1, 2, 3]"))) end, { "npy", "corrupt header", "expected" } },
  { "npy: missing shape key", function() data.npy(file(npy("{'descr': '<f4', 'fortran_order': False, }"))) end,
    { "npy", "key 'shape' missing" } },
  { "npy: descr twice", function() data.npy(file(npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,), }"))) end,
    { "npy", "'descr' given twice" } },
  { "npy: complex dtype", function() data.npy(file(npy("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", ("\0"):rep(16)))) end,
    { "npy", "unsupported dtype '<c8'", "expected float32" } },
  { "npy: object dtype", function() data.npy(file(npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", ("\0"):rep(16)))) end,
    { "npy", "unsupported dtype", "expected" } },
  { "npy: fortran order", function() data.npy(file(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", ("\0"):rep(16)))) end,
    { "npy", "fortran_order is True", "C-order" } },
  { "npy: header declares 1e12 elements", function()
      data.npy(file(npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000, 1000000), }", "\0\0\0\0")))
    end, { "npy", "needs 8000000000000 bytes", "limit" } },
  { "npy: shape product overflows int64", function()
      data.npy(file(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4), }")))
    end, { "npy", "overflows the element count" } },
  { "npy: shape entry beyond int64", function()
      data.npy(file(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }")))
    end, { "npy", "overflows int64" } },
  { "npy: negative shape", function() data.npy(file(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }"))) end,
    { "npy", "corrupt header" } },
  { "npy: 40 dimensions", function()
      data.npy(file(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (" .. ("1, "):rep(40) .. "), }")))
    end, { "npy", "more than", "dimensions" } },
  { "npy: truncated data", function() data.npy(file(npy(F4, "\0\0\0\0"))) end, { "npy", "truncated data", "expected 8 bytes, got 4" } },
  { "npy: trailing bytes", function() data.npy(file(npy(F4, ("\0"):rep(12)))) end, { "npy", "unexpected data after the array" } },
  { "npy: gzip stream cut short", function() local g = gz(npy(F4, ("\0"):rep(8))); data.npy(file(g:sub(1, #g - 6))) end,
    { "npy", "gzip" } },
  { "npy: corrupt gzip body", function()
      local g = gz(npy(F4, ("\1"):rep(8)))
      data.npy(file(g:sub(1, 10) .. ("\255"):rep(#g - 18) .. g:sub(-8)))
    end, { "npy", "corrupt gzip data" } },
  { "npy: int64 value beyond int32", function()
      data.npy(file(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }", string.pack("<i8", 1 << 40))))
    end, { "npy", "outside the int32 range", "index 0" } },
  { "save_npy: not a tensor", function() data.save_npy({ 1, 2 }, file("")) end, { "data.save_npy", "t", "tensor" } },
  { "save_npy: path not a string", function() data.save_npy(collapse.tensor({ 1 }), 7) end, { "data.save_npy", "path", "string" } },
  { "save_npy: into a missing folder", function() data.save_npy(collapse.tensor({ 1 }), "/nonexistent/dir/a.npy") end,
    { "/nonexistent/dir/a.npy", "cannot create temporary file" } },
  -- IDX
  { "idx: images path missing", function() data.idx{ labels = "x" } end, { "data.idx", "images and labels paths are required" } },
  { "idx: unknown option", function() data.idx{ images = "a", labels = "b", colour = true } end, { "data.idx", "unknown option 'colour'" } },
  { "idx: empty file", function() core.idx_read(file(""), false, 0, 0) end, { "idx", "truncated header" } },
  { "idx: bad magic", function() core.idx_read(file("\1\2\8\1\0\0\0\1x"), false, 0, 0) end, { "idx", "magic" } },
  { "idx: unknown type code", function() core.idx_read(file(idx(0x42, { 1 }, "\0")), false, 0, 0) end, { "idx", "type" } },
  { "idx: zero dimensions", function() core.idx_read(file(idx(0x08, {}, "")), false, 0, 0) end, { "idx", "0 dimensions", "expected 1.." } },
  { "idx: truncated sizes", function() core.idx_read(file(string.pack("BBBB", 0, 0, 8, 3) .. "\0\0\0\1"), false, 0, 0) end,
    { "idx", "truncated header", "sizes" } },
  { "idx: header declares 1e12 elements", function()
      core.idx_read(file(idx(0x0E, { 1000000, 1000000 }, "\0\0\0\0")), false, 0, 0)
    end, { "idx", "needs", "limit" } },
  { "idx: truncated data", function() core.idx_read(file(idx(0x08, { 10 }, "\1\2\3")), false, 0, 0) end,
    { "idx", "truncated", "expected 10 bytes, got 3" } },
  { "idx: trailing bytes", function() core.idx_read(file(idx(0x08, { 2 }, "\1\2\3")), false, 0, 0) end, { "idx", "after" } },
  { "idx: float labels refused", function()
      data.idx{ images = file(idx(0x08, { 2, 1 }, "\0\0")), labels = file(idx(0x0D, { 2 }, string.pack(">f>f", 1.5, 2))) }
    end, { "idx", "label_offset 1 given but the data is [2] float", "expected an integer type" } },
  { "idx: label beyond int32 after the offset", function()
      data.idx{ images = file(idx(0x08, { 1, 1 }, "\0")), labels = file(idx(0x0C, { 1 }, string.pack(">i4", 0x7fffffff))) }
    end, { "idx", "label offset", "outside the int32 range" } },
  { "idx: images and labels of different counts", function()
      data.idx{ images = file(idx(0x08, { 3, 1 }, "\0\0\0")), labels = file(idx(0x08, { 2 }, "\0\1")) }
    end, { "Dataset", "x has 3 samples but y has 2 labels" } },
  { "idx: negative limit", function() core.idx_read(file(idx(0x08, { 2 }, "\1\2")), false, 0, -1) end, { "idx", "limit -1", "expected 0" } },
  -- CSV
  { "csv: path not a string", function() data.csv(false) end, { "data.csv", "path", "string" } },
  { "csv: unknown option", function() data.csv(file("1,2\n"), { labelcolumn = 1 }) end, { "data.csv", "unknown option 'labelcolumn'" } },
  { "csv: empty file", function() data.csv(file("")) end, { "csv", "no data rows", "empty" } },
  { "csv: only a header", function() data.csv(file("a,b\n")) end, { "csv", "no data rows", "only a header line" } },
  { "csv: ragged row", function() data.csv(file("1,2\n3\n")) end, { "csv", "line 2", "1 cell, expected 2" } },
  { "csv: word in a data row", function() data.csv(file("1,2\n3,abc\n")) end, { "csv", "line 2 column 2", "'abc' is not a number" } },
  { "csv: empty cell", function() data.csv(file("1,2\n3,\n")) end, { "csv", "line 2 column 2", "empty cell, expected a number" } },
  { "csv: hex number", function() data.csv(file("1,2\n0x10,3\n")) end, { "csv", "line 2 column 1", "not a number" } },
  { "csv: cell of 400 digits", function() data.csv(file("1,2\n" .. big_digits .. ",3\n")) end,
    { "csv", "line 2 column 1", "cell of 400 characters", "at most 127" } },
  { "csv: label column beyond the columns", function() data.csv(file("1,2\n"), { label_column = 3 }) end,
    { "csv", "label_column 3", "2 columns" } },
  { "csv: negative label column", function() data.csv(file("1,2\n"), { label_column = -1 }) end,
    { "csv", "label_column -1", "expected 0" } },
  { "csv: float label 1.5", function() data.csv(file("1,1.5\n2,2\n"), { label_column = 2 }) end,
    { "csv", "line 1 column 2", "label '1.5' is not an integer" } },
  { "csv: label 0 with classes from 1", function() data.csv(file("1,0\n2,1\n"), { label_column = 2 }) end,
    { "Dataset", "label 0 at index 1 is outside 1.." } },
  { "csv: label beyond int32", function() data.csv(file("1,3000000000\n"), { label_column = 2 }) end,
    { "csv", "not an integer in the int32 range" } },
  { "csv: truncated gzip", function() local g = gz("1,2\n3,4\n"); data.csv(file(g:sub(1, #g - 5))) end, { "csv", "gzip" } },
  -- atomic writes
  { "write_file_atomic: empty path", function() core.write_file_atomic("", "x") end, { "write_file_atomic", "path expected" } },
  { "write_file_atomic: a directory path", function() core.write_file_atomic("/tmp/", "x") end,
    { "write_file_atomic", "names a directory" } },
  { "write_file_atomic: missing folder", function() core.write_file_atomic("/nonexistent/f", "x") end,
    { "write_file_atomic", "/nonexistent/f", "No such file or directory" } },
}

local valid = {
  { "npy: an empty [0 x 3] array", function()
      local t = data.npy(file(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }")))
      assert(t:size(1) == 0 and t:size(2) == 3)
    end },
  { "npy: gzip-compressed", function() assert(data.npy(file(gz(npy(F4, string.pack("<f<f", 1, 2))))):totable()[2] == 2) end },
  { "csv: a 127-character number", function()
      local x = data.csv(file("1,2\n" .. "1." .. ("0"):rep(125) .. ",3\n"))
      assert(x:size(1) == 2)
    end },
  { "csv: comments, CRLF and a header", function() assert(data.csv(file("# c\r\na,b\r\n1,2\r\n")):size(1) == 1) end },
  { "idx: integral labels through the offset", function()
      local ds = data.idx{ images = file(idx(0x08, { 2, 1 }, "\0\0")), labels = file(idx(0x08, { 2 }, "\0\1")) }
      assert(ds.y:totable()[2] == 2 and ds.classes == 2)
    end },
}

describe("bad input: io readers and writers", function()
  C.run(it, entries)
  C.valid(it, valid)
  teardown(C.cleanup)
end)

return entries
