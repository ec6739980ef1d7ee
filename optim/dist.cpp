// The transport-independent half of the process group (optim/dist.h): gradients packed into buckets,
// broadcasts of tensors, the options check. The MPI calls are in optim/dist_mpi.cpp; without MPI,
// optim/dist_serial.cpp answers for a group of one.
#include "optim/dist.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "tensor/crc32.h"

namespace lowrank::optim::dist {

bool launched() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(var) != nullptr) return true;
  return false;
}

namespace {

// One run of consecutive floats of one tensor inside a bucket.
struct Piece {
  Tensor t;
  int64_t from = 0, n = 0;
};

void check_packable(const Tensor& t, const char* op) {
  LR_CHECK(t.defined(), op, ": an undefined tensor");
  LR_CHECK(t.is_contiguous(), op, ": a non-contiguous tensor of shape ", t.shape());
}

// Reduces the pieces in one message, then copies the sums back into their tensors.
void reduce_bucket(std::vector<float>& buf, const std::vector<Piece>& pieces, int64_t used) {
  detail::allreduce_floats(buf.data(), used);
  int64_t at = 0;
  for (const Piece& p : pieces) {
    tensor::copy_floats(p.t.data() + p.from, p.t.device(), buf.data() + at, Device::CPU, static_cast<size_t>(p.n));
    at += p.n;
  }
}

}  // namespace

// Buckets: one MPI_Allreduce per tensor would pay the latency (alpha) of a collective for each of
// GPT-2's 148 gradients, and one message of everything would need a host copy of the whole model;
// buckets of detail::kBucketFloats (4 MB) pay it a few times per step with a bounded staging buffer,
// as PyTorch DDP's 25 MB buckets do (Li et al., 2020, "PyTorch Distributed", Section 3.2.3).
void allreduce_sum(std::vector<Tensor>& tensors) {
  if (size() == 1) return;
  const bool on_gpus = !tensors.empty() && std::all_of(tensors.begin(), tensors.end(), [](const Tensor& t) {
    return t.defined() && t.device() == Device::CUDA && t.is_contiguous();
  });
  if (on_gpus && detail::device_allreduce(tensors)) return;
  std::vector<float> buf;
  std::vector<Piece> pieces;
  int64_t used = 0;
  for (const Tensor& t : tensors) {
    check_packable(t, "allreduce_sum");
    for (int64_t from = 0; from < t.numel();) {
      if (buf.empty()) buf.resize(static_cast<size_t>(detail::kBucketFloats));
      const int64_t n = std::min(t.numel() - from, detail::kBucketFloats - used);
      tensor::copy_floats(buf.data() + used, Device::CPU, t.data() + from, t.device(), static_cast<size_t>(n));
      pieces.push_back({t, from, n});
      used += n;
      from += n;
      if (used == detail::kBucketFloats) {
        reduce_bucket(buf, pieces, used);
        pieces.clear();
        used = 0;
      }
    }
  }
  if (used > 0) reduce_bucket(buf, pieces, used);
}

void allreduce_mean(std::vector<Tensor>& tensors) {
  if (size() == 1) return;
  allreduce_sum(tensors);
  const float inv = 1.f / static_cast<float>(size());
  for (Tensor& t : tensors) {
    std::vector<float> v = t.to_vector();
    for (float& x : v) x *= inv;
    tensor::copy_floats(t.data(), t.device(), v.data(), Device::CPU, v.size());
  }
}

// Once per run (initial weights, resumed state), so one message per tensor is fine.
void broadcast(std::vector<Tensor>& tensors, int root) {
  if (size() == 1) return;
  for (Tensor& t : tensors) {
    check_packable(t, "broadcast");
    std::vector<float> v = t.to_vector();
    detail::broadcast_bytes(v.data(), static_cast<int64_t>(v.size() * sizeof(float)), root);
    tensor::copy_floats(t.data(), t.device(), v.data(), Device::CPU, v.size());
    t.mark_written();  // a raw write of a parameter: drops its derived copies (tensor/storage.h)
  }
}

void allreduce_sum(std::vector<double>& values) {
  if (size() > 1) detail::allreduce_doubles(values.data(), static_cast<int64_t>(values.size()));
}

double allreduce_sum(double value) {
  std::vector<double> v = {value};
  allreduce_sum(v);
  return v[0];
}

std::vector<std::string> allgather(const std::string& text) {
  return size() == 1 ? std::vector<std::string>{text} : detail::allgather_bytes(text);
}

namespace {

std::string encode(const std::map<std::string, std::string>& fields) {
  std::string s;
  for (const auto& [k, v] : fields) s += k + '\0' + v + '\0';
  return s;
}

std::map<std::string, std::string> decode(const std::string& s) {
  std::map<std::string, std::string> fields;
  for (size_t at = 0; at < s.size();) {
    const size_t k_end = s.find('\0', at), v_end = s.find('\0', k_end + 1);
    fields[s.substr(at, k_end - at)] = s.substr(k_end + 1, v_end - k_end - 1);
    at = v_end + 1;
  }
  return fields;
}

// The first field where rank r's fields differ from rank 0's, as a sentence.
std::string difference(const std::map<std::string, std::string>& a, const std::map<std::string, std::string>& b,
                       int r) {
  std::map<std::string, std::string> keys = a;
  keys.insert(b.begin(), b.end());
  for (const auto& kv : keys) {
    const auto ia = a.find(kv.first), ib = b.find(kv.first);
    const std::string va = ia == a.end() ? "(unset)" : "'" + ia->second + "'";
    const std::string vb = ib == b.end() ? "(unset)" : "'" + ib->second + "'";
    if (va != vb) return cat(kv.first, ": rank 0 has ", va, ", rank ", r, " has ", vb);
  }
  return "";
}

}  // namespace

// A hash travels first (a few bytes per rank); the fields themselves only on a mismatch, to name it.
void check_same(const std::string& what, const std::map<std::string, std::string>& fields) {
  if (size() == 1) return;
  const std::string mine = encode(fields);
  const uint32_t h = tensor::crc32(mine.data(), mine.size());
  const std::vector<std::string> hashes = allgather(std::string(reinterpret_cast<const char*>(&h), sizeof h));
  if (std::all_of(hashes.begin(), hashes.end(), [&](const std::string& x) { return x == hashes[0]; })) return;
  const std::vector<std::string> all = allgather(mine);
  const std::map<std::string, std::string> root = decode(all[0]);
  for (size_t r = 1; r < all.size(); ++r)
    if (all[r] != all[0])
      throw CollectiveError(cat("the ", all.size(), " ranks were started with different ", what, ": ",
                                difference(root, decode(all[r]), static_cast<int>(r))));
}

}  // namespace lowrank::optim::dist
