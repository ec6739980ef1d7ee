// The optimizer and checkpoints with CUDA tensors, against the same calls on CPU tensors: AdamW and
// clip_grad_norm, optimizer state across devices, safetensors from strided device views, and model
// and training checkpoints saved from and loaded into device models; last, the fused adamw_update
// launcher alone (it has no autograd op to test it through). Pure data movement must be
// bit-identical; arithmetic (the optimizer) is compared with the tolerances of docs/cuda.md. Tensor
// plumbing is in test_cuda_tensor.cpp. Every test skips without a GPU.
#include "test_util.h"

#ifdef LOWRANK_HAVE_CUDA

#include <cmath>

#include "cuda_test_util.h"
#include "nn/checkpoint.h"
#include "nn/module.h"
#include "optim/adamw.h"
#include "optim/checkpoint.h"

using namespace lowrank;
using namespace lowrank::cudatest;
using lowrank::testing::TempDir;

namespace {

nn::GPTConfig ckpt_config() {
  nn::GPTConfig c = lowrank::testing::tiny_config(31, 8, 16, 2, 2);
  c.name = "cuda-ckpt-test";
  c.n_inner = 24;
  return c;
}

void check_same_parameters(nn::GPT& got, nn::GPT& want, Device got_device) {
  auto pg = got.named_parameters(), pw = want.named_parameters();
  REQUIRE(pg.size() == pw.size());
  for (size_t i = 0; i < pg.size(); ++i) {
    CAPTURE(pg[i].name);
    REQUIRE(pg[i].name == pw[i].name);
    CHECK(pg[i].tensor.device() == got_device);
    CHECK(pg[i].tensor.to_vector() == pw[i].tensor.to_vector());  // bit-identical
  }
}

}  // namespace

// Adam divides by sqrt(v̂): where a gradient (plus the L2 term) lands within ~1e-6 of zero, float
// rounding differences are amplified up to lr. Inputs here are O(0.1..1), a few thousand of them,
// so no element comes close; the large tensors are in the clipping test, which runs no Adam.
TEST_CASE("cuda: AdamW steps on device parameters match the CPU with the same seeds (AdamW and Adam + L2)") {
  LR_SKIP_WITHOUT_GPU();
  for (bool decoupled : {true, false}) {
    CAPTURE(decoupled);
    optim::AdamWConfig cfg;
    cfg.lr = 1e-2f;
    cfg.weight_decay = 0.1f;
    cfg.decoupled = decoupled;
    // A matrix (decayed), a bias (not decayed), a frozen tensor (no state, never updated).
    const std::vector<Shape> shapes{{40, 100}, {100}, {7, 3}};
    std::vector<nn::NamedTensor> cpu, gpu;
    for (size_t i = 0; i < shapes.size(); ++i) {
      Tensor c = randn(shapes[i], 200 + i, 0.5f), g = dev(c);
      c.requires_grad_(i < 2);
      g.requires_grad_(i < 2);
      cpu.push_back({"p" + std::to_string(i), c});
      gpu.push_back({"p" + std::to_string(i), g});
    }
    optim::AdamW ocpu(cpu, cfg), ogpu(gpu, cfg);
    REQUIRE(ogpu.num_tensors() == 2);
    for (int t = 1; t <= 3; ++t) {
      CAPTURE(t);
      for (size_t i = 0; i < 2; ++i) {
        Tensor grad = randn(shapes[i], 300 + 10 * t + i);
        cpu[i].tensor.set_grad(grad);
        gpu[i].tensor.set_grad(dev(grad));
      }
      const float max_norm = t % 2 ? 32.f : 1e6f;  // the norm is ~64: halved on odd steps only
      CHECK(optim::clip_grad_norm(gpu, max_norm) ==
            doctest::Approx(optim::clip_grad_norm(cpu, max_norm)).epsilon(1e-6));
      ocpu.step();
      ogpu.step();
    }
    CHECK(ogpu.steps() == 3);
    for (size_t i = 0; i < 2; ++i) expect_close(gpu[i].tensor, cpu[i].tensor, 1e-5, 1e-6, "parameters after 3 steps");
    CHECK(gpu[2].tensor.to_vector() == cpu[2].tensor.to_vector());
    const auto sc = ocpu.state_dict(), sg = ogpu.state_dict();
    REQUIRE(sc.size() == sg.size());
    for (const auto& kv : sc) {
      CAPTURE(kv.first);
      CHECK(sg.at(kv.first).device() == Device::CUDA);
      // m averages gradients of both signs, so it can cancel to far below its terms (~0.1):
      // an absolute floor of 1e-7 there; v sums squares and stays relative.
      expect_close(sg.at(kv.first), kv.second, 1e-5, kv.first[0] == 'm' ? 1e-7 : 1e-9, "optimizer moment");
    }
  }
}

TEST_CASE("cuda: clip_grad_norm reduces device gradients on the device and scales them like the CPU") {
  LR_SKIP_WITHOUT_GPU();
  // Several reduction blocks, a bias, and a parameter without a gradient (skipped).
  const std::vector<Shape> shapes{{600, 1000}, {1000}, {7, 3}};
  std::vector<nn::NamedTensor> cpu, gpu;
  for (size_t i = 0; i < shapes.size(); ++i) {
    Tensor c = randn(shapes[i], 400 + i), g = dev(c);
    if (i < 2) {
      Tensor grad = randn(shapes[i], 410 + i);
      c.set_grad(grad);
      g.set_grad(dev(grad));
    }
    cpu.push_back({"p" + std::to_string(i), c});
    gpu.push_back({"p" + std::to_string(i), g});
  }
  for (float max_norm : {1e6f, 10.f}) {  // the norm is ~775: unchanged, then scaled down
    CAPTURE(max_norm);
    const float ncpu = optim::clip_grad_norm(cpu, max_norm), ngpu = optim::clip_grad_norm(gpu, max_norm);
    CHECK(ngpu == doctest::Approx(ncpu).epsilon(1e-6));
    for (size_t i = 0; i < 2; ++i) expect_close(gpu[i].tensor.grad(), cpu[i].tensor.grad(), 1e-6, 1e-9, "gradient");
    CHECK_FALSE(gpu[2].tensor.grad().defined());
  }
  CHECK(optim::clip_grad_norm(gpu, 1e6f) == doctest::Approx(10.f).epsilon(1e-5));  // clipped to max_norm
  // Gradients on both devices in one call: the host and the device squared norms add up.
  const std::vector<nn::NamedTensor> mixed{cpu[0], gpu[1]};
  const double want =
      std::hypot(double(optim::clip_grad_norm({cpu[0]}, 1e9f)), double(optim::clip_grad_norm({cpu[1]}, 1e9f)));
  CHECK(optim::clip_grad_norm(mixed, 1e9f) == doctest::Approx(want).epsilon(1e-6));
}

TEST_CASE("cuda: optimizer state loads across devices and safetensors saves strided device views") {
  LR_SKIP_WITHOUT_GPU();
  TempDir tmp("cuda_state");
  Tensor c = leaf({8, 9}, 70), g = dev(c);
  g.requires_grad_(true);
  optim::AdamW ocpu(std::vector<nn::NamedTensor>{{"w", c}}, {}), ogpu(std::vector<nn::NamedTensor>{{"w", g}}, {});
  c.set_grad(randn({8, 9}, 71));
  ocpu.step();
  ogpu.load_state_dict(ocpu.state_dict(), ocpu.steps());  // host state into device buffers
  CHECK(ogpu.steps() == 1);
  for (const auto& kv : ocpu.state_dict()) {
    CAPTURE(kv.first);
    CHECK(ogpu.state_dict().at(kv.first).device() == Device::CUDA);
    CHECK(ogpu.state_dict().at(kv.first).to_vector() == kv.second.to_vector());
  }
  Tensor base = randn({5, 4, 4}, 72);
  // The transposed slice of test_cuda_tensor.cpp's views345(): unit stride first, non-zero offset.
  const auto view = [](const Tensor& t) { return t.transpose(0, 2).narrow(0, 1, 3); };
  const std::string path = tmp.file("views.safetensors");
  tensor::save_safetensors(path, {{"view", view(dev(base))}, {"plain", dev(base)}}, {});
  tensor::SafetensorsFile f = tensor::load_safetensors(path);
  const Shape want_shape{3, 4, 5};
  CHECK(f.tensors.at("view").shape() == want_shape);
  CHECK(f.tensors.at("view").to_vector() == view(base).contiguous().to_vector());
  CHECK(f.tensors.at("plain").to_vector() == base.to_vector());
}

TEST_CASE("cuda: a device model from a seed equals the CPU model, checkpoints save from and load into it") {
  LR_SKIP_WITHOUT_GPU();
  TempDir tmp("cuda_ckpt");
  Rng r1(7), r2(7);
  nn::GPT cpu(ckpt_config(), r1), gpu(ckpt_config(), r2, Device::CUDA);
  check_same_parameters(gpu, cpu, Device::CUDA);  // drawn on the host from one Rng stream, uploaded

  gpu.named_parameters()[0].tensor.narrow(1, 2, 3).fill_(0.25f);  // differ from any seed (a strided fill)
  const std::string path = tmp.file("model.safetensors");
  nn::save_model(path, gpu);
  Rng r3(8), r4(9);
  nn::GPT host(ckpt_config(), r3);
  nn::load_state_dict(host, tensor::load_safetensors(path).tensors, path);
  check_same_parameters(host, gpu, Device::CPU);
  std::unique_ptr<nn::GPT> loaded = nn::load_model(path, r4, Device::CUDA);
  check_same_parameters(*loaded, gpu, Device::CUDA);

  // A training checkpoint with device optimizer state resumes into another device model.
  gpu.set_requires_grad(true);
  optim::AdamW opt(gpu.named_parameters(), {});
  uint64_t seed = 80;
  for (nn::NamedTensor& p : gpu.named_parameters()) p.tensor.set_grad(dev(randn(p.tensor.shape(), seed++)));
  opt.step();
  const std::string tpath = tmp.file("train.safetensors");
  optim::save_training(tpath, gpu, opt, {});
  Rng r5(11);
  nn::GPT resumed(ckpt_config(), r5, Device::CUDA);
  resumed.set_requires_grad(true);
  optim::AdamW opt2(resumed.named_parameters(), {});
  optim::load_training(tpath, resumed, opt2);
  CHECK(opt2.steps() == 1);
  check_same_parameters(resumed, gpu, Device::CUDA);
  const auto want = opt.state_dict(), got = opt2.state_dict();
  REQUIRE(got.size() == want.size());
  for (const auto& kv : want) {
    CAPTURE(kv.first);
    CHECK(got.at(kv.first).device() == Device::CUDA);
    CHECK(got.at(kv.first).to_vector() == kv.second.to_vector());
  }
}

// The launcher alone, called with bias corrections computed here, against optim::AdamW on the CPU
// (the AdamW test above reaches it through optim::AdamW's device branch).
TEST_CASE("cuda: fused adamw update matches optim::AdamW over several steps (AdamW and Adam + L2)") {
  LR_SKIP_WITHOUT_GPU();
  for (bool decoupled : {true, false}) {
    CAPTURE(decoupled);
    const int64_t n = 4000;
    optim::AdamWConfig cfg;
    cfg.lr = 1e-2f;
    cfg.weight_decay = 0.1f;
    cfg.decoupled = decoupled;
    Tensor p = leaf({40, 100}, 100);  // 2-D: weight decay applies
    Tensor dP = dev(p), dM = Tensor::zeros({n}, Device::CUDA), dV = Tensor::zeros({n}, Device::CUDA);
    optim::AdamW opt({nn::NamedTensor{"w", p}}, cfg);
    for (int t = 1; t <= 3; ++t) {
      Tensor g = randn({40, 100}, 100 + t);
      p.set_grad(g);
      opt.step();
      const float c1 = 1.f - std::pow(cfg.beta1, static_cast<float>(t));
      const float c2 = 1.f - std::pow(cfg.beta2, static_cast<float>(t));
      Tensor dGrad = dev(g);
      cuda::adamw_update(dp(dP), dp(dM), dp(dV), dp(dGrad), n, cfg.lr, cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay,
                         c1, c2, decoupled);
    }
    expect_close(dP, p, 1e-5, 1e-6, "parameters after 3 steps");
    const auto state = opt.state_dict();
    expect_close(dM.to_vector(), state.at("m.w").to_vector(), 1e-5, 1e-7, "first moment");
    expect_close(dV.to_vector(), state.at("v.w").to_vector(), 1e-5, 1e-9, "second moment");
  }
}

namespace {

// 120 small tensors (1 to 358 elements, one chunk each) and 14 of 100,000 (25 chunks each): 470 chunks
// and 134 tensors, past what one of apex's launches holds (110 tensors, 320 blocks); 1- and 2-D, so
// that weight decay applies to some; lr_scale on a few.
std::vector<Shape> multi_tensor_shapes() {
  std::vector<Shape> shapes;
  for (int64_t i = 0; i < 120; ++i) shapes.push_back(i % 3 == 0 ? Shape{1 + i * 3} : Shape{1 + i % 7, 1 + i % 50});
  for (int64_t i = 0; i < 14; ++i) shapes.push_back(i % 2 == 0 ? Shape{100, 1000} : Shape{100000});
  return shapes;
}

}  // namespace

// optim::AdamW on device parameters updates every tensor in one cuda::adamw_multi_update launch; the
// same steps run on CPU parameters (one cpu::adamw_update per tensor) and, on a third copy, through the
// per-tensor launcher cuda::adamw_update, which shares the grouped kernel's device function: bit-identical.
TEST_CASE("cuda: adamw multi-tensor launch over 134 tensors of 1 to 100k elements equals the per-tensor update") {
  LR_SKIP_WITHOUT_GPU();
  const std::vector<Shape> shapes = multi_tensor_shapes();
  for (bool decoupled : {true, false}) {
    CAPTURE(decoupled);
    optim::AdamWConfig cfg;
    cfg.lr = 1e-2f, cfg.weight_decay = 0.1f, cfg.decoupled = decoupled;
    cfg.lr_scale = {{"t5", 16.f}, {"t130", 0.5f}};
    std::vector<nn::NamedTensor> cpu, gpu;
    std::vector<Tensor> each, each_m, each_v;  // the per-tensor launcher's parameters and moments
    for (size_t i = 0; i < shapes.size(); ++i) {
      const std::string name = "t" + std::to_string(i);
      const Tensor c = leaf(shapes[i], 300 + i, 0.5f);
      cpu.push_back({name, c});
      gpu.push_back({name, dleaf(c)});
      each.push_back(dev(c));
      each_m.push_back(Tensor::zeros(shapes[i], Device::CUDA));
      each_v.push_back(Tensor::zeros(shapes[i], Device::CUDA));
    }
    optim::AdamW opt_c(cpu, cfg), opt_g(gpu, cfg);
    for (int t = 1; t <= 5; ++t) {
      for (size_t i = 0; i < shapes.size(); ++i) {
        const Tensor g = randn(shapes[i], 1000 * t + i);
        cpu[i].tensor.set_grad(g.clone());
        if (t == 1 || t == 5) {
          gpu[i].tensor.set_grad(dev(g));  // new buffers: a new table
        } else {
          gpu[i].tensor.grad().copy_(dev(g));  // in place: the same buffers, the same table
        }
        const float c1 = 1.f - std::pow(cfg.beta1, static_cast<float>(t));
        const float c2 = 1.f - std::pow(cfg.beta2, static_cast<float>(t));
        const float scale = i == 5 ? 16.f : i == 130 ? 0.5f : 1.f, wd = shapes[i].ndim >= 2 ? cfg.weight_decay : 0.f;
        cuda::adamw_update(dp(each[i]), dp(each_m[i]), dp(each_v[i]), dp(gpu[i].tensor.grad()), each[i].numel(),
                           cfg.lr * scale, cfg.beta1, cfg.beta2, cfg.eps, wd, c1, c2, decoupled);
      }
      opt_c.step(), opt_g.step();
    }
    CHECK(opt_g.device_table_uploads() == 2);  // at steps 1 and 5, re-used by steps 2 to 4
    int differ = 0;
    for (size_t i = 0; i < shapes.size(); ++i) {
      CAPTURE(i);
      differ += gpu[i].tensor.to_vector() != each[i].to_vector();
      expect_close(gpu[i].tensor, cpu[i].tensor, 1e-5, 1e-6, "parameters after 5 steps against the CPU");
    }
    CHECK(differ == 0);  // the grouped launch and the per-tensor launcher: bit for bit
  }
}

#endif  // LOWRANK_HAVE_CUDA
