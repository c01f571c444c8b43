-- luarocks --lua-version=5.4 make rockspec/collapse-scm-1.rockspec   (from a clone; works offline)
rockspec_format = "3.0"
package = "collapse"
version = "scm-1"
source = {
  url = "git+file:///dev/null", -- built from a local clone with `luarocks make`
}
description = {
  summary = "Neural collapse with batch normalization and weight decay: tensors, training, metrics, bound",
  detailed = [[
    A C library (OpenBLAS + LAPACKE) with a Lua 5.4 front end for studying neural collapse as in
    Pan & Cao, "Towards Understanding Neural Collapse: The Effects of Batch Normalization and
    Weight Decay" (arXiv 2309.04644): train MLPs with and without BN under weight decay, measure
    how collapsed the last-layer features are, and compare with the certified bound.
  ]],
  license = "MIT",
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
-- System libraries (Debian: libopenblas-dev liblapacke-dev zlib1g-dev); found by CMake's pkg-config.
external_dependencies = {
  OPENBLAS = { library = "openblas" },
  LAPACKE = { library = "lapacke" },
  ZLIB = { header = "zlib.h" },
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    COLLAPSE_LUA_CMOD_DIR = "$(LIBDIR)",
    COLLAPSE_LUA_LMOD_DIR = "$(LUADIR)",
    COLLAPSE_BUILD_TESTS = "OFF",
    COLLAPSE_INSTALL_CLIB = "OFF", -- the C library and header install with CMake (README)
  },
  install = {
    bin = { collapse = "scripts/collapse" },
  },
}
