#include "tensor/parallel.h"

#include <omp.h>

#include <Eigen/Core>

#include "tensor/gemm.h"

namespace lowrank::tensor {

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
  gemm_set_num_threads(n);  // OpenBLAS's and BLIS's own thread counts (tensor/gemm.cpp)
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace lowrank::tensor
