-- The BLAS kernel choice (collapse.cpu, collapse.blas_select, collapse.blas_info): the rule as
-- logic over CPU feature sets and OpenBLAS 0.3.21's own picks, then end to end in child
-- processes, on whatever CPU runs the suite. The suite itself never sets OPENBLAS_CORETYPE;
-- children launched with it set explicitly check that a user's value wins.
local collapse = require("collapse")
local cpu = require("collapse.cpu")
local fixture = require("support.fixture")

local AVX512 = { avx = true, avx2 = true, fma = true, avx512f = true, avx512vl = true }
local function intel(model, flags, extra)
  local c = { vendor = "intel", family = 6, model = model }
  for k, v in pairs(flags or {}) do c[k] = v end
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end
local AVX2 = { avx = true, avx2 = true, fma = true }

-- Runs Lua code in a child process against this tree; env is a shell prefix ("" for none).
-- OPENBLAS_CORETYPE and COLLAPSE_BLAS_CHOSEN are removed first (`env -u`), so the child starts
-- as a fresh user's process would, whatever this process inherited.
local function child(env, code)
  local cmd = ("env -u OPENBLAS_CORETYPE -u COLLAPSE_BLAS_CHOSEN %s %s/scripts/lua -e %q 2>&1"):format(env,
    fixture.root, code)
  local p = io.popen(cmd)
  local out = p:read("a")
  p:close()
  return out
end
local REPORT = [[local i = require("collapse").blas_info(); print(i.core .. "|" .. i.selected_by .. "|" .. i.reason)]]
local function parse(out)
  local core, by, reason = out:match("([^|\n]+)|([^|]+)|([^\n]*)")
  assert(core, "child said: " .. out)
  return core, by, reason
end

describe("OpenBLAS 0.3.21's own pick (collapse.cpu.openblas_pick)", function()
  it("knows the CPUs in its table", function()
    assert.equal("SkylakeX", cpu.openblas_pick(intel(0xA7, AVX512, { avx512_bf16 = true }))) -- Rocket Lake id
    assert.equal("Cooperlake", cpu.openblas_pick(intel(0x8F, AVX512, { avx512_bf16 = true }))) -- Sapphire Rapids
    assert.equal("SkylakeX", cpu.openblas_pick(intel(0x55, AVX512))) -- Skylake-SP without bf16
    assert.equal("Haswell", cpu.openblas_pick(intel(0x9E, AVX2))) -- Kaby/Coffee Lake
    assert.equal("Haswell", cpu.openblas_pick(intel(0x66, AVX512))) -- Cannon Lake: Haswell despite AVX-512
    assert.equal("Sandybridge", cpu.openblas_pick(intel(0x2A, { avx = true })))
    assert.equal("Zen", cpu.openblas_pick{ vendor = "amd", family = 0x17, model = 0x31, avx = true, avx2 = true, fma = true })
    assert.equal("Cooperlake", cpu.openblas_pick{ vendor = "amd", family = 0x19, model = 0x11, avx = true, avx2 = true,
      fma = true, avx512f = true, avx512vl = true, avx512_bf16 = true }) -- Zen 4
  end)

  it("falls back to Prescott on Intel family-6 models newer than its table", function()
    assert.equal("Prescott", cpu.openblas_pick(intel(0xCF, AVX512, { avx512_bf16 = true }))) -- Emerald Rapids
    assert.equal("Prescott", cpu.openblas_pick(intel(0xB7, AVX2))) -- Raptor Lake
  end)

  it("picks by features when it does not know the model at all", function()
    assert.equal("Cooperlake", cpu.openblas_pick(intel(0xAD, AVX512, { avx512_bf16 = true }))) -- Granite Rapids
    assert.equal("SkylakeX", cpu.openblas_pick{ vendor = "amd", family = 0x1A, model = 0x44, avx = true, avx2 = true,
      fma = true, avx512f = true, avx512vl = true }) -- Zen 5
    assert.equal("Haswell", cpu.openblas_pick{ vendor = "other", family = 6, model = 1, avx = true, avx2 = true, fma = true })
  end)
end)

describe("the choice (collapse.cpu.choose / best_core)", function()
  it("sets the CPU's best core only when OpenBLAS would pick a slower one", function()
    assert.equal("SkylakeX", cpu.choose(intel(0xCF, AVX512), "Prescott"))
    assert.equal("Haswell", cpu.choose(intel(0xB7, AVX2), "Prescott"))
    assert.equal("SkylakeX", cpu.choose(intel(0x66, AVX512), "Haswell"))
    assert.is_nil(cpu.choose(intel(0xA7, AVX512), "SkylakeX"))
    assert.is_nil(cpu.choose(intel(0x8F, AVX512, { avx512_bf16 = true }), "Cooperlake")) -- never a downgrade
    assert.is_nil(cpu.choose(intel(0x9E, AVX2), "Haswell"))
    assert.is_nil(cpu.choose({ vendor = "intel", family = 6, model = 0x17 }, "Core2")) -- nothing better to run
    assert.is_nil(cpu.choose(intel(0xCF, AVX512), "SapphireRapids")) -- a newer OpenBLAS's name: left alone
  end)

  it("without a pick, compares with OpenBLAS 0.3.21's own", function()
    assert.equal("SkylakeX", cpu.choose(intel(0xCF, AVX512)))
    assert.is_nil(cpu.choose(intel(0xA7, AVX512)))
  end)

  it("names the feature behind the best core and ranks core names", function()
    assert.same({ "SkylakeX", "avx512f" }, { cpu.best_core(intel(0xCF, AVX512)) })
    assert.same({ "Haswell", "avx2" }, { cpu.best_core(intel(0xCF, AVX2)) })
    assert.same({ "Prescott", "sse3" }, { cpu.best_core(intel(0xCF, {})) })
    assert.is_true(cpu.core_rank("prescott") < cpu.core_rank("Haswell"))
    assert.is_true(cpu.core_rank("Haswell") < cpu.core_rank("SKYLAKEX"))
    assert.equal(-1, cpu.core_rank("NoSuchCore"))
  end)

  it("rejects a malformed CPU table with a message naming the field", function()
    local ok, err = pcall(cpu.choose, { vendor = "via", family = 6, model = 1 })
    assert.is_false(ok)
    assert.matches("cpu.choose: field 'vendor'", err, 1, true)
    ok, err = pcall(cpu.openblas_pick, { vendor = "intel", family = "six", model = 1 })
    assert.is_false(ok)
    assert.matches("field 'family'", err, 1, true)
  end)
end)

describe("collapse.blas_info() in this process", function()
  it("reports the kernel that runs and why, consistent with the choice", function()
    local info = collapse.blas_info()
    assert.is_string(info.core)
    assert.is_truthy(({ collapse = true, user = true, openblas = true })[info.selected_by])
    assert.is_string(info.reason)
    local features = cpu.features()
    assert.equal(cpu.best_core(features), info.cpu_best)
    if info.selected_by == "openblas" and info.config:match("^OpenBLAS 0%.3%.21 ") and not os.getenv("COLLAPSE_BLAS_AUTO") then
      -- the prediction of OpenBLAS's own pick is checked against the real thing on this CPU
      assert.equal(info.openblas_pick:lower(), info.core:lower())
    end
    if info.selected_by == "collapse" then assert.equal(info.cpu_best:lower(), info.core:lower()) end
    -- whatever was chosen, no generic kernel is left running where a better one exists, unless opted out
    if info.selected_by ~= "user" and os.getenv("COLLAPSE_BLAS_AUTO") ~= "0" then
      assert.is_true(cpu.core_rank(info.core) >= cpu.core_rank(info.cpu_best) or cpu.core_rank(info.core) < 0)
    end
  end)
end)

describe("the choice end to end (child processes)", function()
  it("a user's OPENBLAS_CORETYPE always wins", function()
    -- set explicitly for this child only, as a user would
    local core, by, reason = parse(child("OPENBLAS_CORETYPE=Haswell", REPORT))
    assert.equal("Haswell", core)
    assert.equal("user", by)
    assert.matches("set by user", reason, 1, true)
    core, by = parse(child("OPENBLAS_CORETYPE=Haswell COLLAPSE_BLAS_AUTO=1", REPORT))
    assert.equal("Haswell", core)
    assert.equal("user", by)
  end)

  it("sets the better core before OpenBLAS loads, when OpenBLAS would pick a worse one", function()
    -- pretend to be an AVX2 Raptor Lake (OpenBLAS 0.3.21: Prescott); Haswell runs on any AVX2 CPU
    local features = cpu.features()
    if not (features.avx2 and features.fma) then return pending("needs an AVX2 CPU") end
    local code = [[require("collapse.blas_select").select{ cpu = { vendor = "intel", family = 6, model = 0xB7,
      avx = true, avx2 = true, fma = true } }; ]] .. REPORT
      .. [[; print("env=" .. tostring(os.getenv("OPENBLAS_CORETYPE")))]]
    local out = child("", code)
    local core, by, reason = parse(out)
    assert.equal("Haswell", core)
    assert.equal("collapse", by)
    assert.matches("chosen by collapse: CPU has avx2; OpenBLAS 0.3.21 would pick Prescott", reason, 1, true)
    assert.matches("env=Haswell", out, 1, true) -- and it is what children of that process inherit
  end)

  it("a child process of a collapse that chose reports it as collapse's choice", function()
    local core, by = parse(child("OPENBLAS_CORETYPE=Haswell COLLAPSE_BLAS_CHOSEN=Haswell", REPORT))
    assert.equal("Haswell", core)
    assert.equal("collapse", by)
  end)

  it("COLLAPSE_BLAS_AUTO=0 leaves the choice to OpenBLAS", function()
    local code = [[require("collapse.blas_select").select{ cpu = { vendor = "intel", family = 6, model = 0xB7,
      avx = true, avx2 = true, fma = true } }; ]] .. REPORT
    local core, by, reason = parse(child("COLLAPSE_BLAS_AUTO=0", code))
    assert.equal("openblas", by)
    assert.matches("COLLAPSE_BLAS_AUTO=0", reason, 1, true)
    assert.not_equal("", core)
  end)

  it("says so when OpenBLAS was loaded before collapse (too late to choose)", function()
    local code = [[package.loadlib(package.searchpath("collapse.core", package.cpath), "*")
      require("collapse.blas_select").select{ cpu = { vendor = "intel", family = 6, model = 0xB7,
      avx = true, avx2 = true, fma = true } }; ]] .. REPORT
    local _, by, reason = parse(child("", code))
    assert.equal("openblas", by)
    assert.matches("too late", reason, 1, true)
  end)
end)
