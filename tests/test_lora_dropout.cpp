// LoRA's dropout on the fused c_attn (lab 5's rule, docs/labs/05-lora.md): one mask per forward, drawn
// once and applied to the input of every adapted slice, as loralib's MergedLinear does (a single
// lora_dropout(x) before the grouped A). A mask drawn per slice trains a different model: the q and v
// updates would see different inputs for the same token.
#include "lora/lora.h"
#include "test_util.h"

using namespace lowrank;
using namespace lowrank::testing;

// With the base weight and bias zero and identical A and B on q and v, the q and v thirds of the
// output are scale·B·A·dropout(x) computed from the same values, so they are bit-identical exactly
// when both slices saw the same mask; the k third, not adapted, stays zero.
TEST_CASE("lora: LoRAFusedQKV draws one dropout mask for all slices, per or shared A") {
  const int64_t C = 8, r = 2, B = 2, T = 5;
  for (bool shared_A : {false, true}) {
    CAPTURE(shared_A);
    Rng rng(5);
    nn::Linear base(C, 3 * C, true, nn::Init{rng});
    base.weight.fill_(0.f);
    base.bias.fill_(0.f);
    lora::LoRAFusedQKV m(base, {"q", "v"}, r, 2.f, 0.5f, 0.02f, rng, shared_A);
    const Tensor b = Tensor::randn({C, r}, rng, 0.5f);
    for (Tensor& t : m.lora_B) t.copy_(b);
    for (Tensor& t : m.lora_A) t.copy_(m.lora_A[0]);  // per-slice A: make the slices' A equal too
    const Tensor x = Tensor::randn({B, T, C}, rng);

    Rng drop(7);
    nn::Context train;
    train.training = true;
    train.rng = &drop;
    const Tensor y = m.forward(x, train), y_eval = m.forward(x, {});
    int q_ne_v = 0, k_nonzero = 0, dropped = 0;
    for (int64_t i = 0; i < B; ++i)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
          q_ne_v += y.at({i, t, c}) != y.at({i, t, 2 * C + c});
          k_nonzero += y.at({i, t, C + c}) != 0.f;
          dropped += y.at({i, t, c}) != y_eval.at({i, t, c});
        }
    CHECK_MESSAGE(q_ne_v == 0, "the q and v slices saw different dropout masks in ", q_ne_v, " of ", B * T * C,
                  " outputs: draw lora_input(x, dropout, ctx) once per forward, not once per slice");
    CHECK(k_nonzero == 0);
    CHECK_MESSAGE(dropped > 0, "training output equals eval output: the adapter's input was not dropped out");
  }
}
