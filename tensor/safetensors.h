#pragma once
// safetensors files (the format Hugging Face checkpoints use), read and written without Python.
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON header
//   {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value"}}
// (padded with spaces), then the data section; offsets are relative to the first byte after the
// header. Reading accepts F32, F16 and BF16 (converted to float32) and shapes of 0 to 4 dims;
// writing always produces F32, names sorted, each tensor's bytes laid out back to back.
//
// Every error is a lowrank::Error whose message starts with the file's path and, where one tensor
// is at fault, names it: "<path>: tensor 'h.0.attn.weight': unsupported dtype 'I64' ...".
#include <map>
#include <string>

#include "tensor/tensor.h"

namespace lowrank::tensor {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;        // contiguous float32 CPU tensors
  std::map<std::string, std::string> metadata;  // the "__metadata__" entry (may be empty)
};

// Reads a whole file. Overlapping or out-of-order data_offsets are accepted as long as every
// tensor lies inside the data section and its byte count matches shape x dtype size. A file with
// checksums (metadata "lowrank.crc32", which our F32 saves write) has every tensor checked against
// them, and the entry is not returned in `metadata`; files without it (HF, peft, older ones) load as before.
SafetensorsFile load_safetensors(const std::string& path);

// Writes tensors (any strides, CPU or device; copied to contiguous CPU float32) atomically:
// the bytes go to "<path>.tmp.<pid>" in the same directory, which is flushed, closed and renamed
// over `path`; on any failure the temporary file is removed and an Error naming `path` is thrown,
// leaving a previous file at `path` untouched. A tensor holding NaN or infinity is such a failure
// (a diverged model never replaces a good checkpoint). Temporary files "<path>.tmp.<pid>" of
// processes that no longer run (killed during a save) are removed first. dtype "F32" adds the
// CRC-32 of each tensor's bytes to the metadata ("lowrank.crc32"), checked by load_safetensors.
// dtype "BF16" stores every tensor as bfloat16 (rounded to nearest, ties to even; half the bytes,
// ~3 significant digits: for checkpoints shipped in the repo, pinned by sha256; no checksums).
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {}, const std::string& dtype = "F32");

// The tensor `name` of `file`, checked to have shape `expect`; errors name `path_for_errors`:
//   "<path>: tensor '<name>' missing"  /  "<path>: tensor '<name>' has shape (a, b), expected (c, d)".
Tensor take(const SafetensorsFile& file, const std::string& name, const Shape& expect,
            const std::string& path_for_errors);

// IEEE binary16 and bfloat16 bit patterns to float32 (exact; subnormals, inf and NaN kept).
float half_to_float(uint16_t h);
float bfloat16_to_float(uint16_t h);
// float32 to bfloat16, rounded to nearest with ties to even; NaN stays a (quiet) NaN, inf stays inf.
uint16_t float_to_bfloat16(float f);

}  // namespace lowrank::tensor

namespace lowrank {
using tensor::load_safetensors;
using tensor::SafetensorsFile;
using tensor::save_safetensors;
}  // namespace lowrank
