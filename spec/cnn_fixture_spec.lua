-- The PyTorch CNN fixtures of issue 9 (spec/fixtures/torch_cnn, made by make_cnn_fixtures.py),
-- read with data.npz. Checks that they are complete and self-consistent, and cross-checks the
-- VGG one against the library's existing layers (Conv2d, BatchNorm2d, ReLU, MaxPool2d, Flatten,
-- Linear): the model builders of issue 9 (models.vgg / models.resnet18) are tested against the
-- same files once they exist.
local collapse = require("collapse")
local fixture = require("support.fixture")
local nn = collapse.nn

local DIR = fixture.root .. "/spec/fixtures/torch_cnn/"

-- "param name d1 d2 ..." lines of the names file, in model.parameters() order.
local function names(model)
  local out = {}
  for line in io.lines(DIR .. model .. ".names.txt") do
    local kind, name, dims = line:match("^(%a+) (%S+)%s*(.*)$")
    if kind and kind ~= "#" then
      local shape = {}
      for d in dims:gmatch("%d+") do shape[#shape + 1] = tonumber(d) end
      out[#out + 1] = { kind = kind, name = name, shape = shape }
    end
  end
  return out
end

local function max_rel(a, b)
  local x, y = a:reshape({ -1 }):totable(), b:reshape({ -1 }):totable()
  assert.are.equal(#y, #x)
  local worst = 0
  for i = 1, #y do
    local e = math.abs(x[i] - y[i]) / math.max(1, math.abs(y[i]))
    if e > worst or e ~= e then worst = e end
  end
  return worst
end

-- Mean cross-entropy of logits [n x C] against 1-based labels, in plain Lua (double).
local function cross_entropy(logits, labels)
  local l, y, total = logits:totable(), labels:totable(), 0
  for i = 1, #l do
    local m = -math.huge
    for _, v in ipairs(l[i]) do m = math.max(m, v) end
    local s = 0
    for _, v in ipairs(l[i]) do s = s + math.exp(v - m) end
    total = total + (m + math.log(s) - l[i][y[i]])
  end
  return total / #l
end

for _, model in ipairs({ "vgg11_w16", "resnet18_w4" }) do
  describe("torch_cnn/" .. model, function()
    local z = collapse.data.npz(DIR .. model .. ".npz")
    it("holds every parameter, gradient and BN buffer of the names file, with its shape", function()
      local list = names(model)
      assert.is_true(#list > 20)
      for _, e in ipairs(list) do
        local keys = e.kind == "param" and { "param.", "grad." } or { "buffer0.", "buffer1." }
        for _, k in ipairs(keys) do
          local t = z[k .. e.name]
          assert.is_not_nil(t, k .. e.name)
          assert.are.same(e.shape, t:shape())
          assert.are.equal("float64", t:dtype())
        end
      end
      assert.are.same({ 4, 3, 32, 32 }, z.input:shape())
      assert.are.same({ 4, 10 }, z.logits:shape())
      assert.are.same({ 4, 10 }, z.eval_logits:shape())
      assert.are.equal("int32", z.labels:dtype())
    end)
    it("loss is the mean cross-entropy of its logits", function()
      assert.is_true(math.abs(cross_entropy(z.logits, z.labels) - z.loss:totable()[1]) < 1e-12)
    end)
  end)
end

describe("torch_cnn/vgg11_w16 against the existing layers (float64, 1e-10)", function()
  local z = collapse.data.npz(DIR .. "vgg11_w16.npz")
  -- torchvision's flat feature indices map one to one onto a Sequential (index + 1)
  local mods, cin = {}, 3
  for _, c in ipairs({ 4, "M", 8, "M", 16, 16, "M", 32, 32, "M", 32, 32, "M" }) do
    if c == "M" then
      mods[#mods + 1] = nn.MaxPool2d(2, 2)
    else
      mods[#mods + 1] = nn.Conv2d(cin, c, 3, { padding = 1, dtype = "float64" })
      mods[#mods + 1] = nn.BatchNorm2d(c, { dtype = "float64" })
      mods[#mods + 1] = nn.ReLU()
      cin = c
    end
  end
  local nfeat = #mods
  mods[#mods + 1] = nn.Flatten()
  mods[#mods + 1] = nn.Linear(32, 10, { dtype = "float64" })
  local net = nn.Sequential(mods)
  local function module_of(name)
    local part, i, field = name:match("^(%a+)%.(%d+)%.(.+)$")
    local m = part == "features" and net:get(tonumber(i) + 1) or net:get(nfeat + 2)
    return m, field
  end
  for _, e in ipairs(names("vgg11_w16")) do
    local m, field = module_of(e.name)
    m[field]:copy(z[(e.kind == "param" and "param." or "buffer0.") .. e.name])
  end

  it("train-mode logits, loss, every gradient and the running statistics; eval-mode logits", function()
    local crit = nn.CrossEntropyLoss()
    net:zero_grad()
    local logits = net:forward(z.input)
    local loss = crit:forward(logits, z.labels)
    net:backward(z.input, crit:backward(logits, z.labels))
    assert.is_true(max_rel(logits, z.logits) < 1e-10)
    assert.is_true(math.abs(loss - z.loss:totable()[1]) < 1e-10)
    for _, e in ipairs(names("vgg11_w16")) do
      local m, field = module_of(e.name)
      if e.kind == "param" then
        local err = max_rel(m[field .. "_grad"], z["grad." .. e.name])
        assert.is_true(err < 1e-10, e.name .. (" gradient error %.3g"):format(err))
      else
        assert.is_true(max_rel(m[field], z["buffer1." .. e.name]) < 1e-10, e.name)
      end
    end
    net:evaluate()
    assert.is_true(max_rel(net:forward(z.input), z.eval_logits) < 1e-10)
  end)
end)
