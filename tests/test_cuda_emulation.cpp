// The safety net of the CUDA host emulation itself (cuda/emulation/, built with
// -DLOWRANK_CUDA_EMULATION=ON): the CUDA tests only mean something on CPU-only CI if a host read of
// a device pointer, a host pointer handed to a launcher, an out-of-bounds launch or uninitialised
// device memory would actually fail there. Compiled only in that build; named "cuda emulation: ..."
// so that -tc="cuda*" runs them with the other CUDA tests.
#include "test_util.h"

#ifdef LOWRANK_CUDA_EMULATION

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <csignal>

#include "cuda/device_info.h"
#include "cuda/emulation/tagged.h"
#include "cuda_test_util.h"

using namespace lowrank;
using lowrank::testing::contains;
using lowrank::testing::error_of;

namespace {

// Runs f in a forked child; true when the child died of SIGSEGV (the parent is left untouched).
bool segfaults(const std::function<void()>& f) {
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGSEGV, SIG_DFL);
    f();
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

}  // namespace

TEST_CASE("cuda emulation: device pointers are tagged, and a host read of one faults") {
  Tensor t = Tensor::full({4}, 1.5f, Device::CUDA);
  CHECK(cuda::emu::is_device(t.data()));
  CHECK(t.to_vector() == std::vector<float>(4, 1.5f));  // through the copy hook: untagged correctly
  volatile float sink = 0.f;
  CHECK(segfaults([&] { sink = t.data()[0]; }));
  CHECK(cuda::device_info().name == "host emulation");
}

TEST_CASE("cuda emulation: launchers reject host pointers, out-of-bounds ranges and freed blocks") {
  Tensor d = Tensor::zeros({8}, Device::CUDA), h = Tensor::zeros({8});
  CHECK(contains(error_of([&] { cuda::fill(h.data(), 1.f, 8); }), "HOST pointer passed to a device launcher"));
  CHECK(contains(error_of([&] { cuda::fill(d.data(), 1.f, 9); }), "out of bounds by 4 bytes"));
  CHECK(contains(error_of([&] { cuda::scale_forward(d.data() + 4, d.data(), 2.f, 5); }), "out of bounds"));
  float* gone = static_cast<float*>(cuda::alloc(64));
  cuda::release(gone, 64);
  CHECK(contains(error_of([&] { cuda::fill(gone, 1.f, 1); }), "not in any live device allocation"));
  // The copy hook checks that each side is on the device it is said to be on.
  CHECK(contains(error_of([&] { tensor::copy_floats(h.data(), Device::CUDA, d.data(), Device::CUDA, 8); }),
                 "is a host pointer but the copy treats it as device memory"));
}

TEST_CASE("cuda emulation: GEMM arguments cuBLAS rejects, and batched entries racing on one output") {
  Tensor A = Tensor::zeros({4, 4}, Device::CUDA), C = Tensor::zeros({4, 4}, Device::CUDA);
  CHECK(contains(error_of([&] { cuda::gemm(false, false, 4, 4, 4, 1.f, A.data(), 3, A.data(), 4, 0.f, C.data(), 4); }),
                 "leading dims"));
  CHECK(contains(error_of([&] {
                   cuda::gemm_strided_batched(false, false, 2, 2, 2, 1.f, A.data(), 2, 4, A.data(), 2, 4, 0.f, C.data(),
                                              2, 0, 2);
                 }),
                 "race"));
  CHECK(contains(error_of([&] { cuda::gemm(false, false, 4, 4, 4, 1.f, A.data(), 4, A.data(), 4, 0.f, A.data(), 4); }),
                 "overlaps an input"));
}

TEST_CASE("cuda emulation: fresh device memory is NaN, and bytes are counted like the caching allocator") {
  const size_t before = cuda::bytes_in_use();
  Tensor t = Tensor::empty({10}, Device::CUDA);  // 40 bytes, rounded up to 512 like cuda/memory.cu
  CHECK(cuda::bytes_in_use() == before + 512);
  CHECK(cuda::bytes_peak() >= before + 512);
  for (float x : t.to_vector()) CHECK(std::isnan(x));
  t = Tensor();
  CHECK(cuda::bytes_in_use() == before);
  cuda::reset_memory_peak();
  CHECK(cuda::memory_peak_bytes() == before);
}

#endif  // LOWRANK_CUDA_EMULATION
