/* out[r0:r1] (=|+=) A[r0:r1] x for a CSR matrix A and a row-major float32 table x of d columns.
 *
 * mmgef compiles this on first use (mmgef/graphs/native.py) and calls it through ctypes, which releases the GIL, so
 * several Python threads can each take a range of rows. Within a row the non-zeros are summed in their stored order,
 * as torch's own CSR product does. Rows of x are prefetched PREFETCH non-zeros ahead: past the cache every gather
 * is a memory access, and the hardware cannot guess which row comes next. The common widths get their own loops
 * with d known at compile time (the vectoriser then needs no remainder loop). */
#include <stdint.h>
#include <string.h>

#define PREFETCH 16

#define ROWS(IT, D)                                                                                    \
  do {                                                                                                 \
    const int64_t last = indptr[n_rows];                                                               \
    for (int64_t r = r0; r < r1; ++r) {                                                                \
      float *restrict o = out + r * (D);                                                               \
      if (!accumulate) memset(o, 0, sizeof(float) * (D));                                              \
      for (int64_t j = indptr[r]; j < indptr[r + 1]; ++j) {                                            \
        if (j + PREFETCH < last) {                                                                     \
          const char *ahead = (const char *)(x + (int64_t)idx[j + PREFETCH] * (D));                    \
          for (int64_t b = 0; b < (int64_t)sizeof(float) * (D); b += 64) __builtin_prefetch(ahead + b, 0, 0); \
        }                                                                                              \
        const float v = val[j];                                                                        \
        const float *restrict xr = x + (int64_t)idx[j] * (D);                                          \
        for (int64_t k = 0; k < (D); ++k) o[k] += v * xr[k];                                           \
      }                                                                                                \
    }                                                                                                  \
  } while (0)

#define KERNEL(NAME, IT)                                                                               \
  void NAME(int64_t n_rows, int64_t r0, int64_t r1, const IT *restrict indptr, const IT *restrict idx, \
            const float *restrict val, const float *restrict x, float *restrict out, int64_t d,        \
            int accumulate) {                                                                          \
    switch (d) {                                                                                       \
      case 16: ROWS(IT, 16); break;                                                                    \
      case 32: ROWS(IT, 32); break;                                                                    \
      case 64: ROWS(IT, 64); break;                                                                    \
      case 128: ROWS(IT, 128); break;                                                                  \
      default: ROWS(IT, d);                                                                            \
    }                                                                                                  \
  }

KERNEL(csr_dense_i32, int32_t)
KERNEL(csr_dense_i64, int64_t)
