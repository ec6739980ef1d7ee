#pragma once
// The process group of data-parallel training (docs/data_parallel.md): N copies of one trainer, one
// per rank, each on its slice of every global batch; after backward their gradients are summed, so
// every rank takes the same optimizer step. Built over MPI when the build has it (LOWRANK_HAS_MPI,
// optim/dist_mpi.cpp) and the process was started by mpirun; otherwise it is a group of size 1 whose
// collectives return at once (optim/dist_serial.cpp), so a program runs exactly as it does alone.
// What travels is what trains: LoRA's A and B (18,432 floats for r=4 on Wq, Wv of the mini base),
// against every weight (12.3M) for full fine-tuning.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/error.h"
#include "tensor/tensor.h"

namespace lowrank::optim::dist {

// An error that every rank raises alike (ranks disagree on their options): each exits 1 without
// MPI_Abort, and rank 0 alone prints it, so the user reads one line.
struct CollectiveError : Error {
  using Error::Error;
};

bool built();     // this build has MPI
bool launched();  // started by mpirun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK in the environment)

// Starts the group once per process: MPI_Init when launched, nothing otherwise. A launch by mpirun with
// more than one rank in a build without MPI is an error: each process would train alone and all would
// write the same files. finalize() ends it; abort() ends every rank at once (an error on one rank must
// not leave the others waiting in a collective forever).
void init(int* argc, char*** argv);
void finalize();
[[noreturn]] void abort(int code);

int rank();  // 0 .. size() - 1
int size();
inline bool is_root() { return rank() == 0; }

// Sums each tensor (a gradient) over the ranks, in place; every rank gets the same sums.
// allreduce_mean then divides by size(). CPU and CUDA tensors (CUDA ones are staged through the host).
void allreduce_sum(std::vector<Tensor>& tensors);
void allreduce_mean(std::vector<Tensor>& tensors);
// Rank root's values into every rank's tensors (shapes must agree): the initial weights, resumed state.
void broadcast(std::vector<Tensor>& tensors, int root = 0);
void barrier();
// Sums a few doubles (a loss, a token count) over the ranks, in place.
void allreduce_sum(std::vector<double>& values);
double allreduce_sum(double value);

// Every rank's string, by rank.
std::vector<std::string> allgather(const std::string& text);

// Checks that every rank holds the same fields (option name -> value): one hash per rank travels; on a
// mismatch every rank throws CollectiveError naming the first field that differs and two ranks' values.
void check_same(const std::string& what, const std::map<std::string, std::string>& fields);

namespace detail {
// The transport's primitives (optim/dist_mpi.cpp or optim/dist_serial.cpp), on host memory.
void allreduce_floats(float* data, int64_t n);
void allreduce_doubles(double* data, int64_t n);
void broadcast_bytes(void* data, int64_t n, int root);
std::vector<std::string> allgather_bytes(const std::string& bytes);
// Sums CUDA tensors on the devices (NCCL, optim/dist_nccl.cpp); false where the build has no NCCL, and
// then allreduce_sum stages them through host buffers.
bool device_allreduce(std::vector<Tensor>& tensors);
// Floats per bucket (allreduce_sum on tensors): a few MB per message.
constexpr int64_t kBucketFloats = int64_t{1} << 20;
}  // namespace detail

}  // namespace lowrank::optim::dist
