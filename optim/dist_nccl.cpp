// Gradients of CUDA tensors summed on the GPUs with NCCL (optim/dist.h), instead of through host
// buffers: compiled when the build has both the CUDA backend and MPI and finds NCCL (LOWRANK_HAS_NCCL).
// NCCL's communicator is made once from MPI's: rank 0 draws its id, MPI broadcasts it. Compile-checked
// only; no GPU run has been made (docs/data_parallel.md, "What has not run").
#include <mpi.h>
#include <nccl.h>

#include "cuda/memory.h"
#include "optim/dist.h"

namespace lowrank::optim::dist::detail {

namespace {

void check_nccl(ncclResult_t rc, const char* call) {
  if (rc != ncclSuccess) throw Error(cat(call, " failed: ", ncclGetErrorString(rc)));
}

ncclComm_t communicator() {
  static ncclComm_t comm = [] {
    ncclUniqueId id;
    if (is_root()) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    broadcast_bytes(&id, sizeof id, 0);
    ncclComm_t c = nullptr;
    check_nccl(ncclCommInitRank(&c, size(), id, rank()), "ncclCommInitRank");
    return c;
  }();
  return comm;
}

}  // namespace

// One ncclAllReduce per tensor inside a group, which NCCL fuses into few transfers; on lowrank's stream,
// so it runs after the backward kernels that wrote the gradients without a host synchronisation.
bool device_allreduce(std::vector<Tensor>& tensors) {
  ncclComm_t comm = communicator();
  check_nccl(ncclGroupStart(), "ncclGroupStart");
  for (Tensor& t : tensors)
    check_nccl(ncclAllReduce(t.data(), t.data(), static_cast<size_t>(t.numel()), ncclFloat, ncclSum, comm,
                             lowrank::cuda::stream()),
               "ncclAllReduce");
  check_nccl(ncclGroupEnd(), "ncclGroupEnd");
  return true;
}

}  // namespace lowrank::optim::dist::detail
