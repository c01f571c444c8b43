--- collapse: neural collapse with batch normalization and weight decay.
-- local collapse = require("collapse")   -- sets no globals
-- Tensors live in C (csrc/core); this file adds defaults, printing and the submodules.
-- The BLAS kernel is chosen before collapse.core loads OpenBLAS (see collapse.blas_select).
local blas_choice = require("collapse.blas_select").select()
local core = require("collapse.core")
local checks = require("collapse.checks")

local collapse = { version = core.version, core = core }

local default_dtype = "float32"
local FLOAT_DTYPES = { float32 = true, float64 = true }

--- The float dtype used when a constructor is given none ("float32" unless changed).
function collapse.default_dtype() return default_dtype end

function collapse.set_default_dtype(dtype)
  if not FLOAT_DTYPES[dtype] then
    checks.fail("set_default_dtype", "expected 'float32' or 'float64', got %s", tostring(dtype))
  end
  default_dtype = dtype
end

-- Shared default generator for randn/rand without an explicit rng.
local default_rng = core.rng(0)

--- Reseeds the default generator used by randn/rand when no rng is given.
function collapse.manual_seed(seed) default_rng:seed(seed) end

function collapse.rng(seed)
  if seed ~= nil and math.type(seed) ~= "integer" then
    checks.fail("rng", "seed must be an integer, got %s", tostring(seed))
  end
  return core.rng(seed or 0)
end

function collapse.tensor(data, dtype) return core.tensor(data, dtype or default_dtype) end
function collapse.zeros(shape, dtype) return core.zeros(shape, dtype or default_dtype) end
function collapse.ones(shape, dtype) return core.full(shape, 1, dtype or default_dtype) end
function collapse.full(shape, value, dtype) return core.full(shape, value, dtype or default_dtype) end
--- 1, 2, ..., n (int32 unless a dtype is given): the natural index vector in 1-based Lua.
function collapse.arange(n, dtype) return core.arange(n, dtype) end

local function random(fn, name)
  return function(shape, opts)
    opts = checks.options(name, opts, { dtype = true, rng = true })
    return fn(shape, opts.dtype or default_dtype, checks.rng(name, "option rng", opts.rng, true) or default_rng)
  end
end
collapse.randn = random(core.randn, "randn")
collapse.rand = random(core.rand, "rand")

function collapse.is_tensor(x) return getmetatable(x) == core.tensor_mt end
--- The metatable of generators made by collapse.rng (for argument checks).
collapse.rng_mt = core.rng_mt

-- BLAS ---------------------------------------------------------------------------
local hinted = false
--- OpenBLAS configuration, the kernel that runs ("core"), why it runs (selected_by = "collapse",
-- "user" or "openblas", and reason), thread count and CPU features. The first call warns on
-- stderr when a generic kernel still runs on an AVX2/AVX-512 CPU (opt-out or loaded too early).
function collapse.blas_info()
  local info = core.blas_info()
  info.selected_by, info.reason = blas_choice.by, blas_choice.reason
  info.openblas_pick, info.cpu_best = blas_choice.openblas_pick, blas_choice.cpu_best
  if blas_choice.core and info.core:lower() ~= blas_choice.core:lower() then
    info.reason = info.reason .. (" (but OpenBLAS runs %s)"):format(info.core)
  end
  if info.generic_core and not hinted then
    hinted = true
    io.stderr:write(("collapse: OpenBLAS runs its generic '%s' kernel on a CPU with %s (%s); matrix products "
      .. "may be several times faster with OPENBLAS_CORETYPE=%s set in the environment "
      .. "(see README, Performance)\n"):format(info.core, info.cpu_avx512 and "AVX-512" or "AVX2", info.reason,
      info.cpu_best))
  end
  return info
end
collapse.set_num_threads = core.set_num_threads
collapse.get_num_threads = core.get_num_threads
--- collapse.set_flush_denormal(on) -> supported: subnormal floats flushed to zero on this thread
-- (PyTorch's torch.set_flush_denormal; docs/api.md). collapse.get_flush_denormal() -> on.
collapse.set_flush_denormal = core.set_flush_denormal
collapse.get_flush_denormal = core.get_flush_denormal
collapse.bytes_in_use = core.bytes_in_use

-- Printing -------------------------------------------------------------------------
local function fmt_num(v, is_int)
  if is_int then return tostring(math.tointeger(v) or v) end
  return ("%.4g"):format(v)
end

local MAX_PRINT = 64 -- elements shown per row / rows shown

local function tensor_tostring(t)
  local shape = t:shape()
  local dims = {}
  for i, s in ipairs(shape) do dims[i] = tostring(s) end
  local header = ("collapse.tensor %s [%s]"):format(t:dtype(), table.concat(dims, " x "))
  local nd, is_int = #shape, t:dtype() == "int32"
  local lines = { header }
  local function row_str(r)
    local n, parts = #r, {}
    for j = 1, math.min(n, MAX_PRINT) do parts[#parts + 1] = fmt_num(r[j], is_int) end
    if n > MAX_PRINT then parts[#parts + 1] = "..." end
    return "  " .. table.concat(parts, " ")
  end
  if nd == 0 then
    lines[2] = "  " .. fmt_num(t:totable(), is_int)
  elseif nd == 1 then
    lines[2] = row_str(t:narrow(1, 1, math.min(shape[1], MAX_PRINT + 1)):totable())
  elseif nd == 2 then
    for i = 1, math.min(shape[1], MAX_PRINT) do
      local row = t:row(i)
      lines[#lines + 1] = row_str(row:narrow(1, 1, math.min(shape[2], MAX_PRINT + 1)):totable())
    end
    if shape[1] > MAX_PRINT then lines[#lines + 1] = "  ..." end
  end
  return table.concat(lines, "\n")
end
core.tensor_mt.__tostring = tensor_tostring
core.tensor_mt.__name = "collapse.tensor"

--- collapse.save(path, tbl) / collapse.load(path): checkpoints of tables and tensors.
function collapse.save(path, tbl) return require("collapse.checkpoint").save(path, tbl) end
function collapse.load(path) return require("collapse.checkpoint").load(path) end

--- collapse.experiment{...}:run() and collapse.sweep{...}: see docs/experiments.md.
function collapse.experiment(spec) return require("collapse.experiment")(spec) end
function collapse.sweep(spec, opts) return require("collapse.sweep")(spec, opts) end

-- Submodules load on first use: collapse.nn, collapse.optim, collapse.data, collapse.nc, ...
local SUBMODULES = { nn = true, optim = true, data = true, nc = true, checks = true,
  report = true, json = true, cli = true, checkpoint = true, fs = true, models = true, demo = true }
setmetatable(collapse, {
  __index = function(t, k)
    if SUBMODULES[k] then
      local m = require("collapse." .. k)
      rawset(t, k, m)
      return m
    end
  end,
})

return collapse
