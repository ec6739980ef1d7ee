// subspace: the paper's Section 7 analysis of what LoRA learns (Hu et al., 2021), per layer, for
// adapters on Wq and Wv trained on E2E NLG:
//  Figure 3  φ(A_{r=8}, A_{r=64}, i, j) of eq. (4) for i <= 8, j <= 64, and the i, j <= 8 zoom;
//  Figure 4  φ between the A_{r=64} of two seeds, next to two random Gaussian matrices;
//  Table 7   ‖UᵀWqV‖_F with U, V the top-r singular directions of ΔWq, of Wq and of a random matrix,
//            ‖Wq‖_F, ‖ΔWq‖_F and the amplification ‖ΔWq‖_F / ‖UᵀWqV‖_F, at r = 4 and 64.
// Without --adapters it trains them first (r = 8, 64, 64 with a second seed, and 4; A drawn at loralib's
// r-independent scale, see --a-init-std; examples/common/finetune_train.h) and saves them in --adapter-dir:
//   ./build/train_gpt --save out/gpt-mini.safetensors      # a base model first
//   ./build/subspace --init out/gpt-mini.safetensors       # train 4 adapters, analyse, write SVGs
//   ./build/subspace --init BASE --adapters r8.safetensors,r64a.safetensors,r64b.safetensors[,r4.safetensors]
// Measured (shared 2-core VM, load average 3-4 from other jobs, `mini` base out/base-wiki): the
// defaults (4 adapters x 200 steps) took 33 min wall, 355-735 s per adapter at 120-370 tok/s; at the
// ~1,500 tok/s of an idle machine (docs/e2e.md) that is about 6 min (estimate, not measured). The
// analysis alone (--adapters) takes 3 s.
#include <filesystem>
#include <iostream>
#include <map>

#include "data/bpe.h"
#include "examples/common/cli.h"
#include "examples/common/finetune_train.h"
#include "examples/common/subspace_figures.h"
#include "examples/common/svg.h"
#include "examples/common/train_loop.h"
#include "lora/analysis.h"
#include "tensor/parallel.h"

using namespace lowrank;
namespace ex = lowrank::examples;
using lora::Matrix;
using nlohmann::json;

namespace {

const std::string kSrc = LOWRANK_SOURCE_DIR;
const std::string kE2E = LOWRANK_E2E_DIR;

cxxopts::Options make_options() {
  cxxopts::Options o("subspace", "Section 7 of the LoRA paper: subspace similarity (Figures 3, 4) and Table 7");
  // clang-format off
  o.add_options()
    ("init", "base checkpoint the adapters belong to (required)", cxxopts::value<std::string>())
    ("adapters", "SMALL,LARGE,LARGE_SEED2[,TABLE] adapter files (finetune_e2e --save-adapter); absent: train them",
     cxxopts::value<std::string>())
    ("small-rank", "rank of Figure 3's small adapter", cxxopts::value<int64_t>()->default_value("8"))
    ("large-rank", "rank of the large adapters (Figures 3, 4)", cxxopts::value<int64_t>()->default_value("64"))
    ("table-rank", "extra small rank for Table 7 (0: none)", cxxopts::value<int64_t>()->default_value("4"))
    ("steps", "training steps per adapter", cxxopts::value<int64_t>()->default_value("200"))
    ("lr", "peak learning rate", cxxopts::value<float>()->default_value("2e-3"))
    ("alpha", "LoRA alpha (scale alpha/r)", cxxopts::value<float>()->default_value("32"))
    ("a-init-std", "std of A's Gaussian init; -1: 1/sqrt(3 C) for every r (loralib's kaiming_uniform(a=√5) "
     "variance); 0: 1/r (peft, finetune_e2e)", cxxopts::value<float>()->default_value("-1"))
    ("batch-size", "examples per step", cxxopts::value<int64_t>()->default_value("8"))
    ("seed", "seed of the first run of each rank", cxxopts::value<uint64_t>()->default_value("1"))
    ("seed2", "seed of the second large-rank run", cxxopts::value<uint64_t>()->default_value("2"))
    ("adapter-dir", "where trained adapters go", cxxopts::value<std::string>()->default_value("out/subspace"))
    ("out-dir", "where the SVG figures go", cxxopts::value<std::string>()->default_value("out/subspace"))
    ("device", "cpu or cuda (a GPU build)", cxxopts::value<std::string>()->default_value("cpu"))
    ("threads", "CPU threads (0: all)", cxxopts::value<int>()->default_value("0"))
    ("json", "write every φ matrix and Table 7 to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show help");
  // clang-format on
  return o;
}

struct Spec {  // one adapter to train: rank, seed, file
  int64_t r;
  uint64_t seed;
  std::string path;
};

// Trains LoRA (Wq, Wv) adapters for the specs on E2E, one after the other, sharing the tokenized data.
json train_adapters(const std::vector<Spec>& specs, const cxxopts::ParseResult& a, const data::Gpt2Bpe& tok) {
  ex::FinetuneOptions to;
  to.device = ex::device_option(a);
  to.steps = a["steps"].as<int64_t>();
  to.lr = a["lr"].as<float>();
  to.batch_size = a["batch-size"].as<int64_t>();
  to.eval_batches = 20;  // the valid loss only shows that the adapters learned
  const std::string init = a["init"].as<std::string>();
  float init_std = a["a-init-std"].as<float>();
  if (init_std < 0.f)  // loralib: U(±1/sqrt(C)) has variance 1/(3C), independent of r, as the paper's runs
    init_std = 1.f / std::sqrt(3.f * static_cast<float>(nn::read_config(tensor::load_safetensors(init), init).n_embd));
  std::unique_ptr<ex::E2ESplits> splits;
  json info = json::array();
  for (const Spec& s : specs) {
    lora::MethodConfig mc;
    mc.lora.r = s.r;
    mc.lora.alpha = a["alpha"].as<float>();
    mc.lora.targets = {"q", "v"};
    mc.lora.init_std = init_std;
    to.seed = s.seed;
    ex::FinetuneModel em = ex::prepare_model(init, tok, mc, to);
    if (!splits) splits = std::make_unique<ex::E2ESplits>(ex::load_e2e_splits(kE2E, tok, ex::max_len_for(em, to)));
    std::cout << "r=" << s.r << ", seed " << s.seed << ": ";
    ex::print_setup(em, "lora", splits->train);
    const ex::TrainResult tr = ex::train_loop(em, splits->train, &splits->valid, to);  // finetune_e2e's loop
    lora::save_adapter(s.path, *em.model, mc.lora);
    info.push_back({{"path", s.path},
                    {"r", s.r},
                    {"seed", s.seed},
                    {"a_init_std", init_std},
                    {"steps", tr.steps},
                    {"train_seconds", tr.seconds},
                    {"final_train_loss", tr.final_loss},
                    {"valid_loss", tr.valid_loss}});
  }
  return info;
}

struct Adapter {
  std::string path;
  int64_t r = 0;
  std::vector<lora::AdaptedSlice> slices;
  const lora::AdaptedSlice& at(int64_t layer, const std::string& slice) const {
    for (const lora::AdaptedSlice& s : slices)
      if (s.layer == layer && s.slice == slice) return s;
    throw Error(cat(path, ": no LoRA on W", slice, " of layer ", layer, " (train with --targets q,v)"));
  }
};

// The adapter applied to the base (load_adapter checks the base hash, names and shapes).
Adapter load_slices(const std::string& init, const std::string& path) {
  Rng rng(1);
  std::unique_ptr<nn::GPT> model = nn::load_model(init, rng);
  const lora::LoRAConfig cfg = lora::read_adapter_config(path);
  lora::apply_lora(*model, cfg, rng);
  lora::load_adapter(path, *model);
  return {path, cfg.r, lora::adapted_slices(*model)};
}

// ads: small, large, large (second seed), [table]. Table 7 uses every adapter but the second seed.
std::vector<ex::LayerResult> analyse(const std::vector<Adapter>& ads, int64_t n_layer) {
  std::vector<const Adapter*> table{&ads[0], &ads[1]};
  if (ads.size() == 4) table.push_back(&ads[3]);
  std::sort(table.begin(), table.end(), [](const Adapter* x, const Adapter* y) { return x->r < y->r; });
  std::vector<ex::LayerResult> out(static_cast<size_t>(n_layer));
  for (int64_t l = 0; l < n_layer; ++l) {
    ex::LayerResult& res = out[static_cast<size_t>(l)];
    for (const std::string s : {"q", "v"}) {
      res.fig3[s] = lora::subspace_similarity(ads[0].at(l, s).A, ads[1].at(l, s).A);
      res.fig4[s] = lora::subspace_similarity(ads[1].at(l, s).A, ads[2].at(l, s).A);
      for (const Adapter* t : table) {
        Rng rng(1000 + 100 * static_cast<uint64_t>(l) + static_cast<uint64_t>(t->r));  // the random matrix
        res.table7[s].push_back(lora::weight_projection(t->at(l, s).W, t->at(l, s).delta, t->r, rng));
      }
    }
    Rng rng(2000 + static_cast<uint64_t>(l));
    const int64_t C = ads[1].at(l, "q").A.cols();
    res.random = lora::subspace_similarity(lora::gaussian(ads[1].r, C, rng), lora::gaussian(ads[1].r, C, rng));
  }
  return out;
}

std::string f(double v, int digits = 3) { return ex::fixed(v, digits); }

void print_similarity(const std::vector<ex::LayerResult>& res, int64_t rs, int64_t rl, int64_t C) {
  std::vector<std::vector<std::string>> rows;
  for (size_t l = 0; l < res.size(); ++l)
    for (const std::string s : {"q", "v"}) {
      const Matrix &p3 = res[l].fig3.at(s), &p4 = res[l].fig4.at(s);
      rows.push_back({std::to_string(l), "W" + s, f(p3(0, 0)), f(p3(rs - 1, rl - 1)), f(p4(0, 0)),
                      std::to_string(lora::shared_dimensions(p4)), f(res[l].random(0, 0)),
                      std::to_string(lora::shared_dimensions(res[l].random))});
    }
  const std::string a = "r" + std::to_string(rs) + ":r" + std::to_string(rl);
  std::cout << "\nFigures 3 and 4 in numbers (paper, GPT-3 layer 48: top-1 φ > 0.5 between r=8 and r=64); shared "
               "dims: the largest k with φ(k,k) > 0.5\n";
  ex::print_table({"layer", "W", "phi(1,1) " + a, "phi(" + std::to_string(rs) + "," + std::to_string(rl) + ") " + a,
                   "phi(1,1) seeds", "shared dims seeds", "phi(1,1) random", "shared dims random"},
                  rows);
  std::cout << "random subspaces of R^" << C << ": E φ(i,j) = max(i,j)/" << C << ", so φ(1,1) "
            << f(lora::random_similarity(1, 1, C)) << ", φ(" << rs << "," << rl << ") "
            << f(lora::random_similarity(rs, rl, C)) << "\n";
}

void print_table7(const std::vector<ex::LayerResult>& res) {
  std::vector<std::vector<std::string>> rows;
  for (size_t l = 0; l < res.size(); ++l)
    for (const lora::WeightProjection& p : res[l].table7.at("q"))
      rows.push_back({std::to_string(l), std::to_string(p.r), f(p.proj_delta), f(p.proj_w), f(p.proj_random),
                      f(p.norm_w, 2), f(p.norm_delta), f(p.amplification, 2)});
  rows.push_back({"paper L48", "4", "0.32", "21.67", "0.02", "61.95", "6.91", "21.5"});
  rows.push_back({"paper L48", "64", "1.90", "37.71", "0.33", "61.95", "3.57", "1.88"});
  std::cout << "\nTable 7: ‖UᵀWqV‖_F for U, V the top-r directions of ΔWq (dWq) | Wq | random; amplification "
               "‖ΔWq‖_F / ‖UᵀWqV‖_F (paper: GPT-3 175B)\n";
  ex::print_table({"layer", "r", "dWq", "Wq", "random", "|Wq|_F", "|dWq|_F", "amplification"}, rows);
}

json round_rows(const Matrix& m) {  // 5 decimals: far finer than anything the figures show
  json j = json::array();
  for (int64_t i = 0; i < m.rows(); ++i) {
    j.push_back(json::array());
    for (int64_t k = 0; k < m.cols(); ++k) j.back().push_back(std::round(m(i, k) * 1e5) / 1e5);
  }
  return j;
}

json results_json(const std::vector<ex::LayerResult>& res) {
  json layers = json::array();
  for (size_t l = 0; l < res.size(); ++l) {
    json L = {{"layer", l}, {"random", round_rows(res[l].random)}};
    for (const std::string s : {"q", "v"}) {
      L["figure3_" + s] = round_rows(res[l].fig3.at(s));
      L["figure4_" + s] = round_rows(res[l].fig4.at(s));
      for (const lora::WeightProjection& p : res[l].table7.at(s))
        L["table7_" + s].push_back({{"r", p.r},
                                    {"proj_delta", p.proj_delta},
                                    {"proj_w", p.proj_w},
                                    {"proj_random", p.proj_random},
                                    {"norm_w", p.norm_w},
                                    {"norm_delta", p.norm_delta},
                                    {"amplification", p.amplification}});
    }
    layers.push_back(L);
  }
  return layers;
}

// The adapter files: --adapters as given, or trained now (json `trained` records how).
std::vector<std::string> adapter_paths(const cxxopts::ParseResult& a, const data::Gpt2Bpe& tok, json& trained) {
  if (a.count("adapters")) return ex::split_list(a["adapters"].as<std::string>());
  const std::string dir = a["adapter-dir"].as<std::string>();
  std::filesystem::create_directories(dir);
  const uint64_t s1 = a["seed"].as<uint64_t>(), s2 = a["seed2"].as<uint64_t>();
  std::vector<Spec> specs;
  auto add = [&](int64_t r, uint64_t seed) {
    specs.push_back({r, seed, dir + "/lora_r" + std::to_string(r) + "_seed" + std::to_string(seed) + ".safetensors"});
  };
  add(a["small-rank"].as<int64_t>(), s1);
  add(a["large-rank"].as<int64_t>(), s1);
  add(a["large-rank"].as<int64_t>(), s2);
  if (a["table-rank"].as<int64_t>() > 0) add(a["table-rank"].as<int64_t>(), s1);
  LR_CHECK(s1 != s2, "--seed and --seed2 must differ (Figure 4 compares two seeds)");
  trained = train_adapters(specs, a, tok);
  std::vector<std::string> paths;
  for (const Spec& s : specs) paths.push_back(s.path);
  return paths;
}

int subspace_main(int argc, char** argv) {
  cxxopts::Options options = make_options();
  auto a = ex::parse_args(options, argc, argv);
  LR_CHECK(a.count("init"), "--init is required: the base checkpoint (e.g. out/gpt-mini.safetensors from train_gpt)");
  tensor::set_num_threads(a["threads"].as<int>());
  ex::Timer timer;
  data::Gpt2Bpe tok = data::Gpt2Bpe::from_dir(kSrc + "/data/assets/gpt2-bpe");
  json trained = json::array();
  const std::vector<std::string> paths = adapter_paths(a, tok, trained);
  LR_CHECK(paths.size() == 3 || paths.size() == 4,
           "--adapters needs 3 or 4 files (small, large, large of a second "
           "seed[, Table 7's small]), got ",
           paths.size());
  std::vector<Adapter> ads;
  for (const std::string& p : paths) ads.push_back(load_slices(a["init"].as<std::string>(), p));
  LR_CHECK(ads[1].r == ads[2].r && ads[0].r <= ads[1].r, "--adapters: ranks ", ads[0].r, ", ", ads[1].r, ", ", ads[2].r,
           ": expected small <= large and two large adapters of one rank");
  const int64_t n_layer = ads[0].slices.back().layer + 1, C = ads[0].slices[0].A.cols();
  const int threads = tensor::num_threads();
  tensor::set_num_threads(1);  // many tiny SVDs and products: waking threads costs more than it saves
  const std::vector<ex::LayerResult> res = analyse(ads, n_layer);
  ex::write_figures(res, ads[0].r, ads[1].r, C, a["out-dir"].as<std::string>());
  print_similarity(res, ads[0].r, ads[1].r, C);
  print_table7(res);
  std::cout << "total " << ex::format_duration(timer.seconds()) << "\n";
  if (!a["json"].as<std::string>().empty())
    ex::write_json(a["json"].as<std::string>(), {{"init", a["init"].as<std::string>()},
                                                 {"adapters", paths},
                                                 {"ranks", {ads[0].r, ads[1].r}},
                                                 {"trained", trained},
                                                 {"layers", results_json(res)},
                                                 {"seconds", timer.seconds()},
                                                 {"threads", threads}});
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return ex::run_main(argc, argv, subspace_main); }
