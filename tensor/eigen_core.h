#pragma once
// <Eigen/Core>, for the files whose Eigen code (vectorised exp and tanh, decompositions) inlines
// AVX-512 intrinsics. There GCC 12 reports -Wmaybe-uninitialized inside avx512fintrin.h:
// _mm512_undefined_ps() reads a register that is uninitialised on purpose (GCC bug 105593, fixed in
// GCC 13). The report points into that system header, so ignoring the warning while the header is
// first read (here, before any other Eigen header) silences that report alone; the warning stays on
// for the code that includes this.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <Eigen/Core>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
