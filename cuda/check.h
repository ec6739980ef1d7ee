#pragma once
// CUDA_CHECK / CUBLAS_CHECK: every runtime and cuBLAS call is checked; failures throw
// lowrank::Error with the file, the line and the error's name.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "tensor/error.h"

#define CUDA_CHECK(call)                                                                                               \
  do {                                                                                                                 \
    cudaError_t err_ = (call);                                                                                         \
    if (err_ != cudaSuccess)                                                                                           \
      throw ::lowrank::Error(::lowrank::cat(__FILE__, ":", __LINE__, ": ", #call, " failed: ", cudaGetErrorName(err_), \
                                            " (", cudaGetErrorString(err_), ")"));                                     \
  } while (0)

#define CUBLAS_CHECK(call)                                                                              \
  do {                                                                                                  \
    cublasStatus_t st_ = (call);                                                                        \
    if (st_ != CUBLAS_STATUS_SUCCESS)                                                                   \
      throw ::lowrank::Error(                                                                           \
          ::lowrank::cat(__FILE__, ":", __LINE__, ": ", #call, " failed: ", cublasGetStatusName(st_))); \
  } while (0)
