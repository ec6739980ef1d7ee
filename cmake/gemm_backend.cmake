# The library behind tensor::gemm (issue 13; docs/benchmarks.md, "GEMM backends"), chosen at configure
# time: -DLOWRANK_GEMM=openblas|onednn|blis|eigen. Each is a Debian package found on the system, never
# downloaded; a missing one is a configure error naming the package to install.
# Sets LOWRANK_GEMM_DEFS (for tensor/gemm.cpp alone, so switching backends recompiles one file and
# ccache serves the rest), LOWRANK_GEMM_PUBLIC_DEFS, LOWRANK_GEMM_INCLUDES and LOWRANK_GEMM_LIBS.
# LOWRANK_BLAS=OFF, the older switch, still means Eigen's own GEMM (tools/gpu_check_steps.sh uses it).
set(LOWRANK_GEMM "openblas" CACHE STRING "GEMM backend: openblas, onednn, blis or eigen")
set_property(CACHE LOWRANK_GEMM PROPERTY STRINGS openblas onednn blis eigen)
if(NOT LOWRANK_BLAS)
  set(LOWRANK_GEMM eigen)
endif()
set(LOWRANK_GEMM_DEFS "")
set(LOWRANK_GEMM_PUBLIC_DEFS "")
set(LOWRANK_GEMM_INCLUDES "")
set(LOWRANK_GEMM_LIBS "")

if(LOWRANK_GEMM STREQUAL "openblas")
  # Prefer Debian's OpenMP build of OpenBLAS: a BLAS call made inside one of our
  # OpenMP regions then runs on one thread instead of oversubscribing the cores.
  find_package(OpenBLAS CONFIG QUIET
    PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp/cmake/openblas NO_DEFAULT_PATH)
  if(NOT OpenBLAS_FOUND)
    find_package(OpenBLAS CONFIG QUIET)
  endif()
  if(NOT OpenBLAS_FOUND)
    message(FATAL_ERROR "lowrank: LOWRANK_GEMM=openblas but OpenBLAS was not found: apt-get install "
                        "libopenblas-openmp-dev (or configure with -DLOWRANK_GEMM=eigen for no BLAS)")
  endif()
  # EIGEN_USE_BLAS: Eigen's other products (outside tensor::gemm) go to OpenBLAS too, as before.
  set(LOWRANK_GEMM_DEFS LOWRANK_GEMM_OPENBLAS)
  set(LOWRANK_GEMM_PUBLIC_DEFS EIGEN_USE_BLAS LOWRANK_HAVE_OPENBLAS)
  set(LOWRANK_GEMM_INCLUDES ${OpenBLAS_INCLUDE_DIRS})
  set(LOWRANK_GEMM_LIBS ${OpenBLAS_LIBRARIES})
  set(LOWRANK_GEMM_WHAT "OpenBLAS ${OpenBLAS_VERSION}: ${OpenBLAS_LIBRARIES}")

elseif(LOWRANK_GEMM STREQUAL "onednn")
  # Debian's dnnl-config.cmake needs the OpenCL headers (its GPU runtime is OpenCL), which the CPU
  # path never uses, so the header and library are found directly instead of through it.
  find_path(LOWRANK_DNNL_INCLUDE oneapi/dnnl/dnnl.h)
  find_library(LOWRANK_DNNL_LIBRARY dnnl)
  if(NOT LOWRANK_DNNL_INCLUDE OR NOT LOWRANK_DNNL_LIBRARY)
    message(FATAL_ERROR "lowrank: LOWRANK_GEMM=onednn but oneDNN (oneapi/dnnl/dnnl.h, libdnnl) was not "
                        "found: apt-get install libdnnl-dev")
  endif()
  set(LOWRANK_GEMM_DEFS LOWRANK_GEMM_ONEDNN)
  if(NOT LOWRANK_DNNL_INCLUDE STREQUAL "/usr/include")  # -I/usr/include breaks <cstdlib>'s include_next
    set(LOWRANK_GEMM_INCLUDES ${LOWRANK_DNNL_INCLUDE})
  endif()
  set(LOWRANK_GEMM_LIBS ${LOWRANK_DNNL_LIBRARY})
  set(LOWRANK_GEMM_WHAT "oneDNN dnnl_sgemm: ${LOWRANK_DNNL_LIBRARY}")

elseif(LOWRANK_GEMM STREQUAL "blis")
  # Debian installs each threading variant of BLIS in its own folder; the OpenMP one shares our
  # OpenMP runtime (as OpenBLAS's OpenMP build does), then pthread, then serial.
  set(arch_lib /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
  set(arch_inc /usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
  find_path(LOWRANK_BLIS_INCLUDE blis.h
    HINTS ${arch_inc}/blis-openmp ${arch_inc}/blis-pthread ${arch_inc}/blis-serial PATH_SUFFIXES blis)
  find_library(LOWRANK_BLIS_LIBRARY blis
    HINTS ${arch_lib}/blis-openmp ${arch_lib}/blis-pthread ${arch_lib}/blis-serial)
  if(NOT LOWRANK_BLIS_INCLUDE OR NOT LOWRANK_BLIS_LIBRARY)
    message(FATAL_ERROR "lowrank: LOWRANK_GEMM=blis but BLIS (blis.h, libblis) was not found: "
                        "apt-get install libblis-openmp-dev (libblis-dev)")
  endif()
  set(LOWRANK_GEMM_DEFS LOWRANK_GEMM_BLIS)
  set(LOWRANK_GEMM_INCLUDES ${LOWRANK_BLIS_INCLUDE})
  set(LOWRANK_GEMM_LIBS ${LOWRANK_BLIS_LIBRARY})
  set(LOWRANK_GEMM_WHAT "BLIS bli_sgemm: ${LOWRANK_BLIS_LIBRARY}")

elseif(LOWRANK_GEMM STREQUAL "eigen")
  set(LOWRANK_GEMM_DEFS LOWRANK_GEMM_EIGEN)
  set(LOWRANK_GEMM_WHAT "Eigen's own GEMM (no BLAS)")

else()
  message(FATAL_ERROR "lowrank: LOWRANK_GEMM='${LOWRANK_GEMM}': expected openblas, onednn, blis or eigen")
endif()
message(STATUS "lowrank: GEMM backend ${LOWRANK_GEMM} (${LOWRANK_GEMM_WHAT})")
