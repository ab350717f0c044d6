// SPDX-License-Identifier: Apache-2.0
/*
 * dpserve native kernels for linux-x86_64: the JNI side of dev.dpserve.tensor.NativeKernels.
 *
 * The library is compiled for the x86-64 baseline; the hot loops also exist compiled for
 * AVX2+FMA, AVX-VNNI (int8) and AVX-512 (float GEMM by block size: decode rows for 1-3 tokens,
 * whole streamed rows for 4-8, the packed outer-product kernel from 9; int8 with VNNI, packed
 * the same way from 9 tokens) through
 * target attributes, chosen once at load time with
 * __builtin_cpu_supports. Never built with -march=native.
 *
 * Layouts follow dev.dpserve.api.tensor.KernelBackend: activations are row-major F32 (Java
 * float[] pinned with GetPrimitiveArrayCritical), weights are row-major (M, K) read in place from
 * their native address. Each JNI call computes one block of rows x tokens; the Java side splits a
 * GEMM into such blocks over its worker threads.
 */
#include <jni.h>
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { DT_F32 = 0, DT_BF16 = 1, DT_F16 = 2 };
/* dispatch levels: each includes the ones below it (AVX-512 means F, BW, VL and VNNI) */
enum { LEVEL_BASE = 0, LEVEL_AVX2 = 1, LEVEL_AVX2_VNNI = 2, LEVEL_AVX512 = 3 };

static int level = LEVEL_BASE;
static int has_avxvnni = 0; /* the 256-bit VEX encoding; a CPU may have AVX-512 VNNI only */

/* ---------------------------------------------------------------- scalar helpers (baseline) */

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t) h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t) (h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F;
    uint32_t man = h & 0x3FF;
    uint32_t bits;
    if (exp == 0x1F) {
        bits = sign | 0x7F800000u | (man << 13);
    } else {
        /* normal and subnormal: place exponent+mantissa and rebias by 2^112 (exact) */
        uint32_t em = ((uint32_t) (h & 0x7FFF)) << 13;
        float f;
        memcpy(&f, &em, 4);
        f *= 0x1p112f;
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static inline float weight_at(int dtype, const void *w, size_t idx) {
    switch (dtype) {
        case DT_F32: { float f; memcpy(&f, (const char *) w + 4 * idx, 4); return f; }
        case DT_BF16: { uint16_t h; memcpy(&h, (const char *) w + 2 * idx, 2); return bf16_to_f32(h); }
        default: { uint16_t h; memcpy(&h, (const char *) w + 2 * idx, 2); return f16_to_f32(h); }
    }
}

/* out = the dot products over the first kend of the k columns */
static void matmul_base_upto(int dtype, const float *x, int k, int kend, const void *w, int m, int j0, int j1, int i0,
                             int i1, float *out) {
    for (int j = j0; j < j1; j++) {
        for (int i = i0; i < i1; i++) {
            const float *xi = x + (size_t) i * k;
            float s = 0.f;
            for (int p = 0; p < kend; p++) s += xi[p] * weight_at(dtype, w, (size_t) j * k + p);
            out[(size_t) i * m + j] = s;
        }
    }
}

static void matmul_base(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0, int i1,
                        float *out) {
    matmul_base_upto(dtype, x, k, k, w, m, j0, j1, i0, i1, out);
}

static void matmul_i8_base(const int8_t *q, int k, const int8_t *w, int m, int j0, int j1, int i0, int i1,
                           const float *rowScale, const int32_t *bias, const float *colScale, float *out) {
    for (int j = j0; j < j1; j++) {
        for (int i = i0; i < i1; i++) {
            const int8_t *qi = q + (size_t) i * k;
            const int8_t *wj = w + (size_t) j * k;
            int32_t s = 0;
            for (int p = 0; p < k; p++) s += (int32_t) qi[p] * (int32_t) wj[p];
            if (bias) s += bias[j];
            float v = (float) s;
            if (rowScale) v *= rowScale[i];
            out[(size_t) i * m + j] = v * colScale[j];
        }
    }
}

/* ---------------------------------------------------------------- AVX2 + FMA float GEMM */

#define AVX2 __attribute__((target("avx2,fma,f16c")))
#define AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

/* K block: a quad of weight rows (4 x KC floats = 8 KiB) stays in L1 while token triples pass. */
#define KC 512

#ifndef ROW512
#define ROW512 1
#endif

/* blocks of this many tokens or more take the packed AVX-512 path (matmul_avx512_packed) */
#ifndef PK_MIN_TOKENS
#define PK_MIN_TOKENS 9
#endif
/* blocks of 4 to this many tokens stream whole weight rows (matmul_avx512_rows) */
#ifndef ROWS_MAX_TOKENS
#define ROWS_MAX_TOKENS 8
#endif

/* four row sums of a[0..3] as one 128-bit vector [s0 s1 s2 s3] */
AVX2_INLINE __m128 hsum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m256 h01 = _mm256_hadd_ps(a0, a1);
    __m256 h23 = _mm256_hadd_ps(a2, a3);
    __m256 h = _mm256_hadd_ps(h01, h23);
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

AVX2_INLINE float hsum1(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/*
 * 4 weight rows x T tokens over kc floats (kc a multiple of 8): w rows at w + r*ws, x rows at
 * x + t*xs; o[t*m + r] = (or +=) the dot products.
 */
#define KERNEL_4xT(T)                                                                              \
    AVX2_INLINE void k4x##T(const float *w, size_t ws, const float *x, size_t xs, int kc, float *o,  \
                            size_t m, int add) {                                                   \
        __m256 acc[4][T];                                                                          \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_ps();                           \
        for (int p = 0; p < kc; p += 8) {                                                          \
            __m256 xv[T];                                                                          \
            for (int t = 0; t < T; t++) xv[t] = _mm256_loadu_ps(x + t * xs + p);                    \
            for (int r = 0; r < 4; r++) {                                                          \
                __m256 wv = _mm256_loadu_ps(w + r * ws + p);                                       \
                for (int t = 0; t < T; t++) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);     \
            }                                                                                      \
        }                                                                                          \
        for (int t = 0; t < T; t++) {                                                              \
            __m128 s = hsum4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]);                          \
            float *dst = o + t * m;                                                                \
            if (add) s = _mm_add_ps(s, _mm_loadu_ps(dst));                                         \
            _mm_storeu_ps(dst, s);                                                                 \
        }                                                                                          \
    }
KERNEL_4xT(1)
KERNEL_4xT(2)
KERNEL_4xT(3)

/* 1 weight row x up to 3 tokens */
AVX2_INLINE void k1xT(const float *w, const float *x, size_t xs, int nt, int kc, float *o, size_t m, int add) {
    for (int t = 0; t < nt; t++) {
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        const float *xt = x + t * xs;
        int p = 0;
        for (; p + 16 <= kc; p += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + p), _mm256_loadu_ps(xt + p), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + p + 8), _mm256_loadu_ps(xt + p + 8), a1);
        }
        for (; p < kc; p += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + p), _mm256_loadu_ps(xt + p), a0);
        float s = hsum1(_mm256_add_ps(a0, a1));
        if (add) o[t * m] += s; else o[t * m] = s;
    }
}

/* widen kc half-precision weights (kc a multiple of 8) to floats */
AVX2_INLINE void widen(int dtype, const uint16_t *src, float *dst, int kc) {
    if (dtype == DT_BF16) {
        for (int p = 0; p < kc; p += 8) {
            __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *) (src + p)));
            _mm256_store_ps(dst + p, _mm256_castsi256_ps(_mm256_slli_epi32(h, 16)));
        }
    } else {
        for (int p = 0; p < kc; p += 8) {
            _mm256_store_ps(dst + p, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *) (src + p))));
        }
    }
}

AVX2_INLINE __m256 load8(int dtype, const void *w, size_t idx) {
    if (dtype == DT_F32) return _mm256_loadu_ps((const float *) w + idx);
    __m128i h = _mm_loadu_si128((const __m128i *) ((const uint16_t *) w + idx));
    if (dtype == DT_BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/*
 * Decode-sized blocks (1 to 3 tokens): every weight is used once, so each row is streamed
 * straight from memory (one sequential stream per thread suits the prefetchers best), widened in
 * registers, with independent accumulators to hide the FMA latency.
 */
#define ROW_KERNEL(DT, NAME)                                                                        \
    AVX2_INLINE void NAME(const void *w, size_t row, const float *x, size_t xs, int nt, int kfull,   \
                          float *o, size_t m) {                                                     \
        size_t base = row * xs;                                                                     \
        if (nt == 1) {                                                                              \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                             \
            int p = 0;                                                                              \
            for (; p + 32 <= kfull; p += 32) {                                                      \
                a0 = _mm256_fmadd_ps(load8(DT, w, base + p), _mm256_loadu_ps(x + p), a0);           \
                a1 = _mm256_fmadd_ps(load8(DT, w, base + p + 8), _mm256_loadu_ps(x + p + 8), a1);   \
                a2 = _mm256_fmadd_ps(load8(DT, w, base + p + 16), _mm256_loadu_ps(x + p + 16), a2); \
                a3 = _mm256_fmadd_ps(load8(DT, w, base + p + 24), _mm256_loadu_ps(x + p + 24), a3); \
            }                                                                                       \
            for (; p < kfull; p += 8) a0 = _mm256_fmadd_ps(load8(DT, w, base + p), _mm256_loadu_ps(x + p), a0); \
            o[0] = hsum1(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));             \
            return;                                                                                 \
        }                                                                                           \
        __m256 a[3][2];                                                                             \
        for (int t = 0; t < 3; t++) a[t][0] = a[t][1] = _mm256_setzero_ps();                        \
        int p = 0;                                                                                  \
        for (; p + 16 <= kfull; p += 16) {                                                          \
            __m256 w0 = load8(DT, w, base + p), w1 = load8(DT, w, base + p + 8);                    \
            for (int t = 0; t < nt; t++) {                                                          \
                a[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * xs + p), a[t][0]);            \
                a[t][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * xs + p + 8), a[t][1]);        \
            }                                                                                       \
        }                                                                                           \
        for (; p < kfull; p += 8) {                                                                 \
            __m256 w0 = load8(DT, w, base + p);                                                     \
            for (int t = 0; t < nt; t++) a[t][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * xs + p), a[t][0]); \
        }                                                                                           \
        for (int t = 0; t < nt; t++) o[t * m] = hsum1(_mm256_add_ps(a[t][0], a[t][1]));             \
    }
ROW_KERNEL(DT_F32, row_f32)
ROW_KERNEL(DT_BF16, row_bf16)
ROW_KERNEL(DT_F16, row_f16)

static AVX2 void matmul_avx2_small(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0,
                                   int i1, float *out) {
    int kfull = k & ~7;
    int nt = i1 - i0;
    const float *xp = x + (size_t) i0 * k;
    float *op = out + (size_t) i0 * m;
    for (int j = j0; j < j1; j++) {
        if (dtype == DT_F32) row_f32(w, (size_t) j, xp, (size_t) k, nt, kfull, op + j, (size_t) m);
        else if (dtype == DT_BF16) row_bf16(w, (size_t) j, xp, (size_t) k, nt, kfull, op + j, (size_t) m);
        else row_f16(w, (size_t) j, xp, (size_t) k, nt, kfull, op + j, (size_t) m);
    }
}

static void matmul_avx512_blocked(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0,
                                  int i1, float *out, int kfull);
static void matmul_avx512_small(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0,
                                int i1, float *out);
static float *scratch(int slot, size_t n);
static void matmul_avx512_rows(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0, int i1,
                               float *out);
static int matmul_avx512_packed(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0,
                                int i1, float *out);

static AVX2 void matmul_avx2(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0, int i1,
                             float *out) {
    int kfull = k & ~7;
    int kcb = KC;
    if (i1 - i0 <= 3 && k >= 16 && level >= LEVEL_AVX512 && ROW512) {
        kfull = k & ~15;
        matmul_avx512_small(dtype, x, k, w, m, j0, j1, i0, i1, out);
    } else if (i1 - i0 <= 3 && kfull > 0) {
        matmul_avx2_small(dtype, x, k, w, m, j0, j1, i0, i1, out);
    } else if (level >= LEVEL_AVX512 && k >= 16 && i1 - i0 >= 4 && i1 - i0 <= ROWS_MAX_TOKENS) {
        kfull = k & ~15;
        matmul_avx512_rows(dtype, x, k, w, m, j0, j1, i0, i1, out);
    } else if (level >= LEVEL_AVX512 && i1 - i0 >= PK_MIN_TOKENS
            && matmul_avx512_packed(dtype, x, k, w, m, j0, j1, i0, i1, out)) {
        return; /* all of K, tail included */
    } else if (level >= LEVEL_AVX512 && k >= 16) {
        kfull = k & ~15;
        matmul_avx512_blocked(dtype, x, k, w, m, j0, j1, i0, i1, out, kfull);
    } else {
        float *buf = NULL;
        if (dtype != DT_F32 && kfull > 0) {
            buf = aligned_alloc(32, (size_t) 4 * kcb * sizeof(float));
            if (!buf) {
                matmul_base(dtype, x, k, w, m, j0, j1, i0, i1, out);
                return;
            }
        }
        for (int kb = 0; kb < kfull; kb += kcb) {
            int kc = kfull - kb < kcb ? kfull - kb : kcb;
            int add = kb > 0;
            int j = j0;
            for (; j + 4 <= j1; j += 4) {
                const float *wp;
                size_t ws;
                if (dtype == DT_F32) {
                    wp = (const float *) w + (size_t) j * k + kb;
                    ws = (size_t) k;
                } else {
                    for (int r = 0; r < 4; r++)
                        widen(dtype, (const uint16_t *) w + (size_t) (j + r) * k + kb, buf + (size_t) r * kc, kc);
                    wp = buf;
                    ws = (size_t) kc;
                }
                int i = i0;
                for (; i + 3 <= i1; i += 3)
                    k4x3(wp, ws, x + (size_t) i * k + kb, (size_t) k, kc, out + (size_t) i * m + j, (size_t) m, add);
                if (i1 - i == 2) k4x2(wp, ws, x + (size_t) i * k + kb, (size_t) k, kc, out + (size_t) i * m + j, (size_t) m, add);
                else if (i1 - i == 1) k4x1(wp, ws, x + (size_t) i * k + kb, (size_t) k, kc, out + (size_t) i * m + j, (size_t) m, add);
            }
            for (; j < j1; j++) {
                const float *wp;
                if (dtype == DT_F32) {
                    wp = (const float *) w + (size_t) j * k + kb;
                } else {
                    widen(dtype, (const uint16_t *) w + (size_t) j * k + kb, buf, kc);
                    wp = buf;
                }
                for (int i = i0; i < i1; i += 3) {
                    int nt = i1 - i < 3 ? i1 - i : 3;
                    k1xT(wp, x + (size_t) i * k + kb, (size_t) k, nt, kc, out + (size_t) i * m + j, (size_t) m, add);
                }
            }
        }
        free(buf);
    }
    /* the K tail (k % 8), or all of K when k < 8 */
    for (int j = j0; j < j1; j++) {
        for (int i = i0; i < i1; i++) {
            const float *xi = x + (size_t) i * k;
            float s = kfull > 0 ? out[(size_t) i * m + j] : 0.f;
            for (int p = kfull; p < k; p++) s += xi[p] * weight_at(dtype, w, (size_t) j * k + p);
            out[(size_t) i * m + j] = s;
        }
    }
}

/* ---------------------------------------------------------------- int8 GEMM */

AVX2_INLINE __m128i hsum4i(__m256i a0, __m256i a1, __m256i a2, __m256i a3) {
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    return _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
}

AVX2_INLINE void store_i8(__m128i s, int j, int i, int nrows, const float *rowScale, const int32_t *bias,
                          const float *colScale, float *out, size_t m) {
    int32_t v[4];
    _mm_storeu_si128((__m128i *) v, s);
    for (int r = 0; r < nrows; r++) {
        int32_t acc = v[r] + (bias ? bias[j + r] : 0);
        float f = (float) acc;
        if (rowScale) f *= rowScale[i];
        out[(size_t) i * m + j + r] = f * colScale[j + r];
    }
}

/* exact for all int8 inputs: sign-extend to int16, vpmaddwd into int32 (16 products per step) */
#define I8_KERNEL_AVX2(T)                                                                          \
    AVX2_INLINE void ki8x##T(const int8_t *w, size_t k, const int8_t *x, int kfull, __m128i *res) {  \
        __m256i acc[4][T];                                                                         \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_si256();                        \
        for (int p = 0; p < kfull; p += 16) {                                                      \
            __m256i xv[T];                                                                         \
            for (int t = 0; t < T; t++)                                                            \
                xv[t] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) (x + t * k + p)));    \
            for (int r = 0; r < 4; r++) {                                                          \
                __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *) (w + r * k + p)));\
                for (int t = 0; t < T; t++)                                                        \
                    acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(wv, xv[t]));         \
            }                                                                                      \
        }                                                                                          \
        for (int t = 0; t < T; t++) res[t] = hsum4i(acc[0][t], acc[1][t], acc[2][t], acc[3][t]);   \
    }
I8_KERNEL_AVX2(1)
I8_KERNEL_AVX2(3)

#define VNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define VNNI_INLINE __attribute__((target("avx2,fma,f16c,avxvnni"), always_inline)) static inline

/*
 * AVX-VNNI: vpdpbusd multiplies unsigned by signed bytes. The activations are made unsigned by
 * adding 128 (x ^ 0x80), and 128 * sum(w) is subtracted at the end; sum(w) comes from the same
 * instruction with a vector of ones. Exact for all int8 inputs (32 products per step).
 */
#define I8_KERNEL_VNNI(T)                                                                          \
    VNNI_INLINE void kv8x##T(const int8_t *w, size_t k, const int8_t *x, int kfull, __m128i *res) {  \
        const __m256i flip = _mm256_set1_epi8((char) 0x80);                                        \
        const __m256i ones = _mm256_set1_epi8(1);                                                  \
        __m256i acc[4][T];                                                                         \
        __m256i ws[4];                                                                             \
        for (int r = 0; r < 4; r++) {                                                              \
            ws[r] = _mm256_setzero_si256();                                                        \
            for (int t = 0; t < T; t++) acc[r][t] = _mm256_setzero_si256();                        \
        }                                                                                          \
        for (int p = 0; p < kfull; p += 32) {                                                      \
            __m256i xv[T];                                                                         \
            for (int t = 0; t < T; t++)                                                            \
                xv[t] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *) (x + t * k + p)), flip);\
            for (int r = 0; r < 4; r++) {                                                          \
                __m256i wv = _mm256_loadu_si256((const __m256i *) (w + r * k + p));                \
                ws[r] = _mm256_dpbusd_avx_epi32(ws[r], ones, wv);                                  \
                for (int t = 0; t < T; t++) acc[r][t] = _mm256_dpbusd_avx_epi32(acc[r][t], xv[t], wv); \
            }                                                                                      \
        }                                                                                          \
        __m128i corr = _mm_slli_epi32(hsum4i(ws[0], ws[1], ws[2], ws[3]), 7);                      \
        for (int t = 0; t < T; t++)                                                                \
            res[t] = _mm_sub_epi32(hsum4i(acc[0][t], acc[1][t], acc[2][t], acc[3][t]), corr);      \
    }
I8_KERNEL_VNNI(1)
I8_KERNEL_VNNI(3)

static inline int32_t dot_i8_tail(const int8_t *a, const int8_t *b, int from, int k) {
    int32_t s = 0;
    for (int p = from; p < k; p++) s += (int32_t) a[p] * (int32_t) b[p];
    return s;
}

#define MATMUL_I8_BODY(STEP, K1, K3)                                                               \
    int kfull = k - k % (STEP);                                                                    \
    int j = j0;                                                                                    \
    for (; j + 4 <= j1; j += 4) {                                                                  \
        const int8_t *wp = w + (size_t) j * k;                                                     \
        int i = i0;                                                                                \
        __m128i res[3];                                                                            \
        for (; i < i1;) {                                                                          \
            int nt = i1 - i >= 3 ? 3 : 1;                                                          \
            const int8_t *xp = q + (size_t) i * k;                                                 \
            if (nt == 3) K3(wp, (size_t) k, xp, kfull, res); else K1(wp, (size_t) k, xp, kfull, res); \
            for (int t = 0; t < nt; t++) {                                                         \
                if (kfull < k) {                                                                   \
                    int32_t tail[4];                                                               \
                    for (int r = 0; r < 4; r++) tail[r] = dot_i8_tail(xp + (size_t) t * k, wp + (size_t) r * k, kfull, k); \
                    res[t] = _mm_add_epi32(res[t], _mm_loadu_si128((const __m128i *) tail));       \
                }                                                                                  \
                store_i8(res[t], j, i + t, 4, rowScale, bias, colScale, out, (size_t) m);          \
            }                                                                                      \
            i += nt;                                                                               \
        }                                                                                          \
    }                                                                                              \
    if (j < j1) matmul_i8_base(q, k, w, m, j, j1, i0, i1, rowScale, bias, colScale, out);

static AVX2 void matmul_i8_avx2(const int8_t *q, int k, const int8_t *w, int m, int j0, int j1, int i0, int i1,
                                const float *rowScale, const int32_t *bias, const float *colScale, float *out) {
    MATMUL_I8_BODY(16, ki8x1, ki8x3)
}

static VNNI void matmul_i8_vnni(const int8_t *q, int k, const int8_t *w, int m, int j0, int j1, int i0, int i1,
                                const float *rowScale, const int32_t *bias, const float *colScale, float *out) {
    MATMUL_I8_BODY(32, kv8x1, kv8x3)
}


/* ---------------------------------------------------------------- AVX-512 float GEMM (batched) */

#define A512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define A512_INLINE __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"), always_inline)) static inline

/* K block of the AVX-512 path: 4 rows + 4 tokens x KC512 floats = 32 KiB, within L1 */
#ifndef KC512
#define KC512 1024
#endif

A512_INLINE __m256 half512(__m512 a) {
    return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}

/* 4 weight rows x T tokens over kc floats (kc a multiple of 16), as k4xT with 16 lanes */
#define KERNEL512_4xT(T)                                                                           \
    A512_INLINE void z4x##T(const float *w, size_t ws, const float *x, size_t xs, int kc, float *o,  \
                            size_t m, int add) {                                                   \
        __m512 acc[4][T];                                                                          \
        for (int r = 0; r < 4; r++)                                                                \
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();                           \
        for (int p = 0; p < kc; p += 16) {                                                         \
            __m512 xv[T];                                                                          \
            for (int t = 0; t < T; t++) xv[t] = _mm512_loadu_ps(x + t * xs + p);                    \
            for (int r = 0; r < 4; r++) {                                                          \
                __m512 wv = _mm512_loadu_ps(w + r * ws + p);                                       \
                for (int t = 0; t < T; t++) acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);     \
            }                                                                                      \
        }                                                                                          \
        for (int t = 0; t < T; t++) {                                                              \
            __m128 s = hsum4(half512(acc[0][t]), half512(acc[1][t]), half512(acc[2][t]), half512(acc[3][t])); \
            float *dst = o + t * m;                                                                \
            if (add) s = _mm_add_ps(s, _mm_loadu_ps(dst));                                         \
            _mm_storeu_ps(dst, s);                                                                 \
        }                                                                                          \
    }
KERNEL512_4xT(1)
KERNEL512_4xT(2)
KERNEL512_4xT(3)
KERNEL512_4xT(4)

A512_INLINE void z1xT(const float *w, const float *x, size_t xs, int nt, int kc, float *o, size_t m, int add) {
    for (int t = 0; t < nt; t++) {
        __m512 a0 = _mm512_setzero_ps();
        const float *xt = x + t * xs;
        for (int p = 0; p < kc; p += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(w + p), _mm512_loadu_ps(xt + p), a0);
        float s = _mm512_reduce_add_ps(a0);
        if (add) o[t * m] += s; else o[t * m] = s;
    }
}

A512_INLINE void widen512(int dtype, const uint16_t *src, float *dst, int kc) {
    if (dtype == DT_BF16) {
        for (int p = 0; p < kc; p += 16) {
            __m512i h = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *) (src + p)));
            _mm512_store_ps(dst + p, _mm512_castsi512_ps(_mm512_slli_epi32(h, 16)));
        }
    } else {
        for (int p = 0; p < kc; p += 16) {
            _mm512_store_ps(dst + p, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *) (src + p))));
        }
    }
}

/*
 * Blocks of at least 4 tokens; the K tail (k % 16) is left to the caller. Per K slice of KC512
 * floats the block's activations are first packed contiguously (at most 64 tokens x 4 KiB, in
 * L2: rows of x sit 4·K bytes apart, a stride that maps them onto the same cache sets); then each
 * quad of weight rows (16 KiB, in L1) meets every token quad.
 */
static A512 void matmul_avx512_blocked(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0,
                                       int i1, float *out, int kfull) {
    int nt = i1 - i0;
    float *xbuf = aligned_alloc(64, (size_t) nt * KC512 * sizeof(float));
    float *buf = dtype != DT_F32 ? aligned_alloc(64, (size_t) 4 * KC512 * sizeof(float)) : NULL;
    if (!xbuf || (dtype != DT_F32 && !buf)) {
        free(xbuf);
        free(buf);
        matmul_base_upto(dtype, x, k, kfull, w, m, j0, j1, i0, i1, out); /* the caller adds the K tail */
        return;
    }
    for (int kb = 0; kb < kfull; kb += KC512) {
        int kc = kfull - kb < KC512 ? kfull - kb : KC512;
        int add = kb > 0;
        for (int t = 0; t < nt; t++) memcpy(xbuf + (size_t) t * kc, x + (size_t) (i0 + t) * k + kb, (size_t) kc * sizeof(float));
        int j = j0;
        for (; j + 4 <= j1; j += 4) {
            const float *wp;
            size_t ws;
            if (dtype == DT_F32) {
                wp = (const float *) w + (size_t) j * k + kb;
                ws = (size_t) k;
            } else {
                for (int r = 0; r < 4; r++)
                    widen512(dtype, (const uint16_t *) w + (size_t) (j + r) * k + kb, buf + (size_t) r * kc, kc);
                wp = buf;
                ws = (size_t) kc;
            }
            int t = 0;
            float *ob = out + (size_t) i0 * m + j;
            for (; t + 4 <= nt; t += 4) z4x4(wp, ws, xbuf + (size_t) t * kc, (size_t) kc, kc, ob + (size_t) t * m, (size_t) m, add);
            switch (nt - t) {
                case 3: z4x3(wp, ws, xbuf + (size_t) t * kc, (size_t) kc, kc, ob + (size_t) t * m, (size_t) m, add); break;
                case 2: z4x2(wp, ws, xbuf + (size_t) t * kc, (size_t) kc, kc, ob + (size_t) t * m, (size_t) m, add); break;
                case 1: z4x1(wp, ws, xbuf + (size_t) t * kc, (size_t) kc, kc, ob + (size_t) t * m, (size_t) m, add); break;
                default: break;
            }
        }
        for (; j < j1; j++) {
            const float *wp;
            if (dtype == DT_F32) {
                wp = (const float *) w + (size_t) j * k + kb;
            } else {
                widen512(dtype, (const uint16_t *) w + (size_t) j * k + kb, buf, kc);
                wp = buf;
            }
            for (int t = 0; t < nt; t += 4) {
                int q = nt - t < 4 ? nt - t : 4;
                z1xT(wp, xbuf + (size_t) t * kc, (size_t) kc, q, kc, out + (size_t) (i0 + t) * m + j, (size_t) m, add);
            }
        }
    }
    free(buf);
    free(xbuf);
}

/*
 * Batched float GEMM, AVX-512, packed (blocks of PK_MIN_TOKENS tokens or more).
 *
 * The micro-kernel keeps the tokens in the vector lanes: R weight rows (broadcast, one scalar each
 * per k) × TB tokens (TV zmm of a packed, k-major copy of the activations) = R × TV accumulators
 * (24), R × TV FMAs per TV vector loads and R broadcasts. The weights need no transposition: a
 * block of R rows × KC columns is broadcast straight from the rows (F32) or widened into an
 * L1-resident buffer (BF16/F16, and a last block of fewer rows, zero-padded), prefetched into L2
 * while the previous block computes, and meets every token block while in cache, so each weight
 * byte comes from memory once per call. Loops: K slices of KC (the slice of the transposed
 * activations, TB tokens × KC floats per token block, stays in L2), then the block's rows by R,
 * then the token blocks. The partial sums live in a transposed (rows × tokens) buffer, written out
 * at the end.
 *
 * The shape depends on the token count (pk_shape_for): above 64 tokens, 12 rows × 32 tokens in
 * K slices of 512 (each weight block meets several token blocks); up to 64, one token block of
 * all the tokens (6 rows × 64, 8 × 48, 12 × 32 or 12 × 16) in K slices of 1024, so that a weight
 * block is used by a single pass and the next block streams in meanwhile. A block of 64 tokens in
 * two passes of 32 reached 76-79% of the FMA peak on this machine's 4096 × 4096 shape, in one pass
 * of 64 85-87% (scratch harness, best of 6, the peak measured in the same run).
 */
#ifndef PK_KC
#define PK_KC 512
#endif
#ifndef PK_KC1
#define PK_KC1 1024 /* K slice when all the tokens fit one token block */
#endif
#ifndef PK_DIRECT
#define PK_DIRECT 1
#endif
/* the first token block also prefetches the current weight block into L1, this many floats ahead */
#ifndef PK_PF_CUR
#define PK_PF_CUR 64
#endif
#ifndef PK_PF_CUR1
#define PK_PF_CUR1 0 /* the same for a single token block */
#endif
#ifndef PK_PF_HINT
#define PK_PF_HINT _MM_HINT_T1
#endif
#ifndef PK_PF_HINT1
#define PK_PF_HINT1 _MM_HINT_T0 /* the same for a single token block */
#endif
/* the most rows of a micro-kernel (the weight buffer's height) */
#define PK_RMAX 12

/* per-thread scratch, grown on demand and freed when the thread exits */
typedef struct { float *p; size_t n; } scratch_t;
typedef struct { scratch_t s[3]; } scratch_set;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *v) {
    scratch_set *set = v;
    for (int i = 0; i < 3; i++) free(set->s[i].p);
    free(set);
}

static void scratch_init(void) {
    if (pthread_key_create(&scratch_key, scratch_free) != 0) scratch_key = (pthread_key_t) -1;
}

static void scratch_release(void) {
    pthread_once(&scratch_once, scratch_init);
    if (scratch_key == (pthread_key_t) -1) return;
    scratch_set *set = pthread_getspecific(scratch_key);
    if (set) {
        pthread_setspecific(scratch_key, NULL);
        scratch_free(set);
    }
    pthread_key_delete(scratch_key);
    scratch_key = (pthread_key_t) -1;
}

/* slot's buffer of at least n floats, 64-byte aligned, or NULL */
static float *scratch(int slot, size_t n) {
    pthread_once(&scratch_once, scratch_init);
    if (scratch_key == (pthread_key_t) -1) return NULL;
    scratch_set *set = pthread_getspecific(scratch_key);
    if (!set) {
        set = calloc(1, sizeof *set);
        if (!set || pthread_setspecific(scratch_key, set) != 0) {
            free(set);
            return NULL;
        }
    }
    scratch_t *s = &set->s[slot];
    if (s->n < n) {
        free(s->p);
        size_t bytes = (n * sizeof(float) + 63) & ~(size_t) 63;
        s->p = aligned_alloc(64, bytes);
        s->n = s->p ? n : 0;
    }
    return s->p;
}

/*
 * acc[r][v] over kc steps: wb row r at wb + r*ws, xt TB floats per k (v: tokens 16v..16v+15);
 * ct row r at ct + r*ldc; add: add to ct instead of storing. pf (or NULL): the next weight block
 * to fetch meanwhile, R rows pfs bytes apart, pfe bytes per k; pfcur: prefetch the current block
 * into L1 this many floats ahead (0: no).
 */
#define PK_UKERNEL(R, TV, TB, HINT)                                                                    \
    A512_INLINE void pk_uk_##R##x##TV##_##TB(const float *wb, size_t ws, const float *xt, int kc, float *ct, size_t ldc, \
                                              int add, const char *pf, size_t pfs, int pfe, int pfcur) { \
        __m512 acc[R][TV];                                                                          \
        for (int r = 0; r < R; r++) {                                                               \
            if (add)                                                                                \
                for (int v = 0; v < TV; v++) _mm_prefetch((const char *) (ct + r * ldc + 16 * v), _MM_HINT_T0); \
            for (int v = 0; v < TV; v++) acc[r][v] = _mm512_setzero_ps();                           \
        }                                                                                           \
        int p = 0;                                                                                  \
        for (; p + 16 <= kc; p += 16) {                                                             \
            if (pf) {                                                                               \
                for (int r = 0; r < R; r++) _mm_prefetch(pf + r * pfs + (size_t) p * pfe, HINT);       \
                if (pfcur)                                                                          \
                    for (int r = 0; r < R; r++) _mm_prefetch((const char *) (wb + r * ws + p + pfcur), _MM_HINT_T0); \
            }                                                                                       \
            _Pragma("GCC unroll 16")                                                                \
            for (int q = p; q < p + 16; q++) {                                                      \
                __m512 xv[TV];                                                                      \
                for (int v = 0; v < TV; v++) xv[v] = _mm512_load_ps(xt + (size_t) q * TB + 16 * v); \
                for (int r = 0; r < R; r++) {                                                       \
                    __m512 b = _mm512_set1_ps(wb[r * ws + q]);                                      \
                    for (int v = 0; v < TV; v++) acc[r][v] = _mm512_fmadd_ps(b, xv[v], acc[r][v]);  \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        _Pragma("GCC unroll 2")                                                                     \
        for (; p < kc; p++) {                                                                       \
            __m512 xv[TV];                                                                          \
            for (int v = 0; v < TV; v++) xv[v] = _mm512_load_ps(xt + (size_t) p * TB + 16 * v);     \
            for (int r = 0; r < R; r++) {                                                           \
                __m512 b = _mm512_set1_ps(wb[r * ws + p]);                                          \
                for (int v = 0; v < TV; v++) acc[r][v] = _mm512_fmadd_ps(b, xv[v], acc[r][v]);      \
            }                                                                                       \
        }                                                                                           \
        for (int r = 0; r < R; r++)                                                                 \
            for (int v = 0; v < TV; v++) {                                                          \
                float *c = ct + r * ldc + 16 * v;                                                   \
                _mm512_store_ps(c, add ? _mm512_add_ps(_mm512_load_ps(c), acc[r][v]) : acc[r][v]);  \
            }                                                                                       \
    }
/* several token blocks of 32 (the last may use one vector): the next weight block into L2 */
PK_UKERNEL(12, 2, 32, PK_PF_HINT)
PK_UKERNEL(12, 1, 32, PK_PF_HINT)
/* one token block of all the tokens: the next weight block into L1 (a few % better at 64 tokens) */
PK_UKERNEL(12, 1, 16, PK_PF_HINT1)
PK_UKERNEL(8, 3, 48, PK_PF_HINT1)
PK_UKERNEL(6, 4, 64, PK_PF_HINT1)

/* rows per micro-kernel, tokens per token block, K slice, L1 prefetch distance */
typedef struct { int r, tb, kc, pfcur; } pk_shape;

static pk_shape pk_shape_for(int nt) {
    if (nt > 64) return (pk_shape) { 12, 32, PK_KC, PK_PF_CUR };
    static const int rows[4] = { 12, 12, 8, 6 };
    int tv = (nt + 15) / 16;
    return (pk_shape) { rows[tv - 1], 16 * tv, PK_KC1, PK_PF_CUR1 };
}

/* wb[r][0..kc) = row j+r of w from column kb, widened, rows ws floats apart; rows nr..nrpad-1 are zero */
A512_INLINE void pk_pack_w(int dtype, const void *w, int k, int j, int nr, int nrpad, int kb, int kc, float *wb,
                           size_t ws) {
    int kv = kc & ~15;
    for (int r = 0; r < nrpad; r++) {
        float *d = wb + r * ws;
        if (r >= nr) {
            memset(d, 0, (size_t) kc * sizeof(float));
            continue;
        }
        size_t base = (size_t) (j + r) * k + kb;
        if (dtype == DT_F32) {
            const float *s = (const float *) w + base;
            for (int p = 0; p < kv; p += 16) _mm512_store_ps(d + p, _mm512_loadu_ps(s + p));
        } else if (kv > 0) {
            widen512(dtype, (const uint16_t *) w + base, d, kv);
        }
        for (int p = kv; p < kc; p++) d[p] = weight_at(dtype, w, base + p);
    }
}

/* in-register transpose of 16 x 16 floats: r[i] lane j <- r[j] lane i */
A512_INLINE void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* r[4q + c] now holds, in each 128-bit lane L, column c of rows 4q..4q+3 of that lane's 4 columns */
    for (int h = 0; h < 2; h++)
        for (int c = 0; c < 4; c++) {
            t[8 * h + c] = _mm512_shuffle_f32x4(r[8 * h + c], r[8 * h + 4 + c], 0x88);
            t[8 * h + 4 + c] = _mm512_shuffle_f32x4(r[8 * h + c], r[8 * h + 4 + c], 0xDD);
        }
    for (int c = 0; c < 8; c++) {
        r[c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0x88);
        r[8 + c] = _mm512_shuffle_f32x4(t[c], t[8 + c], 0xDD);
    }
}

/* xt[b][p][tt] = x[i0 + tb*b + tt][kb + p] (blocks of tb tokens, bs floats apart), zero past the last token */
A512_INLINE void pk_pack_x(const float *x, int k, int i0, int nt, int nb, int tb, size_t bs, int kb, int kc, float *xt) {
    int kv = kc & ~15;
    for (int b = 0; b < nb; b++) {
        float *d = xt + b * bs;
        for (int h = 0; h < tb; h += 16) {
            int t0 = b * tb + h;
            int valid = nt - t0 < 16 ? (nt - t0 > 0 ? nt - t0 : 0) : 16;
            for (int p = 0; p < kv; p += 16) {
                __m512 r[16];
                for (int tt = 0; tt < 16; tt++)
                    r[tt] = tt < valid ? _mm512_loadu_ps(x + (size_t) (i0 + t0 + tt) * k + kb + p) : _mm512_setzero_ps();
                transpose16(r);
                for (int q = 0; q < 16; q++) _mm512_store_ps(d + (size_t) (p + q) * tb + h, r[q]);
            }
            for (int tt = 0; tt < 16; tt++) {
                const float *s = x + (size_t) (i0 + t0 + tt) * k + kb;
                for (int p = kv; p < kc; p++) d[(size_t) p * tb + h + tt] = tt < valid ? s[p] : 0.f;
            }
        }
    }
}

/* returns 0 if scratch memory was not available (nothing written) */
static A512 int matmul_avx512_packed_rows(int dtype, const float *x, int k, const void *w, int m, int j0, int j1,
                                          int i0, int i1, float *out) {
    int nt = i1 - i0;
    pk_shape sh = pk_shape_for(nt);
    int R = sh.r, tb = sh.tb, kcs = sh.kc;
    int nb = (nt + tb - 1) / tb;
    int rows = j1 - j0;
    int rpad = (rows + R - 1) / R * R;
    size_t ldc = (size_t) nb * tb;
    float *ct = scratch(0, (size_t) rpad * ldc);
    float *xt = scratch(1, (size_t) nb * kcs * tb);
    float *wb = scratch(2, (size_t) PK_RMAX * (PK_KC > PK_KC1 ? PK_KC : PK_KC1));
    if (!ct || !xt || !wb) return 0;
    int lastTv = (nt - (nb - 1) * tb + 15) / 16;
    int es = dtype == DT_F32 ? 4 : 2;
    for (int kb = 0; kb < k; kb += kcs) {
        int kc = k - kb < kcs ? k - kb : kcs;
        int add = kb > 0;
        pk_pack_x(x, k, i0, nt, nb, tb, (size_t) kcs * tb, kb, kc, xt);
        for (int r0 = 0; r0 < rows; r0 += R) {
            int nr = rows - r0 < R ? rows - r0 : R;
            const float *wr = wb;
            size_t ws = (size_t) kcs;
            if (PK_DIRECT && dtype == DT_F32 && nr == R) {
                wr = (const float *) w + (size_t) (j0 + r0) * k + kb; /* broadcast straight from the rows */
                ws = (size_t) k;
            } else {
                pk_pack_w(dtype, w, k, j0 + r0, nr, R, kb, kc, wb, ws);
            }
            /* the next block of weights (next rows, else the next K slice), fetched during the first token block */
            const char *pf = NULL;
            if (r0 + R + R <= rows) pf = (const char *) w + ((size_t) (j0 + r0 + R) * k + kb) * es;
            else if (kb + kcs < k && rows >= R && k - kb - kcs >= kcs) pf = (const char *) w + ((size_t) j0 * k + kb + kcs) * es;
            float *cr = ct + (size_t) r0 * ldc;
            size_t pfs = (size_t) k * es;
            for (int b = 0; b < nb; b++) {
                const float *xb = xt + (size_t) b * kcs * tb;
                const char *pb = b == 0 ? pf : NULL;
                float *cb = cr + (size_t) b * tb;
                switch (tb) {
                    case 16: pk_uk_12x1_16(wr, ws, xb, kc, cb, ldc, add, pb, pfs, es, sh.pfcur); break;
                    case 48: pk_uk_8x3_48(wr, ws, xb, kc, cb, ldc, add, pb, pfs, es, sh.pfcur); break;
                    case 64: pk_uk_6x4_64(wr, ws, xb, kc, cb, ldc, add, pb, pfs, es, sh.pfcur); break;
                    default:
                        if (b == nb - 1 && lastTv == 1) pk_uk_12x1_32(wr, ws, xb, kc, cb, ldc, add, pb, pfs, es, sh.pfcur);
                        else pk_uk_12x2_32(wr, ws, xb, kc, cb, ldc, add, pb, pfs, es, sh.pfcur);
                        break;
                }
            }
        }
    }
    /* write-out: tiles of 16 rows x 16 tokens transposed in registers, the rest scalar */
    int ntv = nt & ~15;
    int rv = rows & ~15;
    for (int t0 = 0; t0 < ntv; t0 += 16) {
        for (int r0 = 0; r0 < rv; r0 += 16) {
            __m512 v[16];
            for (int u = 0; u < 16; u++) v[u] = _mm512_load_ps(ct + (size_t) (r0 + u) * ldc + t0);
            transpose16(v);
            for (int u = 0; u < 16; u++) _mm512_storeu_ps(out + (size_t) (i0 + t0 + u) * m + j0 + r0, v[u]);
        }
    }
    for (int t = 0; t < nt; t++) {
        float *o = out + (size_t) (i0 + t) * m + j0;
        for (int r = t < ntv ? rv : 0; r < rows; r++) o[r] = ct[(size_t) r * ldc + t];
    }
    return 1;
}

/*
 * At most PK_MAX_ROWS rows per pass, so that the per-thread scratch (rows x tokens partial sums)
 * stays bounded for wide weights (a vocabulary projection); each pass repacks the activations.
 */
#define PK_MAX_ROWS 4096
static A512 int matmul_avx512_packed(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0,
                                     int i1, float *out) {
    for (int j = j0; j < j1; j += PK_MAX_ROWS) {
        int je = j1 - j > PK_MAX_ROWS ? j + PK_MAX_ROWS : j1;
        if (!matmul_avx512_packed_rows(dtype, x, k, w, m, j, je, i0, i1, out)) {
            if (j == j0) return 0;
            /* scratch was available for the first pass, so this is not expected; finish correctly anyway */
            matmul_base(dtype, x, k, w, m, j, j1, i0, i1, out);
            return 1;
        }
    }
    return 1;
}

/*
 * Decode-sized blocks (1 to 3 tokens) with AVX-512: as ROW_KERNEL, 16 lanes, and a software
 * prefetch ROW_PF bytes ahead in the weight stream (0: none).
 */
#ifndef ROW_PF
#define ROW_PF 0
#endif

A512_INLINE __m512 load16(int dtype, const void *w, size_t idx) {
    if (dtype == DT_F32) return _mm512_loadu_ps((const float *) w + idx);
    __m256i h = _mm256_loadu_si256((const __m256i *) ((const uint16_t *) w + idx));
    if (dtype == DT_BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

A512_INLINE void row_pf(int dtype, const void *w, size_t idx, int lines) {
    if (ROW_PF > 0) {
        const char *a = (const char *) w + idx * (dtype == DT_F32 ? 4 : 2) + ROW_PF;
        for (int l = 0; l < lines; l++) _mm_prefetch(a + 64 * l, _MM_HINT_T0);
    }
}

#define ROW512_KERNEL(DT, NAME)                                                                     \
    A512_INLINE void NAME(const void *w, size_t row, const float *x, size_t xs, int nt, int kfull,  \
                          float *o, size_t m) {                                                     \
        size_t base = row * xs;                                                                     \
        const int lines = (DT) == DT_F32 ? 4 : 2;                                                   \
        if (nt == 1) {                                                                              \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                             \
            int p = 0;                                                                              \
            for (; p + 64 <= kfull; p += 64) {                                                      \
                row_pf(DT, w, base + p, lines);                                                     \
                a0 = _mm512_fmadd_ps(load16(DT, w, base + p), _mm512_loadu_ps(x + p), a0);          \
                a1 = _mm512_fmadd_ps(load16(DT, w, base + p + 16), _mm512_loadu_ps(x + p + 16), a1); \
                a2 = _mm512_fmadd_ps(load16(DT, w, base + p + 32), _mm512_loadu_ps(x + p + 32), a2); \
                a3 = _mm512_fmadd_ps(load16(DT, w, base + p + 48), _mm512_loadu_ps(x + p + 48), a3); \
            }                                                                                       \
            for (; p < kfull; p += 16) a0 = _mm512_fmadd_ps(load16(DT, w, base + p), _mm512_loadu_ps(x + p), a0); \
            o[0] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3))); \
            return;                                                                                 \
        }                                                                                           \
        __m512 a[3][2];                                                                             \
        for (int t = 0; t < 3; t++) a[t][0] = a[t][1] = _mm512_setzero_ps();                        \
        int p = 0;                                                                                  \
        for (; p + 32 <= kfull; p += 32) {                                                          \
            row_pf(DT, w, base + p, lines / 2);                                                     \
            __m512 w0 = load16(DT, w, base + p), w1 = load16(DT, w, base + p + 16);                 \
            for (int t = 0; t < nt; t++) {                                                          \
                a[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + t * xs + p), a[t][0]);            \
                a[t][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x + t * xs + p + 16), a[t][1]);       \
            }                                                                                       \
        }                                                                                           \
        for (; p < kfull; p += 16) {                                                                \
            __m512 w0 = load16(DT, w, base + p);                                                    \
            for (int t = 0; t < nt; t++) a[t][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x + t * xs + p), a[t][0]); \
        }                                                                                           \
        for (int t = 0; t < nt; t++) o[t * m] = _mm512_reduce_add_ps(_mm512_add_ps(a[t][0], a[t][1])); \
    }
ROW512_KERNEL(DT_F32, row512_f32)
ROW512_KERNEL(DT_BF16, row512_bf16)
ROW512_KERNEL(DT_F16, row512_f16)

/* the caller adds the K tail from k & ~15 */
static A512 void matmul_avx512_small(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0,
                                     int i1, float *out) {
    int kfull = k & ~15;
    int nt = i1 - i0;
    const float *xp = x + (size_t) i0 * k;
    float *op = out + (size_t) i0 * m;
    for (int j = j0; j < j1; j++) {
        if (dtype == DT_F32) row512_f32(w, (size_t) j, xp, (size_t) k, nt, kfull, op + j, (size_t) m);
        else if (dtype == DT_BF16) row512_bf16(w, (size_t) j, xp, (size_t) k, nt, kfull, op + j, (size_t) m);
        else row512_f16(w, (size_t) j, xp, (size_t) k, nt, kfull, op + j, (size_t) m);
    }
}

/*
 * Blocks of 4 to 8 tokens (AVX-512): ROWS_R (3) weight rows at a time, each streamed once over
 * all of K (rows are contiguous: long sequential streams, no restart every 4 KiB page as with K
 * slices), prefetched ROWS_PFW bytes ahead, against every token of the block (x interleaved, in
 * L2): 3·T accumulators, 3 weight loads per 3·T FMAs. The caller adds the K tail from k & ~15.
 */
#ifndef ROWS_R
#define ROWS_R 3
#endif
/* software prefetch distance in the weight rows, bytes */
#ifndef ROWS_PFW
#define ROWS_PFW 2048
#endif
#ifndef ROWS_PF_HINT
#define ROWS_PF_HINT _MM_HINT_T0
#endif
#ifndef ROWS_PFX
#define ROWS_PFX 0
#endif
#define ROWS_KERNEL(T)                                                                             \
    A512_INLINE void rowsx##T(int dtype, const void *w, size_t row, int nr, const float *x, size_t k, int kfull, \
                                float *o, size_t m) {                                               \
        __m512 acc[ROWS_R][T];                                                                      \
        size_t b[ROWS_R];                                                                           \
        for (int r = 0; r < ROWS_R; r++) {                                                          \
            b[r] = (row + (r < nr ? r : 0)) * k;                                                    \
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();                            \
        }                                                                                           \
        for (int p = 0; p < kfull; p += 16) {                                                       \
            __m512 wv[ROWS_R];                                                                      \
            for (int r = 0; r < ROWS_R; r++) wv[r] = load16(dtype, w, b[r] + p);                    \
            if (ROWS_PFW > 0)                                                                       \
                for (int r = 0; r < ROWS_R; r++)                                                    \
                    _mm_prefetch((const char *) w + (b[r] + p) * (dtype == DT_F32 ? 4 : 2) + ROWS_PFW, ROWS_PF_HINT); \
            if (ROWS_PFX) for (int t = 0; t < T; t++) _mm_prefetch((const char *) (x + t * k + p) + ROWS_PFX, _MM_HINT_T0); \
            for (int t = 0; t < T; t++) {                                                           \
                __m512 xv = _mm512_load_ps(x + (size_t) p * T + 16 * t);                           \
                for (int r = 0; r < ROWS_R; r++) acc[r][t] = _mm512_fmadd_ps(wv[r], xv, acc[r][t]); \
            }                                                                                       \
        }                                                                                           \
        for (int t = 0; t < T; t++)                                                                 \
            for (int r = 0; r < nr; r++) o[t * m + r] = _mm512_reduce_add_ps(acc[r][t]);            \
    }
ROWS_KERNEL(4)
ROWS_KERNEL(5)
ROWS_KERNEL(6)
ROWS_KERNEL(7)
ROWS_KERNEL(8)

/*
 * 4 to 8 tokens: i1 - i0 in [4, 8]. The block's x is first interleaved per 16 floats (xi[p/16][t][16]):
 * rows of x 4·K bytes apart would all map onto the same L1 sets, and one sequential stream suits
 * the prefetchers better than eight.
 */
static A512 void matmul_avx512_rows(int dtype, const float *x, int k, const void *w, int m, int j0, int j1, int i0,
                                    int i1, float *out) {
    int kfull = k & ~15;
    int nt = i1 - i0;
    float *xi = scratch(1, (size_t) nt * kfull);
    if (!xi) {
        matmul_base_upto(dtype, x, k, kfull, w, m, j0, j1, i0, i1, out); /* the caller adds the K tail */
        return;
    }
    for (int p = 0; p < kfull; p += 16)
        for (int t = 0; t < nt; t++) _mm512_store_ps(xi + (size_t) p * nt + 16 * t, _mm512_loadu_ps(x + (size_t) (i0 + t) * k + p));
    const float *xp = xi;
    for (int j = j0; j < j1; j += ROWS_R) {
        int nr = j1 - j < ROWS_R ? j1 - j : ROWS_R;
        float *op = out + (size_t) i0 * m + j;
        switch (nt) {
            case 8: rowsx8(dtype, w, (size_t) j, nr, xp, (size_t) k, kfull, op, (size_t) m); break;
            case 7: rowsx7(dtype, w, (size_t) j, nr, xp, (size_t) k, kfull, op, (size_t) m); break;
            case 6: rowsx6(dtype, w, (size_t) j, nr, xp, (size_t) k, kfull, op, (size_t) m); break;
            case 5: rowsx5(dtype, w, (size_t) j, nr, xp, (size_t) k, kfull, op, (size_t) m); break;
            default: rowsx4(dtype, w, (size_t) j, nr, xp, (size_t) k, kfull, op, (size_t) m); break;
        }
    }
}

/* AVX-512 VNNI int8: as kv8xT with 64 bytes per step */
#define I8_KERNEL_512(T)                                                                           \
    A512_INLINE void kz8x##T(const int8_t *w, size_t k, const int8_t *x, int kfull, __m128i *res) {  \
        const __m512i flip = _mm512_set1_epi8((char) 0x80);                                        \
        const __m512i ones = _mm512_set1_epi8(1);                                                  \
        __m512i acc[4][T];                                                                         \
        __m512i ws[4];                                                                             \
        for (int r = 0; r < 4; r++) {                                                              \
            ws[r] = _mm512_setzero_si512();                                                        \
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_si512();                        \
        }                                                                                          \
        for (int p = 0; p < kfull; p += 64) {                                                      \
            __m512i xv[T];                                                                         \
            for (int t = 0; t < T; t++)                                                            \
                xv[t] = _mm512_xor_si512(_mm512_loadu_si512((const void *) (x + t * k + p)), flip); \
            for (int r = 0; r < 4; r++) {                                                          \
                __m512i wv = _mm512_loadu_si512((const void *) (w + r * k + p));                   \
                ws[r] = _mm512_dpbusd_epi32(ws[r], ones, wv);                                      \
                for (int t = 0; t < T; t++) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], xv[t], wv);  \
            }                                                                                      \
        }                                                                                          \
        __m256i h[4];                                                                              \
        for (int r = 0; r < 4; r++) h[r] = _mm256_add_epi32(_mm512_castsi512_si256(ws[r]), _mm512_extracti64x4_epi64(ws[r], 1)); \
        __m128i corr = _mm_slli_epi32(hsum4i(h[0], h[1], h[2], h[3]), 7);                          \
        for (int t = 0; t < T; t++) {                                                              \
            for (int r = 0; r < 4; r++)                                                            \
                h[r] = _mm256_add_epi32(_mm512_castsi512_si256(acc[r][t]), _mm512_extracti64x4_epi64(acc[r][t], 1)); \
            res[t] = _mm_sub_epi32(hsum4i(h[0], h[1], h[2], h[3]), corr);                          \
        }                                                                                          \
    }
I8_KERNEL_512(1)
I8_KERNEL_512(3)

/*
 * Decode-sized blocks (1 to 3 tokens): stream one weight row at a time, as the float path does.
 * The weights are made unsigned in register (w ^ 0x80 = w + 128) and meet the signed activations
 * in vpdpbusd, so the 128·Σx correction is per token and computed once per call. One kernel per
 * token count keeps the accumulators in registers (a runtime count sends them to the stack).
 */
#ifndef I8S_U
#define I8S_U 4
#endif
#define I8S_KERNEL(T)                                                                              \
    A512_INLINE void i8row##T(const int8_t *wr, const int8_t *x, size_t k, int kfull, int32_t *res) { \
        const __m512i flip = _mm512_set1_epi8((char) 0x80);                                        \
        __m512i a[T][I8S_U];                                                                       \
        for (int t = 0; t < T; t++)                                                                \
            for (int u = 0; u < I8S_U; u++) a[t][u] = _mm512_setzero_si512();                      \
        int p = 0;                                                                                 \
        for (; p + 64 * I8S_U <= kfull; p += 64 * I8S_U)                                           \
            for (int u = 0; u < I8S_U; u++) {                                                      \
                __m512i wv = _mm512_xor_si512(_mm512_loadu_si512((const void *) (wr + p + 64 * u)), flip); \
                for (int t = 0; t < T; t++)                                                        \
                    a[t][u] = _mm512_dpbusd_epi32(a[t][u], wv,                                     \
                            _mm512_loadu_si512((const void *) (x + t * k + p + 64 * u)));          \
            }                                                                                      \
        for (; p < kfull; p += 64) {                                                               \
            __m512i wv = _mm512_xor_si512(_mm512_loadu_si512((const void *) (wr + p)), flip);      \
            for (int t = 0; t < T; t++)                                                            \
                a[t][0] = _mm512_dpbusd_epi32(a[t][0], wv, _mm512_loadu_si512((const void *) (x + t * k + p))); \
        }                                                                                          \
        for (int t = 0; t < T; t++) {                                                              \
            __m512i s = a[t][0];                                                                   \
            for (int u = 1; u < I8S_U; u++) s = _mm512_add_epi32(s, a[t][u]);                      \
            res[t] = _mm512_reduce_add_epi32(s);                                                   \
        }                                                                                          \
    }
I8S_KERNEL(1)
I8S_KERNEL(2)
I8S_KERNEL(3)

static A512 void matmul_i8_avx512_small(const int8_t *q, int k, const int8_t *w, int m, int j0, int j1, int i0,
                                        int i1, const float *rowScale, const int32_t *bias, const float *colScale,
                                        float *out) {
    int kfull = k & ~63;
    int nt = i1 - i0;
    const int8_t *x = q + (size_t) i0 * k;
    int32_t corr[3];
    for (int t = 0; t < nt; t++) {
        int32_t s = 0;
        for (int p = 0; p < kfull; p++) s += x[(size_t) t * k + p];
        corr[t] = s * 128;
    }
    for (int j = j0; j < j1; j++) {
        const int8_t *wr = w + (size_t) j * k;
        int32_t res[3];
        if (nt == 1) i8row1(wr, x, (size_t) k, kfull, res);
        else if (nt == 2) i8row2(wr, x, (size_t) k, kfull, res);
        else i8row3(wr, x, (size_t) k, kfull, res);
        for (int t = 0; t < nt; t++) {
            int32_t acc = res[t] - corr[t] + dot_i8_tail(x + (size_t) t * k, wr, kfull, k);
            if (bias) acc += bias[j];
            float f = (float) acc;
            if (rowScale) f *= rowScale[i0 + t];
            out[(size_t) (i0 + t) * m + j] = f * colScale[j];
        }
    }
}

static A512 void matmul_i8_avx512(const int8_t *q, int k, const int8_t *w, int m, int j0, int j1, int i0, int i1,
                                  const float *rowScale, const int32_t *bias, const float *colScale, float *out) {
    MATMUL_I8_BODY(64, kz8x1, kz8x3)
}

/*
 * Int8 blocks of 4 to 8 tokens (AVX-512 VNNI): two weight rows at a time, each streamed once
 * over all of K against every token of the block, so each weight byte is read once per call (the
 * 3 + 1 token kernels above pass over a row block up to four times). The activations are made
 * unsigned (x ^ 0x80) once per call into a per-thread copy (8 tokens x K bytes, in L1 for K up to
 * 4096); vpdpbusd accumulates R x T int32 vectors, the row sums for the 128 * sum(w) correction come
 * from one more vpdpbusd per row. The last k % 64 columns are added in scalar code. Exact, and the
 * scaling is the same as store_i8's.
 */
#ifndef I8R_PF
#define I8R_PF 1024 /* software prefetch distance in the weight rows, bytes (0: none) */
#endif

#define I8_ROWS_KERNEL(R, T)                                                                        \
    A512_INLINE void i8r_##R##x##T(const int8_t *w, size_t k, const int8_t *xf, size_t xs, int kfull,  \
                                   int32_t res[R][T]) {                                             \
        const __m512i ones = _mm512_set1_epi8(1);                                                   \
        __m512i acc[R][T], ws[R];                                                                   \
        for (int r = 0; r < R; r++) {                                                               \
            ws[r] = _mm512_setzero_si512();                                                         \
            for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_si512();                         \
        }                                                                                           \
        for (int p = 0; p < kfull; p += 64) {                                                       \
            __m512i wv[R];                                                                          \
            for (int r = 0; r < R; r++) {                                                           \
                if (I8R_PF) _mm_prefetch((const char *) (w + r * k + p) + I8R_PF, _MM_HINT_T0);     \
                wv[r] = _mm512_loadu_si512((const void *) (w + r * k + p));                         \
                ws[r] = _mm512_dpbusd_epi32(ws[r], ones, wv[r]);                                    \
            }                                                                                       \
            for (int t = 0; t < T; t++) {                                                           \
                __m512i xv = _mm512_load_si512((const void *) (xf + t * xs + p));                   \
                for (int r = 0; r < R; r++) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], xv, wv[r]);  \
            }                                                                                       \
        }                                                                                           \
        for (int r = 0; r < R; r++) {                                                               \
            int32_t corr = _mm512_reduce_add_epi32(ws[r]) * 128;                                    \
            for (int t = 0; t < T; t++) res[r][t] = _mm512_reduce_add_epi32(acc[r][t]) - corr;      \
        }                                                                                           \
    }
#define I8_ROWS_KERNELS(T) I8_ROWS_KERNEL(2, T) I8_ROWS_KERNEL(1, T)
I8_ROWS_KERNELS(4)
I8_ROWS_KERNELS(5)
I8_ROWS_KERNELS(6)
I8_ROWS_KERNELS(7)
I8_ROWS_KERNELS(8)

/* rows [j, j+R) x the block's T tokens: kernel, K tail, scaling */
#define I8_ROWS_CASE(R, T)                                                                          \
    case T: {                                                                                       \
        int32_t res[R][T];                                                                          \
        i8r_##R##x##T(w + (size_t) j * k, (size_t) k, xf, xs, kfull, res);                          \
        for (int r = 0; r < R; r++)                                                                 \
            for (int t = 0; t < T; t++) {                                                           \
                int32_t acc = res[r][t] + dot_i8_tail(q + (size_t) (i0 + t) * k, w + (size_t) (j + r) * k, kfull, k) \
                              + (bias ? bias[j + r] : 0);                                           \
                float f = (float) acc;                                                              \
                if (rowScale) f *= rowScale[i0 + t];                                                \
                out[(size_t) (i0 + t) * m + j + r] = f * colScale[j + r];                           \
            }                                                                                       \
        break;                                                                                      \
    }

/* returns 0 if scratch memory was not available (nothing written) */
static A512 int matmul_i8_avx512_rows(const int8_t *q, int k, const int8_t *w, int m, int j0, int j1, int i0, int i1,
                                      const float *rowScale, const int32_t *bias, const float *colScale, float *out) {
    int nt = i1 - i0;
    int kfull = k & ~63;
    size_t xs = (size_t) kfull;
    int8_t *xf = (int8_t *) scratch(1, (nt * xs + 3) / 4 + 16);
    if (!xf) return 0;
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    for (int t = 0; t < nt; t++)
        for (int p = 0; p < kfull; p += 64)
            _mm512_store_si512((void *) (xf + t * xs + p),
                               _mm512_xor_si512(_mm512_loadu_si512((const void *) (q + (size_t) (i0 + t) * k + p)), flip));
    int j = j0;
    for (; j + 2 <= j1; j += 2) {
        switch (nt) {
            I8_ROWS_CASE(2, 4)
            I8_ROWS_CASE(2, 5)
            I8_ROWS_CASE(2, 6)
            I8_ROWS_CASE(2, 7)
            default: I8_ROWS_CASE(2, 8)
        }
    }
    for (; j < j1; j++) {
        switch (nt) {
            I8_ROWS_CASE(1, 4)
            I8_ROWS_CASE(1, 5)
            I8_ROWS_CASE(1, 6)
            I8_ROWS_CASE(1, 7)
            default: I8_ROWS_CASE(1, 8)
        }
    }
    return 1;
}

/*
 * Batched int8 GEMM, AVX-512 VNNI, packed (blocks of PK_MIN_TOKENS tokens or more): the integer
 * analogue of matmul_avx512_packed. The tokens sit in the lanes: the activations of a K slice are
 * packed per 4 columns as [k/4][32 tokens][4 bytes], made unsigned by x ^ 0x80; each weight row's 4
 * consecutive int8 are broadcast as one 32-bit value straight from the row (a last block of fewer
 * than PK8_R rows is copied into a zero-padded buffer), and vpdpbusd accumulates 12 rows x 32 tokens
 * in 24 int32 accumulators. The 128 * sum(w) of each row (the cost of the unsigned activations)
 * is summed once per call with vpdpbusd against ones while the row block is in cache, and
 * subtracted at the end; the last k % 4 columns are added in scalar code. Exact for all int8
 * inputs (int32 arithmetic, as the other int8 paths). Loops and prefetching as the float kernel.
 */
#define PK8_R 12  /* rows per micro-kernel */
#define PK8_TB 32 /* tokens per token block */
#ifndef PK8_KC
#define PK8_KC 2048 /* bytes of K per slice, a multiple of 64: 32 tokens x PK8_KC bytes per token block in L2 */
#endif
#ifndef PK8_PF_CUR
#define PK8_PF_CUR 256
#endif

typedef int32_t __attribute__((may_alias, aligned(1))) i32u_t;

#define PK8_STEP(TV, Q)                                                                             \
    {                                                                                               \
        __m512i xv[TV];                                                                             \
        for (int v = 0; v < TV; v++) xv[v] = _mm512_load_si512((const void *) (xt + (size_t) (Q) * PK8_TB + 16 * v)); \
        for (int r = 0; r < PK8_R; r++) {                                                            \
            const i32u_t *wq = (const i32u_t *) (wb + r * ws + 4 * (size_t) (Q));                   \
            for (int v = 0; v < TV; v++) PK8_DPB(acc[r][v], xv[v], wq);                             \
        }                                                                                           \
    }

/* acc += dpbusd(x (unsigned), row r's 4 signed bytes in every lane) */
#define PK8_DPB(ACC, XV, WQ) ((ACC) = _mm512_dpbusd_epi32((ACC), (XV), _mm512_set1_epi32(*(WQ))))

/* acc[r][v] over kq quads: row r's quad q is the int32 at wb + r*ws + 4q; xt 32 tokens x 4 bytes per quad */
#define PK8_UKERNEL(TV)                                                                             \
    A512_INLINE void pk8_uk##TV(const int8_t *wb, size_t ws, const int32_t *xt, int kq, int32_t *ct, size_t ldc, \
                                int add, const char *pf, size_t pfs) {                              \
        __m512i acc[PK8_R][TV];                                                                      \
        for (int r = 0; r < PK8_R; r++) {                                                            \
            if (add) _mm_prefetch((const char *) (ct + r * ldc), _MM_HINT_T0);                      \
            for (int v = 1; add && v < TV; v++) _mm_prefetch((const char *) (ct + r * ldc + 16 * v), _MM_HINT_T0); \
            for (int v = 0; v < TV; v++) acc[r][v] = _mm512_setzero_si512();                        \
        }                                                                                           \
        int q = 0;                                                                                  \
        if (pf) {                                                                                   \
            for (; q + 16 <= kq; q += 16) {                                                         \
                for (int r = 0; r < PK8_R; r++) _mm_prefetch(pf + r * pfs + (size_t) q * 4, PK_PF_HINT); \
                if (PK8_PF_CUR)                                                                     \
                    for (int r = 0; r < PK8_R; r++) _mm_prefetch((const char *) (wb + r * ws + 4 * (size_t) q + PK8_PF_CUR), _MM_HINT_T0); \
                _Pragma("GCC unroll 16")                                                            \
                for (int qq = q; qq < q + 16; qq++) PK8_STEP(TV, qq)                                \
            }                                                                                       \
        }                                                                                           \
        _Pragma("GCC unroll 2")                                                                     \
        for (; q < kq; q++) PK8_STEP(TV, q)                                                         \
        for (int r = 0; r < PK8_R; r++)                                                              \
            for (int v = 0; v < TV; v++) {                                                          \
                int32_t *c = ct + r * ldc + 16 * v;                                                 \
                _mm512_store_si512((void *) c, add ? _mm512_add_epi32(_mm512_load_si512((const void *) c), acc[r][v]) : acc[r][v]); \
            }                                                                                       \
    }
PK8_UKERNEL(1)
PK8_UKERNEL(2)

/* xt[b][q][tt] = the 4 bytes of token i0+32b+tt at columns kb+4q.. , each ^ 0x80; zero past the last token */
A512_INLINE void pk8_pack_x(const int8_t *x, int k, int i0, int nt, int nb, int kb, int kq, int32_t *xt) {
    const __m512i flip = _mm512_set1_epi8((char) 0x80);
    int kv = kq & ~15;
    for (int b = 0; b < nb; b++) {
        int32_t *d = xt + (size_t) b * (PK8_KC / 4) * PK8_TB;
        for (int h = 0; h < PK8_TB; h += 16) {
            int t0 = b * PK8_TB + h;
            int valid = nt - t0 < 16 ? (nt - t0 > 0 ? nt - t0 : 0) : 16;
            for (int q = 0; q < kv; q += 16) {
                __m512 r[16];
                for (int tt = 0; tt < 16; tt++)
                    r[tt] = tt < valid ? _mm512_castsi512_ps(_mm512_xor_si512(
                            _mm512_loadu_si512((const void *) (x + (size_t) (i0 + t0 + tt) * k + kb + 4 * q)), flip))
                                       : _mm512_setzero_ps();
                transpose16(r);
                for (int u = 0; u < 16; u++) _mm512_store_si512((void *) (d + (size_t) (q + u) * PK8_TB + h), _mm512_castps_si512(r[u]));
            }
            for (int tt = 0; tt < 16; tt++) {
                const int8_t *s = x + (size_t) (i0 + t0 + tt) * k + kb;
                for (int q = kv; q < kq; q++)
                    d[(size_t) q * PK8_TB + h + tt] = tt < valid ? (int32_t) ((uint32_t) *(const i32u_t *) (s + 4 * q) ^ 0x80808080u) : 0;
            }
        }
    }
}

/* wsum[r] += sum of row r's bytes [0, n) for r < nr (rows ws bytes apart) */
A512_INLINE void pk8_wsum(const int8_t *wr, size_t ws, int nr, int n, int32_t *wsum) {
    const __m512i ones = _mm512_set1_epi8(1);
    for (int r = 0; r < nr; r++) {
        const int8_t *s = wr + r * ws;
        __m512i a = _mm512_setzero_si512();
        int p = 0;
        for (; p + 64 <= n; p += 64) a = _mm512_dpbusd_epi32(a, ones, _mm512_loadu_si512((const void *) (s + p)));
        int32_t t = _mm512_reduce_add_epi32(a);
        for (; p < n; p++) t += s[p];
        wsum[r] += t;
    }
}

/* returns 0 if scratch memory was not available (nothing written) */
static A512 int matmul_i8_avx512_packed_rows(const int8_t *x, int k, const int8_t *w, int m, int j0, int j1, int i0,
                                             int i1, const float *rowScale, const int32_t *bias, const float *colScale,
                                             float *out) {
    int nt = i1 - i0;
    int nb = (nt + PK8_TB - 1) / PK8_TB;
    int rows = j1 - j0;
    int rpad = (rows + PK8_R - 1) / PK8_R * PK8_R;
    size_t ldc = (size_t) nb * PK8_TB;
    int32_t *ct = (int32_t *) scratch(0, (size_t) rpad * ldc + (size_t) rpad);
    int32_t *xt = (int32_t *) scratch(1, (size_t) nb * (PK8_KC / 4) * PK8_TB);
    int8_t *wb = (int8_t *) scratch(2, (size_t) PK8_R * PK8_KC / 4);
    if (!ct || !xt || !wb) return 0;
    int32_t *wsum = ct + (size_t) rpad * ldc;
    memset(wsum, 0, (size_t) rpad * sizeof(int32_t));
    int k4 = k & ~3;
    if (k4 == 0) memset(ct, 0, (size_t) rpad * ldc * sizeof(int32_t));
    int lastTv = (nt - (nb - 1) * PK8_TB + 15) / 16;
    for (int kb = 0; kb < k4; kb += PK8_KC) {
        int kc = k4 - kb < PK8_KC ? k4 - kb : PK8_KC;
        int kq = kc / 4;
        int add = kb > 0;
        pk8_pack_x(x, k, i0, nt, nb, kb, kq, xt);
        for (int r0 = 0; r0 < rows; r0 += PK8_R) {
            int nr = rows - r0 < PK8_R ? rows - r0 : PK8_R;
            const int8_t *wr = w + (size_t) (j0 + r0) * k + kb;
            size_t ws = (size_t) k;
            pk8_wsum(wr, ws, nr, kc, wsum + r0);
            if (nr < PK8_R) {
                for (int r = 0; r < PK8_R; r++) {
                    if (r < nr) memcpy(wb + (size_t) r * PK8_KC, wr + (size_t) r * k, (size_t) kc);
                    else memset(wb + (size_t) r * PK8_KC, 0, (size_t) kc);
                }
                wr = wb;
                ws = PK8_KC;
            }
            /* the next block of weights (next rows, else the next K slice), fetched during the first token block */
            const char *pf = NULL;
            if (r0 + PK8_R + PK8_R <= rows) pf = (const char *) (w + (size_t) (j0 + r0 + PK8_R) * k + kb);
            else if (kb + PK8_KC < k4 && rows >= PK8_R && k4 - kb - PK8_KC >= PK8_KC) pf = (const char *) (w + (size_t) j0 * k + kb + PK8_KC);
            int32_t *cr = ct + (size_t) r0 * ldc;
            for (int b = 0; b < nb; b++) {
                const int32_t *xb = xt + (size_t) b * (PK8_KC / 4) * PK8_TB;
                const char *pb = b == 0 ? pf : NULL;
                int32_t *cb = cr + (size_t) b * PK8_TB;
                if ((b == nb - 1 ? lastTv : 2) == 1) pk8_uk1(wr, ws, xb, kq, cb, ldc, add, pb, (size_t) k);
                else pk8_uk2(wr, ws, xb, kq, cb, ldc, add, pb, (size_t) k);
            }
        }
    }
    /* write-out: tiles of 16 rows x 16 tokens transposed in registers (no K tail), the rest scalar */
    int ntv = nt & ~15;
    int rv = k4 == k ? rows & ~15 : 0;
    for (int t0 = 0; t0 < ntv; t0 += 16) {
        for (int r0 = 0; r0 < rv; r0 += 16) {
            __m512 v[16];
            for (int u = 0; u < 16; u++) v[u] = _mm512_castsi512_ps(_mm512_load_si512((const void *) (ct + (size_t) (r0 + u) * ldc + t0)));
            transpose16(v);
            __m512i corr = _mm512_slli_epi32(_mm512_loadu_si512((const void *) (wsum + r0)), 7);
            if (bias) corr = _mm512_sub_epi32(corr, _mm512_loadu_si512((const void *) (bias + j0 + r0)));
            __m512 cs = _mm512_loadu_ps(colScale + j0 + r0);
            for (int u = 0; u < 16; u++) {
                __m512 f = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_castps_si512(v[u]), corr));
                if (rowScale) f = _mm512_mul_ps(f, _mm512_set1_ps(rowScale[i0 + t0 + u]));
                _mm512_storeu_ps(out + (size_t) (i0 + t0 + u) * m + j0 + r0, _mm512_mul_ps(f, cs));
            }
        }
    }
    for (int t = 0; t < nt; t++) {
        const int8_t *xr = x + (size_t) (i0 + t) * k;
        float *o = out + (size_t) (i0 + t) * m + j0;
        for (int r = t < ntv ? rv : 0; r < rows; r++) {
            int32_t acc = ct[(size_t) r * ldc + t] - wsum[r] * 128;
            if (k4 < k) acc += dot_i8_tail(xr, w + (size_t) (j0 + r) * k, k4, k);
            if (bias) acc += bias[j0 + r];
            float f = (float) acc;
            if (rowScale) f *= rowScale[i0 + t];
            o[r] = f * colScale[j0 + r];
        }
    }
    return 1;
}

static A512 int matmul_i8_avx512_packed(const int8_t *x, int k, const int8_t *w, int m, int j0, int j1, int i0, int i1,
                                        const float *rowScale, const int32_t *bias, const float *colScale, float *out) {
    for (int j = j0; j < j1; j += PK_MAX_ROWS) {
        int je = j1 - j > PK_MAX_ROWS ? j + PK_MAX_ROWS : j1;
        if (!matmul_i8_avx512_packed_rows(x, k, w, m, j, je, i0, i1, rowScale, bias, colScale, out)) {
            if (j == j0) return 0;
            matmul_i8_base(x, k, w, m, j, j1, i0, i1, rowScale, bias, colScale, out);
            return 1;
        }
    }
    return 1;
}

/* ---------------------------------------------------------------- element-wise ops (baseline C) */

static void quantize_rows(const float *x, int rows, int k, int8_t *q, float *scale) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * k;
        float mx = 0.f;
        for (int p = 0; p < k; p++) {
            float a = fabsf(xr[p]);
            if (a > mx) mx = a;
        }
        float s = mx == 0.f ? 1.f : mx / 127.f;
        scale[r] = s;
        int8_t *qr = q + (size_t) r * k;
        for (int p = 0; p < k; p++) {
            float v = nearbyintf(xr[p] / s); /* default rounding mode: half to even */
            if (v > 127.f) v = 127.f;
            if (v < -127.f) v = -127.f;
            qr[p] = (int8_t) v;
        }
    }
}

/* AVX2: the same results as quantize_rows (x / s rounded half to even by vroundps, clamped), 8 at a time */
static AVX2 void quantize_rows_avx2(const float *x, int rows, int k, int8_t *q, float *scale) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * k;
        __m256 m8 = _mm256_setzero_ps();
        int p = 0;
        for (; p + 8 <= k; p += 8) m8 = _mm256_max_ps(m8, _mm256_and_ps(_mm256_loadu_ps(xr + p), absmask));
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
        float mx = _mm_cvtss_f32(m4);
        for (; p < k; p++) {
            float a = fabsf(xr[p]);
            if (a > mx) mx = a;
        }
        float s = mx == 0.f ? 1.f : mx / 127.f;
        scale[r] = s;
        int8_t *qr = q + (size_t) r * k;
        const __m256 sv = _mm256_set1_ps(s), hi = _mm256_set1_ps(127.f), lo = _mm256_set1_ps(-127.f);
        for (p = 0; p + 8 <= k; p += 8) {
            __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(xr + p), sv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            __m256i i32 = _mm256_cvtps_epi32(_mm256_max_ps(lo, _mm256_min_ps(hi, v)));
            __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
            _mm_storel_epi64((__m128i *) (qr + p), _mm_packs_epi16(i16, i16));
        }
        for (; p < k; p++) {
            float v = nearbyintf(xr[p] / s);
            if (v > 127.f) v = 127.f;
            if (v < -127.f) v = -127.f;
            qr[p] = (int8_t) v;
        }
    }
}

static void rms_norm(const float *x, int xStride, int rows, const float *weight, int n, float eps, float *out,
                     int outStride) {
    for (int r = 0; r < rows; r++) {
        const float *xr = x + (size_t) r * xStride;
        float *o = out + (size_t) r * outStride;
        float ss = 0.f;
        for (int p = 0; p < n; p++) ss += xr[p] * xr[p];
        float inv = 1.f / sqrtf(ss / (float) n + eps);
        for (int p = 0; p < n; p++) o[p] = weight[p] * (xr[p] * inv);
    }
}

static void softmax_rows(float *x, int rows, int len, int stride) {
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t) r * stride;
        float mx = -INFINITY;
        for (int p = 0; p < len; p++) if (xr[p] > mx) mx = xr[p];
        float sum = 0.f;
        for (int p = 0; p < len; p++) {
            xr[p] = expf(xr[p] - mx);
            sum += xr[p];
        }
        float inv = 1.f / sum;
        for (int p = 0; p < len; p++) xr[p] *= inv;
    }
}

static void silu_mul(float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g / (1.f + expf(-g)) * up[i];
    }
}

/*
 * e^x = 2^n · e^r with n = round(x·log2 e) and r = x − n·ln2 (ln2 in two parts, so r is exact
 * enough), |r| <= ln2/2; e^r = 1 + r + r²·P(r) with P of degree 5 (Cephes' expf coefficients,
 * about 1 ulp); 2^n goes into the exponent field. One set of constants for both vector widths.
 */
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO -2.12194440e-4f
#define EXP_P5 1.9875691500e-4f
#define EXP_P4 1.3981999507e-3f
#define EXP_P3 8.3334519073e-3f
#define EXP_P2 4.1665795894e-2f
#define EXP_P1 1.6666665459e-1f
#define EXP_P0 5.0000001201e-1f

/* AVX2 e^x for |x| <= 88 (the caller clamps), as above */
AVX2_INLINE __m256 exp256(__m256 x) {
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P5);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P0));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e)); /* n = -127 gives 0: e^x is then below F32's normal range */
}

/* AVX2 silu(g)·u = g / (1 + e^-g) · u, 8 at a time; |g| > 88 is clamped inside the exponential only */
static AVX2 void silu_mul_avx2(float *gate, const float *up, int n) {
    const __m256 one = _mm256_set1_ps(1.f), lim = _mm256_set1_ps(88.f), nlim = _mm256_set1_ps(-88.f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp256(_mm256_max_ps(nlim, _mm256_min_ps(lim, _mm256_sub_ps(_mm256_setzero_ps(), g))));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(one, e)), _mm256_loadu_ps(up + i)));
    }
    silu_mul(gate + i, up + i, n - i);
}

static void rope(float *x, int rows, int rowStride, int heads, int headStride, int rotaryDim, const float *cosv,
                 const float *sinv, int interleaved) {
    int half = rotaryDim / 2;
    for (int r = 0; r < rows; r++) {
        const float *c = cosv + (size_t) r * half;
        const float *s = sinv + (size_t) r * half;
        for (int h = 0; h < heads; h++) {
            float *v = x + (size_t) r * rowStride + (size_t) h * headStride;
            for (int i = 0; i < half; i++) {
                int ia = interleaved ? 2 * i : i;
                int ib = interleaved ? 2 * i + 1 : i + half;
                float a = v[ia], b = v[ib];
                v[ia] = a * c[i] - b * s[i];
                v[ib] = b * c[i] + a * s[i];
            }
        }
    }
}

/* k largest, descending, ties to the lower index: insertion into a sorted list of k */
static void top_k(const float *x, int len, int k, int32_t *idx, float *val) {
    int have = 0;
    for (int p = 0; p < len; p++) {
        float v = x[p];
        if (have == k && !(v > val[k - 1])) continue;
        int pos = have < k ? have : k - 1;
        while (pos > 0 && v > val[pos - 1]) {
            val[pos] = val[pos - 1];
            idx[pos] = idx[pos - 1];
            pos--;
        }
        val[pos] = v;
        idx[pos] = p;
        if (have < k) have++;
    }
}

/* ---------------------------------------------------------------- paged attention (decode-sized) */

/*
 * One (token, query head) of dev.dpserve.api.tensor.PagedAttention: scores over the positions
 * [lo, pos], a softmax in F32, out = Σ p·v. The cache is seen through kv_view: blk[i] is the pinned
 * block at table index i (NULL for blocks no position in range needs); a position's slot starts at
 * layer + (p % bs) * slot inside it. K of the KV head at koff, V at voff (head strides applied by the
 * caller). The Java side checks every index before the call.
 */
/* the most query heads attended together (their scores are ATT_G rows of the context) */
#define ATT_G 32

typedef struct {
    float **blk;
    int bs, layer, slot;
} kv_view;

static inline const float *kv_slot(const kv_view *v, int p) {
    return v->blk[p / v->bs] + v->layer + (size_t) (p % v->bs) * v->slot;
}

/* the reference loops (baseline and AVX2 levels) */
static void attend_base(const float *q, float *o, const kv_view *v, int koff, int voff, int kdim, int vdim, int lo,
                        int pos, float scale, float *sc) {
    float mx = -INFINITY;
    for (int p = lo; p <= pos; p++) {
        const float *k = kv_slot(v, p) + koff;
        float d = 0.f;
        for (int i = 0; i < kdim; i++) d += q[i] * k[i];
        sc[p] = d * scale;
        if (sc[p] > mx) mx = sc[p];
    }
    float sum = 0.f;
    for (int p = lo; p <= pos; p++) {
        sc[p] = expf(sc[p] - mx);
        sum += sc[p];
    }
    float inv = 1.f / sum;
    for (int i = 0; i < vdim; i++) o[i] = 0.f;
    for (int p = lo; p <= pos; p++) {
        const float *vv = kv_slot(v, p) + voff;
        float w = sc[p] * inv;
        for (int i = 0; i < vdim; i++) o[i] += w * vv[i];
    }
}

/* e^x for x in [-88, 0] (the caller clamps), as exp256 with 16 lanes */
A512_INLINE __m512 exp512(__m512 x) {
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_LO), r);
    __m512 p = _mm512_set1_ps(EXP_P5);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(EXP_P0));
    __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

/* lanes [0, n) of a 16-lane chunk, n in [0, 16] */
A512_INLINE __mmask16 lanes(int n) {
    return n >= 16 ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n > 0 ? n : 0)) - 1u);
}

/*
 * AVX-512, the query heads of one group (heads sharing a KV head, all of them for MLA) together, so
 * that each K/V row comes from memory once per group instead of once per head. Scores: tiles of
 * HT heads × 4 positions (16 accumulators over the K row, then 16 reductions), the K rows of a tile
 * staying in L1 while the heads pass. Softmax per head (exponentials 16 at a time). Σ p·v: tiles of
 * HT heads × 4 vectors of the output in registers over all positions, the V slice (64 floats ×
 * positions) reused from L2 by the next head tile. sc: g rows of ld floats.
 */
/* positions ahead whose K/V rows are prefetched: a decode step finds its cache in memory, not in cache */
#ifndef ATT_PF
#define ATT_PF 16
#endif

/* the lines of n floats from a */
A512_INLINE void att_prefetch(const float *a, int n) {
    const char *c = (const char *) a;
    const char *e = (const char *) (a + n);
    for (c = (const char *) ((uintptr_t) c & ~(uintptr_t) 63); c < e; c += 64) _mm_prefetch(c, _MM_HINT_T0);
}

#define ATT_SCORES(HT)                                                                              \
    A512_INLINE void att_scores##HT(const float *const *q, const kv_view *v, int koff, int kdim, int lo, int pos, \
                                    int pfend, float scale, float *sc, size_t ld) {                 \
        int kc = (kdim + 15) / 16;                                                                  \
        __mmask16 klast = lanes(kdim - 16 * (kc - 1));                                              \
        int p = lo;                                                                                 \
        for (; p + 3 <= pos; p += 4) {                                                              \
            const float *k[4];                                                                      \
            for (int u = 0; u < 4; u++) k[u] = kv_slot(v, p + u) + koff;                            \
            for (int u = 0; u < 4 && p + u + ATT_PF <= pfend; u++)                                  \
                att_prefetch(kv_slot(v, p + u + ATT_PF) + koff, kdim);                              \
            __m512 acc[HT][4];                                                                      \
            for (int h = 0; h < HT; h++)                                                            \
                for (int u = 0; u < 4; u++) acc[h][u] = _mm512_setzero_ps();                        \
            for (int c = 0; c < kc; c++) {                                                          \
                __mmask16 mk = c == kc - 1 ? klast : (__mmask16) 0xFFFF;                            \
                __m512 kv[4];                                                                       \
                for (int u = 0; u < 4; u++) kv[u] = _mm512_maskz_loadu_ps(mk, k[u] + 16 * c);       \
                for (int h = 0; h < HT; h++) {                                                      \
                    __m512 qv = _mm512_maskz_loadu_ps(mk, q[h] + 16 * c);                           \
                    for (int u = 0; u < 4; u++) acc[h][u] = _mm512_fmadd_ps(qv, kv[u], acc[h][u]);  \
                }                                                                                   \
            }                                                                                       \
            for (int h = 0; h < HT; h++)                                                            \
                for (int u = 0; u < 4; u++) sc[h * ld + p + u] = _mm512_reduce_add_ps(acc[h][u]) * scale; \
        }                                                                                           \
        for (; p <= pos; p++) {                                                                     \
            const float *k = kv_slot(v, p) + koff;                                                  \
            __m512 acc[HT];                                                                         \
            for (int h = 0; h < HT; h++) acc[h] = _mm512_setzero_ps();                              \
            for (int c = 0; c < kc; c++) {                                                          \
                __mmask16 mk = c == kc - 1 ? klast : (__mmask16) 0xFFFF;                            \
                __m512 kv = _mm512_maskz_loadu_ps(mk, k + 16 * c);                                  \
                for (int h = 0; h < HT; h++) acc[h] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, q[h] + 16 * c), kv, acc[h]); \
            }                                                                                       \
            for (int h = 0; h < HT; h++) sc[h * ld + p] = _mm512_reduce_add_ps(acc[h]) * scale;     \
        }                                                                                           \
    }

#define ATT_VALUES(HT)                                                                              \
    A512_INLINE void att_values##HT(float *const *o, const kv_view *v, int voff, int vdim, int lo, int pos, \
                                    const float *sc, size_t ld, const float *inv) {                 \
        for (int d0 = 0; d0 < vdim; d0 += 64) {                                                     \
            int nc = (vdim - d0 + 15) / 16;                                                         \
            if (nc > 4) nc = 4;                                                                     \
            __mmask16 mv[4];                                                                        \
            __m512 acc[HT][4];                                                                      \
            for (int c = 0; c < 4; c++) {                                                           \
                mv[c] = lanes(vdim - d0 - 16 * c);                                                  \
                for (int h = 0; h < HT; h++) acc[h][c] = _mm512_setzero_ps();                       \
            }                                                                                       \
            for (int p = lo; p <= pos; p++) {                                                       \
                const float *vv = kv_slot(v, p) + voff + d0;                                        \
                if (p + ATT_PF <= pos) att_prefetch(kv_slot(v, p + ATT_PF) + voff + d0, vdim - d0 < 64 ? vdim - d0 : 64); \
                __m512 x[4];                                                                        \
                for (int c = 0; c < 4; c++) x[c] = c < nc ? _mm512_maskz_loadu_ps(mv[c], vv + 16 * c) : _mm512_setzero_ps(); \
                for (int h = 0; h < HT; h++) {                                                      \
                    __m512 w = _mm512_set1_ps(sc[h * ld + p]);                                      \
                    for (int c = 0; c < 4; c++)                                                     \
                        if (c < nc) acc[h][c] = _mm512_fmadd_ps(w, x[c], acc[h][c]);                \
                }                                                                                   \
            }                                                                                       \
            for (int h = 0; h < HT; h++)                                                            \
                for (int c = 0; c < nc; c++)                                                        \
                    _mm512_mask_storeu_ps(o[h] + d0 + 16 * c, mv[c], _mm512_mul_ps(acc[h][c], _mm512_set1_ps(inv[h]))); \
        }                                                                                           \
    }
ATT_SCORES(4)
ATT_SCORES(3)
ATT_SCORES(2)
ATT_SCORES(1)
ATT_VALUES(4)
ATT_VALUES(3)
ATT_VALUES(2)
ATT_VALUES(1)

/*
 * The same for heads with a KV head each (MHA): head h's K/V at koff[h]/voff[h] of the slot. A
 * tile of HT heads reads HT·kdim consecutive floats of a slot per position instead of kdim, so a
 * pass over the positions touches 1 KiB of each slot rather than 256 bytes.
 */
#define ATT_SCORES_MHA(HT)                                                                          \
    A512_INLINE void att_scores_mha##HT(const float *const *q, const kv_view *v, const int *koff, int kdim, int lo, \
                                        int pos, float scale, float *sc, size_t ld) {               \
        int kc = (kdim + 15) / 16;                                                                  \
        __mmask16 klast = lanes(kdim - 16 * (kc - 1));                                              \
        int span = koff[HT - 1] + kdim - koff[0];                                                   \
        int p = lo;                                                                                 \
        for (; p + 3 <= pos; p += 4) {                                                              \
            const float *k[4];                                                                      \
            for (int u = 0; u < 4; u++) k[u] = kv_slot(v, p + u);                                   \
            for (int u = 0; u < 4 && p + u + ATT_PF <= pos; u++)                                    \
                att_prefetch(kv_slot(v, p + u + ATT_PF) + koff[0], span);                           \
            __m512 acc[HT][4];                                                                      \
            for (int h = 0; h < HT; h++)                                                            \
                for (int u = 0; u < 4; u++) acc[h][u] = _mm512_setzero_ps();                        \
            for (int c = 0; c < kc; c++) {                                                          \
                __mmask16 mk = c == kc - 1 ? klast : (__mmask16) 0xFFFF;                            \
                for (int h = 0; h < HT; h++) {                                                      \
                    __m512 qv = _mm512_maskz_loadu_ps(mk, q[h] + 16 * c);                           \
                    for (int u = 0; u < 4; u++)                                                     \
                        acc[h][u] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mk, k[u] + koff[h] + 16 * c), acc[h][u]); \
                }                                                                                   \
            }                                                                                       \
            for (int h = 0; h < HT; h++)                                                            \
                for (int u = 0; u < 4; u++) sc[h * ld + p + u] = _mm512_reduce_add_ps(acc[h][u]) * scale; \
        }                                                                                           \
        for (; p <= pos; p++) {                                                                     \
            const float *k = kv_slot(v, p);                                                         \
            for (int h = 0; h < HT; h++) {                                                          \
                __m512 acc = _mm512_setzero_ps();                                                   \
                for (int c = 0; c < kc; c++) {                                                      \
                    __mmask16 mk = c == kc - 1 ? klast : (__mmask16) 0xFFFF;                        \
                    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, q[h] + 16 * c),                 \
                                          _mm512_maskz_loadu_ps(mk, k + koff[h] + 16 * c), acc);    \
                }                                                                                   \
                sc[h * ld + p] = _mm512_reduce_add_ps(acc) * scale;                                 \
            }                                                                                       \
        }                                                                                           \
    }

#define ATT_VALUES_MHA(HT)                                                                          \
    A512_INLINE void att_values_mha##HT(float *const *o, const kv_view *v, const int *voff, int vdim, int lo, int pos, \
                                        const float *sc, size_t ld, const float *inv) {             \
        int span = voff[HT - 1] + vdim - voff[0];                                                   \
        for (int d0 = 0; d0 < vdim; d0 += 64) {                                                     \
            int nc = (vdim - d0 + 15) / 16;                                                         \
            if (nc > 4) nc = 4;                                                                     \
            __mmask16 mv[4];                                                                        \
            __m512 acc[HT][4];                                                                      \
            for (int c = 0; c < 4; c++) {                                                           \
                mv[c] = lanes(vdim - d0 - 16 * c);                                                  \
                for (int h = 0; h < HT; h++) acc[h][c] = _mm512_setzero_ps();                       \
            }                                                                                       \
            for (int p = lo; p <= pos; p++) {                                                       \
                const float *vs = kv_slot(v, p);                                                    \
                if (d0 == 0 && p + ATT_PF <= pos) att_prefetch(kv_slot(v, p + ATT_PF) + voff[0], span); \
                for (int h = 0; h < HT; h++) {                                                      \
                    __m512 w = _mm512_set1_ps(sc[h * ld + p]);                                      \
                    for (int c = 0; c < 4; c++)                                                     \
                        if (c < nc) acc[h][c] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(mv[c], vs + voff[h] + d0 + 16 * c), acc[h][c]); \
                }                                                                                   \
            }                                                                                       \
            for (int h = 0; h < HT; h++)                                                            \
                for (int c = 0; c < nc; c++)                                                        \
                    _mm512_mask_storeu_ps(o[h] + d0 + 16 * c, mv[c], _mm512_mul_ps(acc[h][c], _mm512_set1_ps(inv[h]))); \
        }                                                                                           \
    }
ATT_SCORES_MHA(4)
ATT_SCORES_MHA(3)
ATT_SCORES_MHA(2)
ATT_SCORES_MHA(1)
ATT_VALUES_MHA(4)
ATT_VALUES_MHA(3)
ATT_VALUES_MHA(2)
ATT_VALUES_MHA(1)

/* e^(s - max) in place over [lo, pos], clamped at -88 (exp512 then gives 0 or a subnormal); returns the sum */
A512_INLINE float att_softmax_row(float *s, int lo, int pos) {
    __m512 vm = _mm512_set1_ps(-INFINITY);
    for (int b = lo; b <= pos; b += 16) vm = _mm512_mask_max_ps(vm, lanes(pos + 1 - b), vm, _mm512_loadu_ps(s + b));
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vm)), nlim = _mm512_set1_ps(-88.f);
    __m512 vs = _mm512_setzero_ps();
    for (int b = lo; b <= pos; b += 16) {
        __mmask16 m = lanes(pos + 1 - b);
        __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_max_ps(nlim, _mm512_sub_ps(_mm512_maskz_loadu_ps(m, s + b), mx))));
        _mm512_mask_storeu_ps(s + b, m, e);
        vs = _mm512_add_ps(vs, e);
    }
    return _mm512_reduce_add_ps(vs);
}

/* g query heads (q[i], o[i]) over the same KV head; sc: g rows of ld floats */
/*
 * Positions per block of the scores when a group has more than one head tile: every tile passes
 * over a block while its K rows are in L2, so a row comes from memory once per group, not once per
 * tile (MLA with many heads: 32 tiles per call for 128 heads).
 */
#ifndef ATT_PB
#define ATT_PB 64
#endif

static A512 void attend512_group(const float *const *q, float *const *o, int g, const kv_view *v, int koff, int voff,
                                 int kdim, int vdim, int lo, int pos, float scale, float *sc, size_t ld) {
    int pb = g > 4 ? ATT_PB : pos - lo + 1;
    for (int p0 = lo; p0 <= pos; p0 += pb) {
        int p1 = pos - p0 < pb ? pos : p0 + pb - 1;
        for (int h = 0; h < g; h += 4) {
            int ht = g - h < 4 ? g - h : 4;
            float *s = sc + h * ld;
            int pfend = h == 0 ? pos : -1; /* the first tile prefetches, into the next block too */
            switch (ht) {
                case 4: att_scores4(q + h, v, koff, kdim, p0, p1, pfend, scale, s, ld); break;
                case 3: att_scores3(q + h, v, koff, kdim, p0, p1, pfend, scale, s, ld); break;
                case 2: att_scores2(q + h, v, koff, kdim, p0, p1, pfend, scale, s, ld); break;
                default: att_scores1(q + h, v, koff, kdim, p0, p1, pfend, scale, s, ld); break;
            }
        }
    }
    float inv[4];
    for (int h = 0; h < g; h += 4) {
        int ht = g - h < 4 ? g - h : 4;
        float *s = sc + h * ld;
        for (int i = 0; i < ht; i++) inv[i] = 1.f / att_softmax_row(s + i * ld, lo, pos);
        switch (ht) {
            case 4: att_values4(o + h, v, voff, vdim, lo, pos, s, ld, inv); break;
            case 3: att_values3(o + h, v, voff, vdim, lo, pos, s, ld, inv); break;
            case 2: att_values2(o + h, v, voff, vdim, lo, pos, s, ld, inv); break;
            default: att_values1(o + h, v, voff, vdim, lo, pos, s, ld, inv); break;
        }
    }
}

/* g query heads (q[i], o[i]) with a KV head each, K/V at koff[i]/voff[i] of the slot; sc: g rows of ld floats */
static A512 void attend512_mha(const float *const *q, float *const *o, int g, const kv_view *v, const int *koff,
                               const int *voff, int kdim, int vdim, int lo, int pos, float scale, float *sc, size_t ld) {
    float inv[4];
    for (int h = 0; h < g; h += 4) {
        int ht = g - h < 4 ? g - h : 4;
        float *s = sc + h * ld;
        switch (ht) {
            case 4: att_scores_mha4(q + h, v, koff + h, kdim, lo, pos, scale, s, ld); break;
            case 3: att_scores_mha3(q + h, v, koff + h, kdim, lo, pos, scale, s, ld); break;
            case 2: att_scores_mha2(q + h, v, koff + h, kdim, lo, pos, scale, s, ld); break;
            default: att_scores_mha1(q + h, v, koff + h, kdim, lo, pos, scale, s, ld); break;
        }
        for (int i = 0; i < ht; i++) inv[i] = 1.f / att_softmax_row(s + i * ld, lo, pos);
        switch (ht) {
            case 4: att_values_mha4(o + h, v, voff + h, vdim, lo, pos, s, ld, inv); break;
            case 3: att_values_mha3(o + h, v, voff + h, vdim, lo, pos, s, ld, inv); break;
            case 2: att_values_mha2(o + h, v, voff + h, vdim, lo, pos, s, ld, inv); break;
            default: att_values_mha1(o + h, v, voff + h, vdim, lo, pos, s, ld, inv); break;
        }
    }
}

/* ---------------------------------------------------------------- machine probes (benchmarks) */

/*
 * 12 independent FMA chains: enough to cover 2 FMA pipes x a latency of up to 6 cycles. Named
 * variables (not an array) so that every chain lives in a register.
 */
#define FMA_LOOP(NAME, ATTR, VT, SET1, FMADD, ADD, REDUCE)                                          \
    static ATTR double NAME(long iters) {                                                           \
        const VT m = SET1(0.999999f), c = SET1(1e-7f);                                              \
        VT a0 = SET1(0.f), a1 = SET1(1.f), a2 = SET1(2.f), a3 = SET1(3.f), a4 = SET1(4.f), a5 = SET1(5.f); \
        VT a6 = SET1(6.f), a7 = SET1(7.f), a8 = SET1(8.f), a9 = SET1(9.f), a10 = SET1(10.f), a11 = SET1(11.f); \
        for (long n = 0; n < iters; n++) {                                                          \
            a0 = FMADD(a0, m, c); a1 = FMADD(a1, m, c); a2 = FMADD(a2, m, c); a3 = FMADD(a3, m, c);    \
            a4 = FMADD(a4, m, c); a5 = FMADD(a5, m, c); a6 = FMADD(a6, m, c); a7 = FMADD(a7, m, c);    \
            a8 = FMADD(a8, m, c); a9 = FMADD(a9, m, c); a10 = FMADD(a10, m, c); a11 = FMADD(a11, m, c); \
        }                                                                                           \
        VT s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                   \
        return REDUCE(ADD(s, ADD(ADD(a8, a9), ADD(a10, a11))));                                     \
    }
FMA_LOOP(fma_loop_avx2, AVX2, __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, hsum1)
FMA_LOOP(fma_loop_avx512, __attribute__((target("avx512f"))), __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps,
         _mm512_reduce_add_ps)

static AVX2 double stream_sum_avx2(const float *p, size_t n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    double s = hsum1(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; i < n; i++) s += p[i];
    return s;
}

static double stream_sum_base(const float *p, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) { s0 += p[i]; s1 += p[i + 1]; s2 += p[i + 2]; s3 += p[i + 3]; }
    for (; i < n; i++) s0 += p[i];
    return (double) s0 + s1 + s2 + s3;
}

/* ---------------------------------------------------------------- JNI */

#define JNIFN(name) JNICALL Java_dev_dpserve_tensor_NativeKernels_##name

JNIEXPORT jint JNICALL JNI_OnLoad(JavaVM *vm, void *reserved) {
    (void) vm; (void) reserved;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        level = LEVEL_AVX2;
        has_avxvnni = __builtin_cpu_supports("avxvnni");
        if (has_avxvnni) level = LEVEL_AVX2_VNNI;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
                && __builtin_cpu_supports("avx512vnni")) {
            level = LEVEL_AVX512;
        }
    }
    return JNI_VERSION_1_8;
}

/*
 * The library is unloaded when the host bundle's class loader goes away (a refresh). Threads that
 * outlive it may still hold scratch buffers: delete the key so that their exit does not call a
 * destructor in unmapped code (their buffers leak instead).
 */
JNIEXPORT void JNICALL JNI_OnUnload(JavaVM *vm, void *reserved) {
    (void) vm; (void) reserved;
    scratch_release();
}

JNIEXPORT jint JNIFN(level)(JNIEnv *env, jclass cls) {
    (void) env; (void) cls;
    return level;
}

JNIEXPORT void JNIFN(forceLevel)(JNIEnv *env, jclass cls, jint l) {
    (void) env; (void) cls;
    level = l;
}

JNIEXPORT void JNIFN(matmul)(JNIEnv *env, jclass cls, jint dtype, jfloatArray xa, jint xOff, jint k, jlong wAddr,
                             jint m, jint j0, jint j1, jint i0, jint i1, jfloatArray oa, jint outOff) {
    (void) cls;
    float *x = (*env)->GetPrimitiveArrayCritical(env, xa, NULL);
    float *o = (*env)->GetPrimitiveArrayCritical(env, oa, NULL);
    if (x && o) {
        const void *w = (const void *) (intptr_t) wAddr;
        if (level >= LEVEL_AVX2) matmul_avx2(dtype, x + xOff, k, w, m, j0, j1, i0, i1, o + outOff);
        else matmul_base(dtype, x + xOff, k, w, m, j0, j1, i0, i1, o + outOff);
    }
    if (o) (*env)->ReleasePrimitiveArrayCritical(env, oa, o, 0);
    if (x) (*env)->ReleasePrimitiveArrayCritical(env, xa, x, JNI_ABORT);
}

JNIEXPORT void JNIFN(matmulInt8)(JNIEnv *env, jclass cls, jbyteArray qa, jint qOff, jint k, jlong wAddr, jint m,
                                 jint j0, jint j1, jint i0, jint i1, jfloatArray rsa, jintArray ba, jfloatArray csa,
                                 jfloatArray oa, jint outOff) {
    (void) cls;
    int8_t *q = (*env)->GetPrimitiveArrayCritical(env, qa, NULL);
    float *rs = rsa ? (*env)->GetPrimitiveArrayCritical(env, rsa, NULL) : NULL;
    int32_t *b = ba ? (*env)->GetPrimitiveArrayCritical(env, ba, NULL) : NULL;
    float *cs = (*env)->GetPrimitiveArrayCritical(env, csa, NULL);
    float *o = (*env)->GetPrimitiveArrayCritical(env, oa, NULL);
    if (q && cs && o && (!rsa || rs) && (!ba || b)) {
        const int8_t *w = (const int8_t *) (intptr_t) wAddr;
        if (level >= LEVEL_AVX512 && i1 - i0 <= 3) matmul_i8_avx512_small(q + qOff, k, w, m, j0, j1, i0, i1, rs, b, cs, o + outOff);
        else if (level >= LEVEL_AVX512 && i1 - i0 >= PK_MIN_TOKENS
                 && matmul_i8_avx512_packed(q + qOff, k, w, m, j0, j1, i0, i1, rs, b, cs, o + outOff)) {
        }
        else if (level >= LEVEL_AVX512 && i1 - i0 <= 8 && k >= 64
                 && matmul_i8_avx512_rows(q + qOff, k, w, m, j0, j1, i0, i1, rs, b, cs, o + outOff)) {
        }
        else if (level >= LEVEL_AVX512) matmul_i8_avx512(q + qOff, k, w, m, j0, j1, i0, i1, rs, b, cs, o + outOff);
        else if (level >= LEVEL_AVX2_VNNI && has_avxvnni) matmul_i8_vnni(q + qOff, k, w, m, j0, j1, i0, i1, rs, b, cs, o + outOff);
        else if (level >= LEVEL_AVX2) matmul_i8_avx2(q + qOff, k, w, m, j0, j1, i0, i1, rs, b, cs, o + outOff);
        else matmul_i8_base(q + qOff, k, w, m, j0, j1, i0, i1, rs, b, cs, o + outOff);
    }
    if (o) (*env)->ReleasePrimitiveArrayCritical(env, oa, o, 0);
    if (cs) (*env)->ReleasePrimitiveArrayCritical(env, csa, cs, JNI_ABORT);
    if (b) (*env)->ReleasePrimitiveArrayCritical(env, ba, b, JNI_ABORT);
    if (rs) (*env)->ReleasePrimitiveArrayCritical(env, rsa, rs, JNI_ABORT);
    if (q) (*env)->ReleasePrimitiveArrayCritical(env, qa, q, JNI_ABORT);
}

JNIEXPORT void JNIFN(quantizeRows)(JNIEnv *env, jclass cls, jfloatArray xa, jint xOff, jint rows, jint k,
                                   jbyteArray qa, jint qOff, jfloatArray sa, jint sOff) {
    (void) cls;
    float *x = (*env)->GetPrimitiveArrayCritical(env, xa, NULL);
    int8_t *q = (*env)->GetPrimitiveArrayCritical(env, qa, NULL);
    float *s = (*env)->GetPrimitiveArrayCritical(env, sa, NULL);
    if (x && q && s) {
        if (level >= LEVEL_AVX2) quantize_rows_avx2(x + xOff, rows, k, q + qOff, s + sOff);
        else quantize_rows(x + xOff, rows, k, q + qOff, s + sOff);
    }
    if (s) (*env)->ReleasePrimitiveArrayCritical(env, sa, s, 0);
    if (q) (*env)->ReleasePrimitiveArrayCritical(env, qa, q, 0);
    if (x) (*env)->ReleasePrimitiveArrayCritical(env, xa, x, JNI_ABORT);
}

JNIEXPORT void JNIFN(rmsNorm)(JNIEnv *env, jclass cls, jfloatArray xa, jint xOff, jint xStride, jint rows,
                              jfloatArray wa, jfloat eps, jfloatArray oa, jint outOff, jint outStride) {
    (void) cls;
    /* no JNI calls between Get- and ReleasePrimitiveArrayCritical: ask everything first */
    int same = (*env)->IsSameObject(env, xa, oa);
    jsize n = (*env)->GetArrayLength(env, wa);
    float *x = (*env)->GetPrimitiveArrayCritical(env, xa, NULL);
    float *w = (*env)->GetPrimitiveArrayCritical(env, wa, NULL);
    float *o = same ? x : (*env)->GetPrimitiveArrayCritical(env, oa, NULL);
    if (x && w && o) rms_norm(x + xOff, xStride, rows, w, n, eps, o + outOff, outStride);
    if (o && !same) (*env)->ReleasePrimitiveArrayCritical(env, oa, o, 0);
    if (w) (*env)->ReleasePrimitiveArrayCritical(env, wa, w, JNI_ABORT);
    if (x) (*env)->ReleasePrimitiveArrayCritical(env, xa, x, 0);
}

JNIEXPORT void JNIFN(rope)(JNIEnv *env, jclass cls, jfloatArray xa, jint off, jint rows, jint rowStride, jint heads,
                           jint headStride, jint rotaryDim, jfloatArray ca, jfloatArray sa, jboolean interleaved) {
    (void) cls;
    float *x = (*env)->GetPrimitiveArrayCritical(env, xa, NULL);
    float *c = (*env)->GetPrimitiveArrayCritical(env, ca, NULL);
    float *s = (*env)->GetPrimitiveArrayCritical(env, sa, NULL);
    if (x && c && s) rope(x + off, rows, rowStride, heads, headStride, rotaryDim, c, s, interleaved);
    if (s) (*env)->ReleasePrimitiveArrayCritical(env, sa, s, JNI_ABORT);
    if (c) (*env)->ReleasePrimitiveArrayCritical(env, ca, c, JNI_ABORT);
    if (x) (*env)->ReleasePrimitiveArrayCritical(env, xa, x, 0);
}

JNIEXPORT void JNIFN(softmax)(JNIEnv *env, jclass cls, jfloatArray xa, jint off, jint rows, jint len, jint stride) {
    (void) cls;
    float *x = (*env)->GetPrimitiveArrayCritical(env, xa, NULL);
    if (x) {
        softmax_rows(x + off, rows, len, stride);
        (*env)->ReleasePrimitiveArrayCritical(env, xa, x, 0);
    }
}

JNIEXPORT void JNIFN(siluMul)(JNIEnv *env, jclass cls, jfloatArray ga, jint gOff, jfloatArray ua, jint uOff, jint n) {
    (void) cls;
    int same = (*env)->IsSameObject(env, ga, ua);
    float *g = (*env)->GetPrimitiveArrayCritical(env, ga, NULL);
    float *u = same ? g : (*env)->GetPrimitiveArrayCritical(env, ua, NULL);
    if (g && u) {
        if (level >= LEVEL_AVX2) silu_mul_avx2(g + gOff, u + uOff, n);
        else silu_mul(g + gOff, u + uOff, n);
    }
    if (u && !same) (*env)->ReleasePrimitiveArrayCritical(env, ua, u, JNI_ABORT);
    if (g) (*env)->ReleasePrimitiveArrayCritical(env, ga, g, 0);
}

JNIEXPORT void JNIFN(topK)(JNIEnv *env, jclass cls, jfloatArray xa, jint off, jint len, jint k, jintArray ia,
                           jfloatArray va) {
    (void) cls;
    float *x = (*env)->GetPrimitiveArrayCritical(env, xa, NULL);
    int32_t *idx = (*env)->GetPrimitiveArrayCritical(env, ia, NULL);
    float *val = (*env)->GetPrimitiveArrayCritical(env, va, NULL);
    if (x && idx && val && k > 0) top_k(x + off, len, k, idx, val);
    if (val) (*env)->ReleasePrimitiveArrayCritical(env, va, val, 0);
    if (idx) (*env)->ReleasePrimitiveArrayCritical(env, ia, idx, 0);
    if (x) (*env)->ReleasePrimitiveArrayCritical(env, xa, x, JNI_ABORT);
}

/*
 * Attention for the (token, head) pairs [task0, task1) (task = t * numHeads + h) of one
 * PagedAttention. Pins the cache blocks the range needs (with a window, not the ones before it).
 * Returns 0, or -1 if memory or a pin was not available (nothing written).
 */
JNIEXPORT jint JNIFN(attention)(JNIEnv *env, jclass cls, jfloatArray qa, jint qOff, jint qts, jint qhs, jint numHeads,
                                jint numKvHeads, jint kDim, jint vDim, jobjectArray blocks, jintArray tablea, jint bs,
                                jint layer, jint slot, jint koff, jint khs, jint voff, jint vhs, jint start,
                                jint window, jfloat scale, jfloatArray oa, jint outOff, jint ots, jint ohs, jint task0,
                                jint task1) {
    (void) cls;
    if (task1 <= task0) return 0;
    int maxPos = start + (task1 - 1) / numHeads;
    int minPos = window > 0 ? start + task0 / numHeads - window + 1 : 0;
    if (minPos < 0) minPos = 0;
    int nblk = maxPos / bs + 1, b0 = minPos / bs;
    int32_t *table = malloc((size_t) nblk * sizeof(int32_t));
    jobject *refs = calloc((size_t) nblk, sizeof(jobject));
    float **pin = calloc((size_t) nblk, sizeof(float *));
    float *sc = scratch(0, (((size_t) maxPos + 16) & ~(size_t) 15) * ATT_G);
    int status = -1;
    if (!table || !refs || !pin || !sc || (*env)->PushLocalFrame(env, nblk - b0 + 4) != 0) {
        free(table); free(refs); free(pin);
        if ((*env)->ExceptionCheck(env)) (*env)->ExceptionClear(env);
        return -1;
    }
    (*env)->GetIntArrayRegion(env, tablea, 0, nblk, table);
    int ok = 1;
    for (int i = b0; i < nblk && ok; i++) {
        refs[i] = (*env)->GetObjectArrayElement(env, blocks, table[i]);
        ok = refs[i] != NULL && !(*env)->ExceptionCheck(env);
    }
    /* no JNI calls other than critical ones from here to the releases */
    float *q = ok ? (*env)->GetPrimitiveArrayCritical(env, qa, NULL) : NULL;
    float *o = q ? (*env)->GetPrimitiveArrayCritical(env, oa, NULL) : NULL;
    int pinned = b0;
    if (o) {
        for (; pinned < nblk; pinned++) {
            pin[pinned] = (*env)->GetPrimitiveArrayCritical(env, (jarray) refs[pinned], NULL);
            if (!pin[pinned]) break;
        }
    }
    if (o && pinned == nblk) {
        kv_view v = { pin, bs, layer, slot };
        int group = numHeads / numKvHeads;
        size_t ld = ((size_t) maxPos + 16) & ~(size_t) 15;
        for (int task = task0; task < task1;) {
            int t = task / numHeads, h = task % numHeads, kv = h / group;
            int pos = start + t;
            int lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
            /* the run of heads of this token over the same KV head (with one KV head per query
               head: the run of heads of this token), at most ATT_G */
            int g = group == 1 ? numHeads - h : (kv + 1) * group - h;
            if (g > task1 - task) g = task1 - task;
            if (g > ATT_G) g = ATT_G;
            const float *qr[ATT_G];
            float *orow[ATT_G];
            for (int i = 0; i < g; i++) {
                qr[i] = q + qOff + (size_t) t * qts + (size_t) (h + i) * qhs;
                orow[i] = o + outOff + (size_t) t * ots + (size_t) (h + i) * ohs;
            }
            if (level >= LEVEL_AVX512 && group == 1) {
                int ko[ATT_G], vo[ATT_G];
                for (int i = 0; i < g; i++) {
                    ko[i] = koff + (h + i) * khs;
                    vo[i] = voff + (h + i) * vhs;
                }
                attend512_mha(qr, orow, g, &v, ko, vo, kDim, vDim, lo, pos, scale, sc, ld);
            } else if (level >= LEVEL_AVX512) {
                attend512_group(qr, orow, g, &v, koff + kv * khs, voff + kv * vhs, kDim, vDim, lo, pos, scale, sc, ld);
            } else {
                for (int i = 0; i < g; i++)
                    attend_base(qr[i], orow[i], &v, koff + (h + i) / group * khs, voff + (h + i) / group * vhs, kDim, vDim,
                                lo, pos, scale, sc);
            }
            task += g;
        }
        status = 0;
    }
    for (int i = pinned - 1; i >= b0; i--) (*env)->ReleasePrimitiveArrayCritical(env, (jarray) refs[i], pin[i], JNI_ABORT);
    if (o) (*env)->ReleasePrimitiveArrayCritical(env, oa, o, status == 0 ? 0 : JNI_ABORT);
    if (q) (*env)->ReleasePrimitiveArrayCritical(env, qa, q, JNI_ABORT);
    (*env)->PopLocalFrame(env, NULL);
    if ((*env)->ExceptionCheck(env)) (*env)->ExceptionClear(env);
    free(table); free(refs); free(pin);
    return status;
}

JNIEXPORT jdouble JNIFN(fmaLoop)(JNIEnv *env, jclass cls, jlong iters) {
    (void) env; (void) cls;
    return level >= LEVEL_AVX2 ? fma_loop_avx2(iters) : 0.0;
}

JNIEXPORT jdouble JNIFN(fmaLoop512)(JNIEnv *env, jclass cls, jlong iters) {
    (void) env; (void) cls;
    return __builtin_cpu_supports("avx512f") ? fma_loop_avx512(iters) : NAN;
}

JNIEXPORT jdouble JNIFN(streamSum)(JNIEnv *env, jclass cls, jlong addr, jlong bytes) {
    (void) env; (void) cls;
    const float *p = (const float *) (intptr_t) addr;
    size_t n = (size_t) bytes / 4;
    return level >= LEVEL_AVX2 ? stream_sum_avx2(p, n) : stream_sum_base(p, n);
}
