// Fuzzes tensor::load_safetensors (tensor/safetensors.h), the reader under every checkpoint, adapter
// and Hugging Face file we load: the input is the whole file.
//
// The loader promises: any malformed file (short header, bad JSON, unknown dtype, more than 4 dims,
// offsets outside the data section, byte counts that disagree with shape x dtype, a CRC-32 that does
// not match) is a lowrank::Error naming the file, never a crash or an out-of-bounds read; what it
// returns are contiguous float32 CPU tensors of the declared shapes. Beyond the sanitizers, the
// harness checks those shapes, reads every value, and that an accepted file of finite values
// survives save_safetensors + load_safetensors bit for bit (with its metadata).
#include <cmath>
#include <cstring>
#include <map>
#include <string>

#include "fuzz_util.h"
#include "tensor/safetensors.h"

using namespace lowrank;

namespace {

bool all_finite(const SafetensorsFile& f) {
  for (const auto& kv : f.tensors)
    for (float v : kv.second.to_vector())
      if (!std::isfinite(v)) return false;
  return true;
}

void check_loaded(const SafetensorsFile& f) {
  for (const auto& kv : f.tensors) {
    const Tensor& t = kv.second;
    if (t.device() != Device::CPU || !t.is_contiguous()) fuzz::finding("'" + kv.first + "' not contiguous on the CPU");
    if (t.shape().ndim > 4) fuzz::finding("'" + kv.first + "' has more than 4 dims");
    volatile float sum = 0.f;  // every value is read: ASan checks the whole buffer
    for (float v : t.to_vector()) sum = sum + v;
  }
}

void check_round_trip(const SafetensorsFile& f, const std::string& path) {
  // Saving may refuse a metadata key or a name (a lowrank::Error); what it did write must read back.
  if (!fuzz::loads([&] { save_safetensors(path, f.tensors, f.metadata); })) return;
  const SafetensorsFile g = load_safetensors(path);
  if (g.metadata != f.metadata) fuzz::finding("metadata changed in a save/load round trip");
  if (g.tensors.size() != f.tensors.size()) fuzz::finding("tensor count changed in a save/load round trip");
  for (const auto& kv : f.tensors) {
    auto it = g.tensors.find(kv.first);
    if (it == g.tensors.end()) fuzz::finding("'" + kv.first + "' lost in a save/load round trip");
    const std::vector<float> a = kv.second.to_vector(), b = it->second.to_vector();
    if (kv.second.shape() != it->second.shape() || a.size() != b.size() ||
        (!a.empty() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) != 0))
      fuzz::finding("'" + kv.first + "' changed in a save/load round trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::write_file("in.safetensors", fuzz::as_view(data, size));
  SafetensorsFile f;
  if (!fuzz::loads([&] { f = load_safetensors(path); })) return 0;
  check_loaded(f);
  if (all_finite(f)) check_round_trip(f, fuzz::scratch_dir() + "/out.safetensors");
  return 0;
}
