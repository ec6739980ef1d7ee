// The process group over MPI (optim/dist.h): MPI_COMM_WORLD, started only when mpirun started us, so
// a plain ./build/finetune_e2e never touches MPI (MPI_Init of a singleton would still start OpenMPI's
// runtime, slow and noisy on a machine without a network). Compiled when the build has MPI
// (-DLOWRANK_MPI=auto|ON, LOWRANK_HAS_MPI); optim/dist_serial.cpp otherwise.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "optim/dist.h"

namespace lowrank::optim::dist {

namespace {

bool g_started = false;  // MPI_Init done by init(), MPI_Finalize not yet
int g_rank = 0, g_size = 1;

void check_mpi(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(cat(call, " failed: ", std::string(msg, static_cast<size_t>(len))));
}

// MPI counts are int: a longer buffer goes in slices of at most INT_MAX elements.
template <class F>
void in_slices(int64_t n, F f) {
  for (int64_t at = 0; at < n; at += INT_MAX) f(at, static_cast<int>(std::min<int64_t>(n - at, INT_MAX)));
}

}  // namespace

bool built() { return true; }

void init(int* argc, char*** argv) {
  if (g_started || !launched()) return;
  int already = 0;
  MPI_Initialized(&already);
  if (!already) check_mpi(MPI_Init(argc, argv), "MPI_Init");
  // Errors come back as return codes (check_mpi throws), instead of MPI's default of aborting.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &g_size);
  g_started = true;
}

void finalize() {
  if (!g_started) return;
  g_started = false;
  MPI_Finalize();
}

void abort(int code) {
  std::fflush(nullptr);
  if (g_started && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

int rank() { return g_rank; }
int size() { return g_size; }

// A waiting rank sleeps between polls: OpenMPI's MPI_Barrier spins, and on a machine with as many cores
// as ranks a spinning rank takes the core that rank 0 decodes or evaluates on while the others wait.
void barrier() {
  if (g_size == 1) return;
  MPI_Request req;
  check_mpi(MPI_Ibarrier(MPI_COMM_WORLD, &req), "MPI_Ibarrier");
  for (int done = 0;;) {
    check_mpi(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) return;
    struct timespec ts = {0, 1000000};  // 1 ms
    nanosleep(&ts, nullptr);
  }
}

namespace detail {

void allreduce_floats(float* data, int64_t n) {
  in_slices(n, [&](int64_t at, int count) {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  });
}

void allreduce_doubles(double* data, int64_t n) {
  in_slices(n, [&](int64_t at, int count) {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, data + at, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
  });
}

void broadcast_bytes(void* data, int64_t n, int root) {
  in_slices(n, [&](int64_t at, int count) {
    check_mpi(MPI_Bcast(static_cast<char*>(data) + at, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
  });
}

// Lengths first, then the bytes (MPI_Allgatherv); short texts only (options, hashes).
std::vector<std::string> allgather_bytes(const std::string& bytes) {
  LR_CHECK(bytes.size() < INT_MAX / static_cast<size_t>(g_size), "allgather: ", bytes.size(), " bytes is too long");
  const int mine = static_cast<int>(bytes.size());
  std::vector<int> len(static_cast<size_t>(g_size)), at(static_cast<size_t>(g_size), 0);
  check_mpi(MPI_Allgather(&mine, 1, MPI_INT, len.data(), 1, MPI_INT, MPI_COMM_WORLD), "MPI_Allgather");
  for (int r = 1; r < g_size; ++r) at[r] = at[r - 1] + len[r - 1];
  std::string all(static_cast<size_t>(at.back() + len.back()), '\0');
  check_mpi(MPI_Allgatherv(bytes.data(), mine, MPI_BYTE, all.data(), len.data(), at.data(), MPI_BYTE, MPI_COMM_WORLD),
            "MPI_Allgatherv");
  std::vector<std::string> out;
  for (int r = 0; r < g_size; ++r) out.push_back(all.substr(static_cast<size_t>(at[r]), static_cast<size_t>(len[r])));
  return out;
}

#ifndef LOWRANK_HAS_NCCL
bool device_allreduce(std::vector<Tensor>&) { return false; }  // no NCCL: allreduce_sum stages on the host
#endif

}  // namespace detail

}  // namespace lowrank::optim::dist
