/* mmgef's CPU kernels: gathers of table rows by index, where torch's own ops are bound by memory latency.
 *
 * mmgef compiles this on first use (mmgef/graphs/native.py) and calls it through ctypes, which releases the GIL, so
 * several Python threads can each take a range of rows.
 *
 * csr_dense_*: out[r0:r1] (=|+=) A[r0:r1] x for a CSR matrix A and a row-major float32 table x of d columns.
 * Within a row the non-zeros are summed in their stored order, as torch's own CSR product does. Rows of x are
 * prefetched some non-zeros ahead: past the cache every gather is a memory access, and the hardware cannot guess
 * which row comes next. Where the table is far (bigger than the caller's threshold: mostly in memory), the prefetch
 * fills L2, FAR_AHEAD non-zeros ahead (locality FAR_HINT = prefetcht1): an L1 fill holds one of L1's few miss
 * buffers until its line arrives, so fewer gathers would be in flight; on this project's 2-core EPYC a random 64-d
 * gather from a million-row table took 625 ms per 20M non-zeros with L1 prefetches 16 ahead and 412 ms with L2
 * prefetches 24 ahead (benchmarks/bench_prefetch.py, benchmarks/results/scale/spmm.md). Where the table is near (it
 * fits the caches), the L1 prefetch, NEAR_AHEAD ahead (prefetchnta), is the faster: the L2 one left LightGCN's and
 * MM-GEF's epochs on Baby-size data 10-20% slower. The common widths get their own loops with d known at compile
 * time (the vectoriser then needs no remainder loop).
 *
 * The *_bf16 kernels read the table as bfloat16 (train.gather_precision=bfloat16): half the bytes per gathered row,
 * widened to float32 (exact) before the multiply, summed in float32 as the float32 kernels sum; so their product is
 * the float32 kernel's over the table rounded to bfloat16, bit for bit. */
#include <stdint.h>
#include <string.h>

static inline float widen_f32(float v) { return v; }
static inline float widen_bf16(uint16_t v) {  /* bfloat16 is float32's upper half */
  const uint32_t bits = (uint32_t)v << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}
#define WIDEN(v) _Generic((v), uint16_t: widen_bf16, default: widen_f32)(v)

/* One term of a product's sum, rounded as torch's own product rounds it, so both give the same bits: a multiply then
 * an add (-ffp-contract=off), or, built with -DFUSED_MADD where torch's product fuses them (MKL on a CPU with
 * AVX-512, seen on Intel Xeon; not on AMD EPYC), one fused multiply-add. native.torch_fuses_products decides. */
#ifdef FUSED_MADD
#define MADD(o, v, x) ((o) = __builtin_fmaf((v), (x), (o)))
#else
#define MADD(o, v, x) ((o) += (v) * (x))
#endif

/* benchmarks/bench_prefetch.py builds variants with -DFAR_AHEAD=... -DFAR_HINT=...; __builtin_prefetch's locality:
 * 0 = prefetchnta and 3 = prefetcht0 (into L1), 2 = prefetcht1 and 1 = prefetcht2 (into L2) */
#ifndef FAR_AHEAD
#define FAR_AHEAD 24
#endif
#ifndef FAR_HINT
#define FAR_HINT 2
#endif
#define NEAR_AHEAD 16
#define NEAR_HINT 0

#define ROWS(IT, TX, D, AHEAD, HINT)                                                                   \
  do {                                                                                                 \
    const int64_t last = indptr[n_rows];                                                               \
    for (int64_t r = r0; r < r1; ++r) {                                                                \
      float *restrict o = out + r * (D);                                                               \
      if (!accumulate) memset(o, 0, sizeof(float) * (D));                                              \
      for (int64_t j = indptr[r]; j < indptr[r + 1]; ++j) {                                            \
        if (j + (AHEAD) < last) {                                                                      \
          const char *ahead = (const char *)(x + (int64_t)idx[j + (AHEAD)] * (D));                     \
          for (int64_t b = 0; b < (int64_t)sizeof(TX) * (D); b += 64) __builtin_prefetch(ahead + b, 0, HINT); \
        }                                                                                              \
        const float v = val[j];                                                                        \
        const TX *restrict xr = x + (int64_t)idx[j] * (D);                                             \
        for (int64_t k = 0; k < (D); ++k) MADD(o[k], v, WIDEN(xr[k]));                                \
      }                                                                                                \
    }                                                                                                  \
  } while (0)

/* BODY(IT, TX, D, AHEAD, HINT) with the row width D a compile-time constant for the common widths (no remainder loop),
 * else d; the far or the near prefetch (both compile-time constants, as __builtin_prefetch needs). */
#define BY_WIDTH_AT(BODY, IT, TX, AHEAD, HINT)                                                         \
  switch (d) {                                                                                         \
    case 16: BODY(IT, TX, 16, AHEAD, HINT); break;                                                     \
    case 32: BODY(IT, TX, 32, AHEAD, HINT); break;                                                     \
    case 64: BODY(IT, TX, 64, AHEAD, HINT); break;                                                     \
    case 128: BODY(IT, TX, 128, AHEAD, HINT); break;                                                   \
    default: BODY(IT, TX, d, AHEAD, HINT);                                                             \
  }
#define BY_WIDTH(BODY, IT, TX)                                                                         \
  if (far) {                                                                                           \
    BY_WIDTH_AT(BODY, IT, TX, FAR_AHEAD, FAR_HINT)                                                     \
  } else {                                                                                             \
    BY_WIDTH_AT(BODY, IT, TX, NEAR_AHEAD, NEAR_HINT)                                                   \
  }

#define KERNEL(NAME, IT, TX)                                                                           \
  void NAME(int64_t n_rows, int64_t r0, int64_t r1, const IT *restrict indptr, const IT *restrict idx, \
            const float *restrict val, const TX *restrict x, float *restrict out, int64_t d,           \
            int accumulate, int far) {                                                                 \
    BY_WIDTH(ROWS, IT, TX);                                                                            \
  }

KERNEL(csr_dense_i32, int32_t, float)
KERNEL(csr_dense_i64, int64_t, float)
KERNEL(csr_dense_i32_bf16, int32_t, uint16_t)
KERNEL(csr_dense_i64_bf16, int64_t, uint16_t)

/* csr_push_*: out[d0:d1] += A x for the rows of A in [d0, d1), read from A's transpose (CSR of n_src rows, each
 * its destination rows in ascending order): each source row of x is read once, in order, and added into the output
 * rows it reaches. Where the destinations are few and hot (popular items) and the sources many and cold (users, each
 * reached from 20 random items), this turns a random gather from memory into a sequential read and a cached write.
 * A row of out receives its terms in ascending source order, each added by MADD: the same sums, bit for bit,
 * as csr_dense over A's sorted rows into a zeroed output. A thread owns the destination rows [d0, d1) and finds
 * them in each source row by binary search, so threads never write the same row; it zeroes them first unless
 * accumulate. */
#define PUSH(IT, TX, D, AHEAD, HINT)                                                                   \
  do {                                                                                                 \
    for (int64_t s = 0; s < n_src; ++s) {                                                              \
      int64_t lo = indptr[s], hi = indptr[s + 1];                                                      \
      if (lo == hi) continue;                                                                          \
      if (partial) {                                                                                   \
        int64_t a = lo, b = hi;                                                                        \
        while (a < b) { int64_t m = (a + b) >> 1; if (idx[m] < d0) a = m + 1; else b = m; }            \
        lo = a; b = hi;                                                                                \
        while (a < b) { int64_t m = (a + b) >> 1; if (idx[m] < d1) a = m + 1; else b = m; }            \
        hi = a;                                                                                        \
      }                                                                                                \
      const TX *restrict xs = x + s * (D);                                                             \
      for (int64_t j = lo; j < hi; ++j) {                                                              \
        if (j + (AHEAD) < last) {                                                                      \
          const char *ahead = (const char *)(out + (int64_t)idx[j + (AHEAD)] * (D));                   \
          for (int64_t b = 0; b < (int64_t)sizeof(float) * (D); b += 64) __builtin_prefetch(ahead + b, 1, HINT); \
        }                                                                                              \
        const float v = val[j];                                                                        \
        float *restrict o = out + (int64_t)idx[j] * (D);                                               \
        for (int64_t k = 0; k < (D); ++k) MADD(o[k], v, WIDEN(xs[k]));                                \
      }                                                                                                \
    }                                                                                                  \
  } while (0)

#define PUSH_KERNEL(NAME, IT, TX)                                                                      \
  void NAME(int64_t n_src, int64_t n_dst, int64_t d0, int64_t d1, const IT *restrict indptr,           \
            const IT *restrict idx, const float *restrict val, const TX *restrict x,                   \
            float *restrict out, int64_t d, int accumulate, int far) {                                 \
    const int64_t last = indptr[n_src];                                                                \
    if (!accumulate) memset(out + d0 * d, 0, sizeof(float) * (size_t)((d1 - d0) * d));                 \
    const int partial = d0 > 0 || d1 < n_dst;                                                          \
    BY_WIDTH(PUSH, IT, TX);                                                                            \
  }

PUSH_KERNEL(csr_push_i32, int32_t, float)
PUSH_KERNEL(csr_push_i64, int64_t, float)
PUSH_KERNEL(csr_push_i32_bf16, int32_t, uint16_t)
PUSH_KERNEL(csr_push_i64_bf16, int64_t, uint16_t)

/* out[i, j] = q[i] . x[idx[i, j]] for rows i in [r0, r1): each query's similarity to its k candidates (a kNN
 * search's re-scoring). Eight partial sums per dot, so the loop vectorises without reassociating float sums
 * (-ffast-math); the order differs from torch's bmm, so the last bits may. */
void row_dots(int64_t n_rows, int64_t r0, int64_t r1, int64_t k, int64_t d, const int64_t *restrict idx,
              const float *restrict x, const float *restrict q, float *restrict out, int far) {
  const int64_t last = n_rows * k;
  for (int64_t i = r0; i < r1; ++i) {
    const float *restrict qi = q + i * d;
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = i * k + j;
      if (e + 4 < last) {
        const char *ahead = (const char *)(x + idx[e + 4] * d);
        for (int64_t b = 0; b < (int64_t)sizeof(float) * d; b += 64) {
          if (far) __builtin_prefetch(ahead + b, 0, FAR_HINT);
          else __builtin_prefetch(ahead + b, 0, NEAR_HINT);
        }
      }
      const float *restrict xr = x + idx[e] * d;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t c = 0;
      for (; c + 8 <= d; c += 8)
        for (int l = 0; l < 8; ++l) acc[l] += qi[c + l] * xr[c + l];
      float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      for (; c < d; ++c) s += qi[c] * xr[c];
      out[e] = s;
    }
  }
}

/* out[q] = whether row users[q] of a CSR matrix holds queries[q], where keys[indptr[u]:indptr[u + 1]] is row u,
 * sorted: a negative sampler's check that a drawn (user, item) pair is no training pair. Its users come in random
 * order, so each row is a memory access once the rows outgrow the cache (a global binary search over all keys costs
 * ~24 of them a query at 20M pairs); each query's row start is read CONTAIN_AHEAD queries ahead and prefetched with
 * the middle of its row, its row pointer twice as far ahead. */
#define CONTAIN_AHEAD 16
void rows_contain(int64_t n, const int64_t *restrict users, const int64_t *restrict queries,
                  const int64_t *restrict indptr, const int64_t *restrict keys, uint8_t *restrict out) {
  for (int64_t q = 0; q < n; ++q) {
    if (q + 2 * CONTAIN_AHEAD < n) __builtin_prefetch(indptr + users[q + 2 * CONTAIN_AHEAD], 0, 0);
    if (q + CONTAIN_AHEAD < n) {
      const int64_t u = users[q + CONTAIN_AHEAD];
      __builtin_prefetch(keys + indptr[u], 0, 0);
      __builtin_prefetch(keys + (indptr[u] + indptr[u + 1]) / 2, 0, 0);
    }
    const int64_t key = queries[q], end = indptr[users[q] + 1];
    int64_t lo = indptr[users[q]], hi = end;
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (keys[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    out[q] = lo < end && keys[lo] == key;
  }
}
