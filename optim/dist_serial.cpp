// The process group of a build without MPI (-DLOWRANK_MPI=OFF, or no MPI found): one rank, and the
// collectives of optim/dist.cpp return before reaching these primitives, so training runs exactly as
// it does without a group. Started by mpirun with several ranks it refuses: every process would train
// alone and write the same files.
#include <cstdlib>

#include "optim/dist.h"

namespace lowrank::optim::dist {

namespace {

// The launcher's rank count, 1 when not launched.
int launched_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(var)) return std::atoi(v);
  return 1;
}

}  // namespace

bool built() { return false; }

void init(int*, char***) {
  LR_CHECK(launched_size() <= 1, "started by mpirun with ", launched_size(),
           " ranks, but this build has no MPI (install libopenmpi-dev and configure with -DLOWRANK_MPI=ON)");
}

void finalize() {}

void abort(int code) { std::exit(code); }

int rank() { return 0; }
int size() { return 1; }
void barrier() {}

namespace detail {

void allreduce_floats(float*, int64_t) {}
void allreduce_doubles(double*, int64_t) {}
void broadcast_bytes(void*, int64_t, int) {}
std::vector<std::string> allgather_bytes(const std::string& bytes) { return {bytes}; }
bool device_allreduce(std::vector<Tensor>&) { return false; }

}  // namespace detail

}  // namespace lowrank::optim::dist
