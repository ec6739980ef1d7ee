#include "lora/baselines.h"

#include "tensor/error.h"
#include "tensor/strings.h"

namespace lowrank::lora {

using namespace lowrank::autograd;

namespace {

Device device_of(nn::GPT& model) { return model.wte.weight.device(); }

// A Linear whose weight and bias start at zero (the adapters' up projection): the adapter's
// residual branch is then exactly 0 and the adapted model computes what the base model does.
nn::Linear zero_linear(int64_t in, int64_t out, const nn::Init& init) {
  nn::Linear l(in, out, true, init, 0.f);
  l.weight = init.constant({out, in}, 0.f);
  l.weight.requires_grad_(true);
  return l;
}

// The Lp token ids the prefixes are initialised from: the caller's, or uniform over the vocabulary.
std::vector<int32_t> prefix_ids(const nn::GPT& model, int64_t len, Rng& rng, const std::vector<int32_t>& given) {
  LR_CHECK(len > 0, "prefix: length must be positive, got ", len);
  if (!given.empty()) {
    LR_CHECK(static_cast<int64_t>(given.size()) == len, "prefix: ", given.size(), " init ids for length ", len);
    return given;
  }
  std::vector<int32_t> ids(static_cast<size_t>(len));
  for (int32_t& id : ids) id = static_cast<int32_t>(rng.randint(model.config.vocab_size));
  return ids;
}

// The trainable copy of the last `len` positions of a cached (1, T, C) key or value tensor.
Tensor last_rows(const Tensor& cached, int64_t len) {
  const int64_t T = cached.size(1), C = cached.size(2);
  Tensor t = cached.narrow(1, T - len, len).clone().view({len, C});
  t.requires_grad_(true);
  return t;
}

}  // namespace

HoulsbyAdapter::HoulsbyAdapter(int64_t C, int64_t dim, const nn::Init& init)
    : down(C, dim, true, init), up(zero_linear(dim, C, init)) {
  LR_CHECK(dim > 0, "adapter: bottleneck dim must be positive, got ", dim);
}

Tensor HoulsbyAdapter::forward(const Tensor& x, const nn::Context& ctx) {
  return add(x, up.forward(gelu(down.forward(x, ctx)), ctx));
}

void HoulsbyAdapter::collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) {
  down.collect(prefix + "down.", out);
  up.collect(prefix + "up.", out);
}

LinAdapter::LinAdapter(int64_t C, int64_t dim, float eps, const nn::Init& init)
    : ln(C, eps, init), down(C, dim, true, init), up(zero_linear(dim, C, init)) {
  LR_CHECK(dim > 0, "adapter: bottleneck dim must be positive, got ", dim);
}

Tensor LinAdapter::forward(const Tensor& x, const nn::Context& ctx) {
  return add(x, up.forward(relu(down.forward(ln.forward(x), ctx)), ctx));
}

void LinAdapter::collect(const std::string& prefix, std::vector<nn::NamedTensor>& out) {
  ln.collect(prefix + "ln.", out);
  down.collect(prefix + "down.", out);
  up.collect(prefix + "up.", out);
}

int64_t apply_ft(nn::GPT& model) {
  model.set_requires_grad(true);
  return model.num_trainable_parameters();
}

int64_t apply_ft_top2(nn::GPT& model) {
  model.set_requires_grad(false);
  const size_t L = model.h.size();
  for (size_t i = L >= 2 ? L - 2 : 0; i < L; ++i) model.h[i]->set_requires_grad(true);
  return model.num_trainable_parameters();
}

int64_t apply_bitfit(nn::GPT& model) {
  model.set_requires_grad(false);
  for (nn::NamedTensor& p : model.named_parameters())
    if (ends_with(p.name, ".bias")) p.tensor.requires_grad_(true);
  return model.num_trainable_parameters();
}

int64_t apply_adapter_h(nn::GPT& model, int64_t dim, Rng& rng) {
  model.set_requires_grad(false);
  nn::Init init{rng, device_of(model)};
  for (auto& b : model.h) {
    b->adapter_attn = std::make_unique<HoulsbyAdapter>(model.config.n_embd, dim, init);
    b->adapter_mlp = std::make_unique<HoulsbyAdapter>(model.config.n_embd, dim, init);
  }
  return model.num_trainable_parameters();
}

int64_t apply_adapter_l(nn::GPT& model, int64_t dim, Rng& rng) {
  model.set_requires_grad(false);
  nn::Init init{rng, device_of(model)};
  for (auto& b : model.h) {
    b->adapter_attn.reset();
    b->adapter_mlp = std::make_unique<LinAdapter>(model.config.n_embd, dim, model.config.layer_norm_eps, init);
  }
  return model.num_trainable_parameters();
}

int64_t apply_prefix_embed(nn::GPT& model, int64_t len, Rng& rng, const std::vector<int32_t>& init_ids) {
  model.set_requires_grad(false);
  std::vector<int32_t> ids = prefix_ids(model, len, rng, init_ids);
  if (device_of(model) == Device::Meta) {
    model.prefix_embed = Tensor::empty({len, model.config.n_embd}, Device::Meta);
  } else {
    NoGradGuard ng;
    model.prefix_embed = embedding(model.wte.weight, ids, {len}).clone().to(device_of(model));
  }
  model.prefix_embed.requires_grad_(true);
  return model.num_trainable_parameters();
}

int64_t apply_prefix_layer(nn::GPT& model, int64_t len, Rng& rng, const std::vector<int32_t>& init_ids) {
  model.set_requires_grad(false);
  std::vector<int32_t> ids = prefix_ids(model, len, rng, init_ids);
  for (auto& b : model.h) b->attn.prefix_k = b->attn.prefix_v = Tensor();
  if (device_of(model) == Device::Meta) {
    for (auto& b : model.h) {
      b->attn.prefix_k = Tensor::empty({len, model.config.n_embd}, Device::Meta);
      b->attn.prefix_v = Tensor::empty({len, model.config.n_embd}, Device::Meta);
      b->attn.prefix_k.requires_grad_(true);
      b->attn.prefix_v.requires_grad_(true);
    }
    return model.num_trainable_parameters();
  }
  LR_CHECK(len <= model.config.n_positions, "prefix-layer: length ", len, " exceeds n_positions ",
           model.config.n_positions, " (the init runs the model on that many tokens)");
  // One frozen forward over the init tokens fills a KV cache with every layer's keys and values.
  nn::KVCache cache;
  nn::Context ctx;
  ctx.cache = &cache;
  {
    NoGradGuard ng;
    model.hidden(ids, 1, len, ctx);
  }
  for (size_t i = 0; i < model.h.size(); ++i) {
    model.h[i]->attn.prefix_k = last_rows(cache.k[i], len);
    model.h[i]->attn.prefix_v = last_rows(cache.v[i], len);
  }
  return model.num_trainable_parameters();
}

}  // namespace lowrank::lora
