#include "tensor/parallel.h"

#include <omp.h>

#include <Eigen/Core>

#ifdef LOWRANK_HAVE_OPENBLAS
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace lowrank::tensor {

void set_num_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
#ifdef LOWRANK_HAVE_OPENBLAS
  openblas_set_num_threads(n);
#endif
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace lowrank::tensor
