#include "tensor/safetensors.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "tensor/error.h"
#include "tensor/file_io.h"
#include "tensor/safetensors_guard.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp reads and writes little-endian data in place: big-endian hosts are not supported"
#endif

namespace lowrank::tensor {

namespace {

using json = nlohmann::json;

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit (100 MB)

struct FileCloser {
  void operator()(std::FILE* f) const {
    if (f) std::fclose(f);
  }
};
using FilePtr = std::unique_ptr<std::FILE, FileCloser>;

std::string errno_text() { return std::strerror(errno); }

// Reads exactly n bytes at absolute position pos; false on a short read.
bool read_at(std::FILE* f, uint64_t pos, void* dst, size_t n) {
  if (n == 0) return true;
  if (fseeko(f, static_cast<off_t>(pos), SEEK_SET) != 0) return false;
  return std::fread(dst, 1, n, f) == n;
}

size_t dtype_size(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F16" || dtype == "BF16") return 2;
  return 0;
}

std::string tensor_prefix(const std::string& path, const std::string& name) {
  return cat(path, ": tensor '", name, "'");
}

// One header entry, validated against the data section of `data_bytes` bytes.
struct Entry {
  std::string dtype;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

Entry parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_bytes) {
  const std::string where = tensor_prefix(path, name);
  LR_CHECK(v.is_object(), where, ": header entry is not a JSON object");
  LR_CHECK(v.contains("dtype") && v["dtype"].is_string(), where, ": missing or non-string 'dtype'");
  LR_CHECK(v.contains("shape") && v["shape"].is_array(), where, ": missing or non-array 'shape'");
  LR_CHECK(v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2, where,
           ": 'data_offsets' must be an array [begin, end]");
  Entry e;
  e.dtype = v["dtype"].get<std::string>();
  const size_t esize = dtype_size(e.dtype);
  LR_CHECK(esize != 0, where, ": unsupported dtype '", e.dtype, "' (supported: F32, F16, BF16)");

  const json& sh = v["shape"];
  LR_CHECK(sh.size() <= static_cast<size_t>(kMaxDims), where, ": ", sh.size(), "-D shape ", sh.dump(), " (at most ",
           kMaxDims, " dims supported)");
  e.shape.ndim = static_cast<int>(sh.size());
  // numel * esize, refusing anything that could overflow or that cannot fit in the file anyway.
  uint64_t bytes = esize;
  bool too_big = false;
  for (size_t i = 0; i < sh.size(); ++i) {
    LR_CHECK(sh[i].is_number_unsigned(), where, ": shape ", sh.dump(), " has a non-integer or negative dim");
    const uint64_t dim = sh[i].get<uint64_t>();
    LR_CHECK(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), where, ": shape ", sh.dump(),
             " has a dim too large");
    e.shape.d[i] = static_cast<int64_t>(dim);
    if (dim != 0 && bytes > std::numeric_limits<uint64_t>::max() / dim)
      too_big = true;
    else
      bytes *= dim;
  }
  if (too_big) {
    // A zero dim elsewhere still makes it empty.
    bool has_zero = false;
    for (int i = 0; i < e.shape.ndim; ++i) has_zero |= e.shape.d[i] == 0;
    LR_CHECK(has_zero, where, ": shape ", e.shape, " is too large");
    bytes = 0;
  }
  try {
    e.shape.numel();  // an empty shape like (2^62, 4, 0) still overflows numel's and the strides' products
  } catch (const Error& err) {
    throw Error(cat(where, ": ", err.what()));
  }

  const json& off = v["data_offsets"];
  LR_CHECK(off[0].is_number_unsigned() && off[1].is_number_unsigned(), where, ": 'data_offsets' ", off.dump(),
           " must be non-negative integers");
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  LR_CHECK(e.begin <= e.end, where, ": data_offsets [", e.begin, ", ", e.end, "] end before they begin");
  LR_CHECK(e.end - e.begin == bytes, where, ": data_offsets [", e.begin, ", ", e.end, "] span ", e.end - e.begin,
           " bytes but ", e.dtype, " shape ", e.shape, " needs ", bytes);
  LR_CHECK(e.end <= data_bytes, where, ": data_offsets [", e.begin, ", ", e.end,
           "] run past the end of the data section (", data_bytes, " bytes): truncated file?");
  return e;
}

}  // namespace

SafetensorsFile load_safetensors(const std::string& path) {
  FilePtr f(std::fopen(path.c_str(), "rb"));
  LR_CHECK(f != nullptr, path, ": cannot open safetensors file (", errno_text(), ")");
  LR_CHECK(fseeko(f.get(), 0, SEEK_END) == 0, path, ": cannot seek (", errno_text(), ")");
  const off_t size_signed = ftello(f.get());
  LR_CHECK(size_signed >= 0, path, ": cannot tell file size (", errno_text(), ")");
  const uint64_t size = static_cast<uint64_t>(size_signed);
  LR_CHECK(size >= 8, path, ": file is ", size, " bytes, shorter than the 8-byte header length");

  unsigned char len_bytes[8];
  LR_CHECK(read_at(f.get(), 0, len_bytes, 8), path, ": cannot read the header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  LR_CHECK(n <= size - 8, path, ": header length ", n, " runs past the end of the file (", size, " bytes)");
  LR_CHECK(n <= kMaxHeaderBytes, path, ": header length ", n, " exceeds the ", kMaxHeaderBytes, "-byte limit");

  std::string header(static_cast<size_t>(n), '\0');
  LR_CHECK(read_at(f.get(), 8, header.data(), header.size()), path, ": cannot read the ", n, "-byte header");
  json j;
  try {
    j = json::parse(header);
  } catch (const json::exception& e) {
    throw Error(cat(path, ": invalid JSON header: ", e.what()));
  }
  LR_CHECK(j.is_object(), path, ": JSON header is not an object");

  const uint64_t data_start = 8 + n;
  const uint64_t data_bytes = size - data_start;
  SafetensorsFile out;
  std::vector<uint16_t> half_buf;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") {
      LR_CHECK(it->is_object(), path, ": '__metadata__' is not a JSON object");
      for (auto m = it->begin(); m != it->end(); ++m) {
        LR_CHECK(m->is_string(), path, ": metadata '", m.key(), "' is not a string");
        out.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const Entry e = parse_entry(path, name, *it, data_bytes);
    Tensor t = Tensor::empty(e.shape);
    const size_t numel = static_cast<size_t>(e.shape.numel());
    const uint64_t pos = data_start + e.begin;
    if (numel > 0) {
      bool ok;
      if (e.dtype == "F32") {
        ok = read_at(f.get(), pos, t.data(), numel * sizeof(float));
      } else {
        half_buf.resize(numel);
        ok = read_at(f.get(), pos, half_buf.data(), numel * sizeof(uint16_t));
        float* p = t.data();
        if (e.dtype == "F16") {
          for (size_t i = 0; i < numel; ++i) p[i] = half_to_float(half_buf[i]);
        } else {
          for (size_t i = 0; i < numel; ++i) p[i] = bfloat16_to_float(half_buf[i]);
        }
      }
      LR_CHECK(ok, tensor_prefix(path, name), ": short read of ", e.end - e.begin, " bytes at offset ", pos);
    }
    out.tensors.emplace(name, std::move(t));
  }
  detail::verify_checksums(path, out);
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata, const std::string& dtype) {
  LR_CHECK(dtype == "F32" || dtype == "BF16", path, ": cannot save as dtype '", dtype, "' (F32 or BF16)");
  const uint64_t esize = dtype == "F32" ? sizeof(float) : sizeof(uint16_t);
  // Contiguous CPU copies first, so a bad tensor fails before any file is touched.
  std::vector<std::pair<std::string, Tensor>> items;  // std::map order: sorted names
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    LR_CHECK(!name.empty(), path, ": cannot save a tensor with an empty name");
    LR_CHECK(name != "__metadata__", path, ": '__metadata__' is reserved and cannot name a tensor");
    LR_CHECK(t0.defined(), tensor_prefix(path, name), ": undefined tensor");
    LR_CHECK(t0.device() != Device::Meta, tensor_prefix(path, name), ": meta tensor ", t0.shape(), " has no data");
    Tensor t = t0.to(Device::CPU).contiguous();  // a CUDA tensor (view or not) is downloaded compact
    detail::check_finite(path, name, t);
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * esize;
    json shape = json::array();
    for (int i = 0; i < t.ndim(); ++i) shape.push_back(t.size(i));
    header[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    items.emplace_back(name, t);
  }
  LR_CHECK(metadata.count(detail::kChecksumKey) == 0, path, ": metadata key '", detail::kChecksumKey,
           "' is reserved for the checksums");
  json m = json::object();
  for (const auto& [k, v] : metadata) m[k] = v;
  // F32 files (checkpoints, adapters) carry checksums; BF16 exports stay byte-for-byte what their
  // README's sha256 pins, which already covers them.
  if (dtype == "F32") m[detail::kChecksumKey] = detail::checksum_json(items);
  if (!m.empty()) header["__metadata__"] = m;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {
    throw Error(cat(path, ": cannot encode the header (names and metadata must be UTF-8): ", e.what()));
  }
  text.append((8 - text.size() % 8) % 8, ' ');  // data section starts 8-byte aligned
  unsigned char len_bytes[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>((n >> (8 * i)) & 0xffu);

  detail::remove_stale_temporaries(path);
  write_file_atomic(
      path,
      [&](const ByteSink& write) {
        write(len_bytes, 8);
        write(text.data(), text.size());
        std::vector<uint16_t> half;
        for (const auto& item : items) {
          const size_t numel = static_cast<size_t>(item.second.numel());
          if (dtype == "F32") {
            write(item.second.data(), numel * sizeof(float));
            continue;
          }
          half.resize(numel);
          for (size_t i = 0; i < numel; ++i) half[i] = float_to_bfloat16(item.second.data()[i]);
          write(half.data(), numel * sizeof(uint16_t));
        }
      },
      "safetensors file");
}

Tensor take(const SafetensorsFile& file, const std::string& name, const Shape& expect,
            const std::string& path_for_errors) {
  auto it = file.tensors.find(name);
  LR_CHECK(it != file.tensors.end(), tensor_prefix(path_for_errors, name), " missing");
  LR_CHECK(it->second.shape() == expect, tensor_prefix(path_for_errors, name), " has shape ", it->second.shape(),
           ", expected ", expect);
  return it->second;
}

}  // namespace lowrank::tensor
