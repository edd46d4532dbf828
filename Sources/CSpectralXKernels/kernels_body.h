// The kernels' one definition, included by kernels.c once per instruction-set level with
// SX_LANES (floats per vector) and SX_SUFFIX set, inside a `#pragma clang attribute` region that
// gives every function the level's target. Written with clang vector extensions so one text serves
// 4, 8 and 16 lanes; a*b+c contracts to FMA where the target has it (-ffp-contract=on).

#define SX_CAT2(a, b) a##b
#define SX_CAT(a, b) SX_CAT2(a, b)
#define SX_FN(name) SX_CAT(name, SX_SUFFIX)
#define VF SX_CAT(vf, SX_SUFFIX)
#define VI SX_CAT(vi, SX_SUFFIX)
#define VD SX_CAT(vd, SX_SUFFIX)
#define HF SX_CAT(hf, SX_SUFFIX)

typedef float VF __attribute__((vector_size(SX_LANES * 4)));
typedef int32_t VI __attribute__((vector_size(SX_LANES * 4)));
/// Half as many floats as VF: converted to VD, SX_LANES / 2 doubles (the same bytes as a VF).
typedef float HF __attribute__((vector_size(SX_LANES * 2)));
typedef double VD __attribute__((vector_size(SX_LANES * 4)));

static inline VF SX_FN(load)(const float *p) { VF v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline void SX_FN(store)(float *p, VF v) { __builtin_memcpy(p, &v, sizeof v); }
static inline VF SX_FN(splat)(float x) { VF v = {0}; return v + x; }
static inline VF SX_FN(select)(VI mask, VF a, VF b) { return (VF)(((VI)a & mask) | ((VI)b & ~mask)); }
/// The first n < SX_LANES elements of p, the rest `fill`.
static inline VF SX_FN(load_partial)(const float *p, ptrdiff_t n, float fill) {
    VF v = SX_FN(splat)(fill);
    for (ptrdiff_t j = 0; j < n; j++) v[j] = p[j];
    return v;
}
/// Stores the first n <= SX_LANES elements of v (the whole vector when n == SX_LANES).
static inline void SX_FN(store_partial)(float *p, VF v, ptrdiff_t n) {
    if (n == SX_LANES) SX_FN(store)(p, v);
    else for (ptrdiff_t j = 0; j < n; j++) p[j] = v[j];
}
static inline float SX_FN(hsum)(VF v) {
    float s = 0;
    for (int j = 0; j < SX_LANES; j++) s += v[j];
    return s;
}
static inline float SX_FN(hmax)(VF v) {
    float m = v[0];
    for (int j = 1; j < SX_LANES; j++) m = v[j] > m ? v[j] : m;
    return m;
}

/// Cephes expf: range reduction by ln 2 in two parts, degree-6 polynomial, 2^n from the bits of the
/// rounded product (the 1.5*2^23 trick gives round-to-nearest-even n). Inputs are clamped to
/// [-87.3, 88.3] (so -inf gives ~1e-38, never a denormal or a garbage exponent); NaN passes through.
static inline VF SX_FN(vexp)(VF v) {
    const VF hi = SX_FN(splat)(88.3f), lo = SX_FN(splat)(-87.3f);
    VF x = SX_FN(select)((VI)(v > hi), hi, v);
    x = SX_FN(select)((VI)(x < lo), lo, x);
    const VF magic = SX_FN(splat)(12582912.0f);
    VF t = x * 1.44269504088896341f + magic;
    VF n = t - magic;
    VF r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    VF p = SX_FN(splat)(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    VI bits = ((VI)t - 0x4B400000 + 127) << 23;
    return p * (VF)bits;
}

/// GELU 0.5*x*(1 + erf(x/sqrt 2)) with PyTorch's erf: 1 - r(t)*t*exp(-x^2), t = 1/(1 + 0.3275911|x|).
static inline VF SX_FN(vgelu)(VF v) {
    VF x = v * 0.70710678118654752f;
    VI negative = (VI)(x < 0.0f);
    VF a = SX_FN(select)(negative, -x, x);
    VF t = 1.0f / (a * 0.3275911f + 1.0f);
    VF r = SX_FN(splat)(1.061405429f);
    r = r * t + -1.453152027f;
    r = r * t + 1.421413741f;
    r = r * t + -0.284496736f;
    r = r * t + 0.254829592f;
    VF e = 1.0f - r * t * SX_FN(vexp)(-(x * x));
    e = SX_FN(select)(negative, -e, e);
    return v * 0.5f * (1.0f + e);
}

/// Reductions run on 16 virtual lanes at every level (16 / SX_LANES vectors side by side), summed lane
/// 0 to 15 at the end, so a sum has one order whatever the vector width: the AVX2 and AVX-512 kernels
/// give the same bits.
enum { SX_FN(vectors16) = 16 / SX_LANES };

static float SX_FN(exp_shifted)(float *x, ptrdiff_t n, float shift) {
    enum { R = SX_FN(vectors16) };
    VF acc[R];
    for (int r = 0; r < R; r++) acc[r] = SX_FN(splat)(0.0f);
    ptrdiff_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int r = 0; r < R; r++) {
            VF e = SX_FN(vexp)(SX_FN(load)(x + i + r * SX_LANES) - shift);
            SX_FN(store)(x + i + r * SX_LANES, e);
            acc[r] += e;
        }
    }
    float sum = 0;
    for (int r = 0; r < R; r++)
        for (int j = 0; j < SX_LANES; j++) sum += acc[r][j];
    for (; i < n; i += SX_LANES) {
        const ptrdiff_t cnt = n - i < SX_LANES ? n - i : SX_LANES;
        VF e = SX_FN(vexp)(SX_FN(load_partial)(x + i, cnt, 0.0f) - shift);
        for (ptrdiff_t j = 0; j < cnt; j++) { x[i + j] = e[j]; sum += e[j]; }
    }
    return sum;
}

static void SX_FN(softmax_rows)(float *x, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t stride) {
    if (cols <= 0) return;
    for (ptrdiff_t r = 0; r < rows; r++) {
        float *row = x + r * stride;
        VF mv = SX_FN(splat)(-__builtin_inff());
        ptrdiff_t i = 0;
        for (; i + SX_LANES <= cols; i += SX_LANES) {
            VF v = SX_FN(load)(row + i);
            mv = SX_FN(select)((VI)(v > mv), v, mv);
        }
        float m = SX_FN(hmax)(mv);
        for (; i < cols; i++) m = row[i] > m ? row[i] : m;
        const float inv = 1.0f / SX_FN(exp_shifted)(row, cols, m);
        i = 0;
        for (; i + SX_LANES <= cols; i += SX_LANES) SX_FN(store)(row + i, SX_FN(load)(row + i) * inv);
        for (; i < cols; i++) row[i] *= inv;
    }
}

static void SX_FN(gelu)(float *x, ptrdiff_t n) {
    ptrdiff_t i = 0;
    for (; i + SX_LANES <= n; i += SX_LANES) SX_FN(store)(x + i, SX_FN(vgelu)(SX_FN(load)(x + i)));
    if (i < n) {
        VF g = SX_FN(vgelu)(SX_FN(load_partial)(x + i, n - i, 0.0f));
        for (ptrdiff_t j = 0; j < n - i; j++) x[i + j] = g[j];
    }
}

static void SX_FN(layernorm_rows)(const float *x, ptrdiff_t rows, ptrdiff_t dim, ptrdiff_t xs,
                                  const float *gamma, const float *beta, float eps, float *y, ptrdiff_t ys) {
    // Moments in float64 on 16 virtual lanes (R vectors of H doubles), summed lane 0 to 15: one order
    // at every vector width.
    enum { H = SX_LANES / 2, R = 16 / H };
    for (ptrdiff_t r = 0; r < rows; r++) {
        const float *row = x + r * xs;
        float *out = y + r * ys;
        VD s[R];
        for (int v = 0; v < R; v++) s[v] = (VD){0};
        ptrdiff_t i = 0;
        for (; i + 16 <= dim; i += 16) {
            for (int v = 0; v < R; v++) {
                HF a;
                __builtin_memcpy(&a, row + i + v * H, sizeof a);
                s[v] += __builtin_convertvector(a, VD);
            }
        }
        double sum = 0;
        for (int v = 0; v < R; v++)
            for (int j = 0; j < H; j++) sum += s[v][j];
        for (; i < dim; i++) sum += (double)row[i];
        const double mean = sum / (double)dim;
        VD q[R];
        for (int v = 0; v < R; v++) q[v] = (VD){0};
        i = 0;
        for (; i + 16 <= dim; i += 16) {
            for (int v = 0; v < R; v++) {
                HF a;
                __builtin_memcpy(&a, row + i + v * H, sizeof a);
                VD d = __builtin_convertvector(a, VD) - mean;
                q[v] += d * d;
            }
        }
        double sq = 0;
        for (int v = 0; v < R; v++)
            for (int j = 0; j < H; j++) sq += q[v][j];
        for (; i < dim; i++) { double d = (double)row[i] - mean; sq += d * d; }
        const float inv = (float)(1.0 / __builtin_sqrt(sq / (double)dim + (double)eps));
        const float m = (float)mean;
        i = 0;
        for (; i + SX_LANES <= dim; i += SX_LANES) {
            VF v = (SX_FN(load)(row + i) - m) * inv;
            SX_FN(store)(out + i, v * SX_FN(load)(gamma + i) + SX_FN(load)(beta + i));
        }
        for (; i < dim; i++) out[i] = (row[i] - m) * inv * gamma[i] + beta[i];
    }
}


/// The column phases of the zero-padded rows -1 ..< rows - 1 of an h x w plane, for the Winograd input
/// transforms: row yy's phase q (q < m, the tile stride) is p[(m * yy + q) * rowLen + j] = x[yy - 1][m * j - 1 + q],
/// zero outside the plane, so a patch column of SX_LANES consecutive tiles is one contiguous load.
static void SX_FN(winograd_phases)(const float *plane, ptrdiff_t h, ptrdiff_t w, int m, ptrdiff_t rows,
                                   ptrdiff_t rowLen, float *p) {
    for (ptrdiff_t yy = 0; yy < rows; yy++) {
        float *dst = p + m * yy * rowLen;
        const ptrdiff_t y = yy - 1;
        if (y < 0 || y >= h) {
            for (ptrdiff_t j = 0; j < m * rowLen; j++) dst[j] = 0;
            continue;
        }
        const float *row = plane + y * w;
        for (int q = 0; q < m; q++) {
            for (ptrdiff_t j = 0; j < rowLen; j++) {
                const ptrdiff_t x = m * j - 1 + q;
                dst[q * rowLen + j] = (x >= 0 && x < w) ? row[x] : 0.0f;
            }
        }
    }
}

/// Winograd F(2x2,3x3) input transform V = B^T d B of every 4x4 patch (rows 2ti-1..2ti+2, columns
/// 2tj-1..2tj+2, zero outside the image) for channels c0..<c1, vectorised over the tiles of a tile row:
/// each channel is first split into its odd and even columns (e[j] = x[2j-1], o[j] = x[2j]), so a
/// patch column s of SX_LANES consecutive tiles is one contiguous load (e, o, e+1, o+1 for s = 0..3).
/// V[(4r+s)][c][tile]; `scratch` holds winograd_scratch_count(h, w) floats. Only additions: the result
/// does not depend on the vector width.
static void SX_FN(winograd_input)(const float *image, ptrdiff_t cin, ptrdiff_t h, ptrdiff_t w,
                                  ptrdiff_t c0, ptrdiff_t c1, float *v, float *scratch) {
    const ptrdiff_t th = (h + 1) / 2, tw = (w + 1) / 2, tiles = th * tw;
    const ptrdiff_t rowLen = tw + 1 + SX_LANES, rows = 2 * th + 2;
    for (ptrdiff_t c = c0; c < c1; c++) {
        SX_FN(winograd_phases)(image + c * h * w, h, w, 2, rows, rowLen, scratch);  // e = phase 0, o = phase 1
        for (ptrdiff_t ti = 0; ti < th; ti++) {
            for (ptrdiff_t tj = 0; tj < tw; tj += SX_LANES) {
                VF t[4][4];
                VF d[4][4];
                for (int r = 0; r < 4; r++) {
                    const float *e = scratch + (2 * (2 * ti + r)) * rowLen + tj, *o = e + rowLen;
                    d[r][0] = SX_FN(load)(e);
                    d[r][1] = SX_FN(load)(o);
                    d[r][2] = SX_FN(load)(e + 1);
                    d[r][3] = SX_FN(load)(o + 1);
                }
                for (int s = 0; s < 4; s++) {
                    t[0][s] = d[0][s] - d[2][s];
                    t[1][s] = d[1][s] + d[2][s];
                    t[2][s] = d[2][s] - d[1][s];
                    t[3][s] = d[1][s] - d[3][s];
                }
                // Stored whole where the extra lanes land in this plane's later tile rows (as F(4x4)).
                const ptrdiff_t n = ti * tw + tj + SX_LANES <= tiles ? SX_LANES : tw - tj;
                for (int r = 0; r < 4; r++) {
                    const VF a = t[r][0], b = t[r][1], cc = t[r][2], ee = t[r][3];
                    const VF outv[4] = {a - cc, b + cc, cc - b, b - ee};
                    for (int s = 0; s < 4; s++) {
                        SX_FN(store_partial)(v + ((ptrdiff_t)(r * 4 + s) * cin + c) * tiles + ti * tw + tj, outv[s], n);
                    }
                }
            }
        }
    }
}

/// Winograd F(2x2,3x3) output transform Y = A^T M A for output channels o0..<o1, M[(4xi+nu)][o][tile],
/// cropped at the bottom/right edge for odd sizes; vectorised over the tiles of a tile row.
static void SX_FN(winograd_output)(const float *m, ptrdiff_t cout, ptrdiff_t h, ptrdiff_t w,
                                   ptrdiff_t o0, ptrdiff_t o1, float *out) {
    const ptrdiff_t th = (h + 1) / 2, tw = (w + 1) / 2, tiles = th * tw;
    for (ptrdiff_t o = o0; o < o1; o++) {
        for (ptrdiff_t ti = 0; ti < th; ti++) {
            for (ptrdiff_t tj = 0; tj < tw; tj += SX_LANES) {
                const ptrdiff_t n = tw - tj < SX_LANES ? tw - tj : SX_LANES;
                const int whole = ti * tw + tj + SX_LANES <= tiles;  // the vector stays inside this plane
                VF mk[16];
                for (int k = 0; k < 16; k++) {
                    const float *src = m + ((ptrdiff_t)k * cout + o) * tiles + ti * tw + tj;
                    mk[k] = whole ? SX_FN(load)(src) : SX_FN(load_partial)(src, n, 0.0f);
                }
                VF q0[4], q1[4];
                for (int s = 0; s < 4; s++) {
                    q0[s] = mk[s] + mk[4 + s] + mk[8 + s];
                    q1[s] = mk[4 + s] - mk[8 + s] - mk[12 + s];
                }
                const VF y[2][2] = {
                    {q0[0] + q0[1] + q0[2], q0[1] - q0[2] - q0[3]},
                    {q1[0] + q1[1] + q1[2], q1[1] - q1[2] - q1[3]},
                };
                for (int r = 0; r < 2; r++) {
                    const ptrdiff_t yrow = 2 * ti + r;
                    if (yrow >= h) continue;
                    float e0[SX_LANES], e1[SX_LANES];  // interleaved through memory, as F(4x4)
                    SX_FN(store)(e0, y[r][0]);
                    SX_FN(store)(e1, y[r][1]);
                    float *row = out + (o * h + yrow) * w;
                    for (ptrdiff_t j = 0; j < n; j++) {
                        const ptrdiff_t x = 2 * (tj + j);
                        row[x] = e0[j];
                        if (x + 1 < w) row[x + 1] = e1[j];
                    }
                }
            }
        }
    }
}

/// Winograd F(4x4,3x3) input transform V = B^T d B of every 6x6 patch (rows 4ti-1..4ti+4, columns
/// 4tj-1..4tj+4, zero outside the image) for channels c0..<c1, into V[(6r+s)][c][tile]. Vectorised over
/// the tiles of a tile row as F(2x2,3x3) is: each image row is split into its four column phases
/// (p_q[j] = x[4j-1+q]), so a patch column s of SX_LANES consecutive tiles is one contiguous load (p_0,
/// p_1, p_2, p_3, p_0 + 1, p_1 + 1). B^T has entries 4 and 5: contraction into FMA is off here, so every
/// level rounds the same operations and gives the same bits. `scratch` holds
/// sx_winograd4_scratch_count(h, w) floats.
static void SX_FN(winograd4_input)(const float *image, ptrdiff_t cin, ptrdiff_t h, ptrdiff_t w,
                                   ptrdiff_t c0, ptrdiff_t c1, float *v, float *scratch) {
#pragma clang fp contract(off)
    const ptrdiff_t th = (h + 3) / 4, tw = (w + 3) / 4, tiles = th * tw;
    const ptrdiff_t rowLen = tw + 1 + SX_LANES, rows = 4 * th + 2;
    for (ptrdiff_t c = c0; c < c1; c++) {
        SX_FN(winograd_phases)(image + c * h * w, h, w, 4, rows, rowLen, scratch);
        for (ptrdiff_t ti = 0; ti < th; ti++) {
            for (ptrdiff_t tj = 0; tj < tw; tj += SX_LANES) {
                VF d[6][6], t[6][6];
                for (int r = 0; r < 6; r++) {
                    const float *p = scratch + 4 * (4 * ti + r) * rowLen + tj;
                    d[r][0] = SX_FN(load)(p);
                    d[r][1] = SX_FN(load)(p + rowLen);
                    d[r][2] = SX_FN(load)(p + 2 * rowLen);
                    d[r][3] = SX_FN(load)(p + 3 * rowLen);
                    d[r][4] = SX_FN(load)(p + 1);
                    d[r][5] = SX_FN(load)(p + rowLen + 1);
                }
                // B^T along the patch rows, then along the columns (z = B^T x, x the six values).
                for (int s = 0; s < 6; s++) {
                    const VF x0 = d[0][s], x1 = d[1][s], x2 = d[2][s], x3 = d[3][s], x4 = d[4][s], x5 = d[5][s];
                    t[0][s] = x0 * 4.0f - x2 * 5.0f + x4;
                    t[1][s] = (x3 + x4) - (x1 + x2) * 4.0f;
                    t[2][s] = (x4 - x3) + (x1 - x2) * 4.0f;
                    t[3][s] = (x4 - x2) + (x3 - x1) * 2.0f;
                    t[4][s] = (x4 - x2) - (x3 - x1) * 2.0f;
                    t[5][s] = x1 * 4.0f - x3 * 5.0f + x5;
                }
                // A cut vector is stored whole when its extra lanes land in this plane's later tile rows
                // (written again by this thread): only the plane's last row of tiles is stored lane by lane.
                const ptrdiff_t n = ti * tw + tj + SX_LANES <= tiles ? SX_LANES : tw - tj;
                for (int r = 0; r < 6; r++) {
                    const VF x0 = t[r][0], x1 = t[r][1], x2 = t[r][2], x3 = t[r][3], x4 = t[r][4], x5 = t[r][5];
                    const VF outv[6] = {
                        x0 * 4.0f - x2 * 5.0f + x4,
                        (x3 + x4) - (x1 + x2) * 4.0f,
                        (x4 - x3) + (x1 - x2) * 4.0f,
                        (x4 - x2) + (x3 - x1) * 2.0f,
                        (x4 - x2) - (x3 - x1) * 2.0f,
                        x1 * 4.0f - x3 * 5.0f + x5,
                    };
                    for (int s = 0; s < 6; s++) {
                        SX_FN(store_partial)(v + ((ptrdiff_t)(r * 6 + s) * cin + c) * tiles + ti * tw + tj, outv[s], n);
                    }
                }
            }
        }
    }
}

/// Winograd F(4x4,3x3) output transform Y = A^T M A for output channels o0..<o1, M[(6xi+nu)][o][tile],
/// cropped at the bottom/right edge where h or w is not a multiple of 4; vectorised over the tiles of a
/// tile row, FMA contraction off (same bits at every level).
static void SX_FN(winograd4_output)(const float *m, ptrdiff_t cout, ptrdiff_t h, ptrdiff_t w,
                                    ptrdiff_t o0, ptrdiff_t o1, float *out) {
#pragma clang fp contract(off)
    const ptrdiff_t th = (h + 3) / 4, tw = (w + 3) / 4, tiles = th * tw;
    for (ptrdiff_t o = o0; o < o1; o++) {
        for (ptrdiff_t ti = 0; ti < th; ti++) {
            for (ptrdiff_t tj = 0; tj < tw; tj += SX_LANES) {
                const ptrdiff_t n = tw - tj < SX_LANES ? tw - tj : SX_LANES;
                // Whole loads where the vector stays inside this plane (the extra lanes are never used).
                const int whole = ti * tw + tj + SX_LANES <= tiles;
                VF q[4][6];
                // A^T along the rows xi of M, for each column nu.
                for (int s = 0; s < 6; s++) {
                    VF mk[6];
                    for (int xi = 0; xi < 6; xi++) {
                        const float *src = m + ((ptrdiff_t)(xi * 6 + s) * cout + o) * tiles + ti * tw + tj;
                        mk[xi] = whole ? SX_FN(load)(src) : SX_FN(load_partial)(src, n, 0.0f);
                    }
                    const VF a = mk[1] + mk[2], b = mk[1] - mk[2], cc = mk[3] + mk[4], dd = mk[3] - mk[4];
                    q[0][s] = mk[0] + a + cc;
                    q[1][s] = b + dd * 2.0f;
                    q[2][s] = a + cc * 4.0f;
                    q[3][s] = b + dd * 8.0f + mk[5];
                }
                for (int r = 0; r < 4; r++) {
                    const ptrdiff_t yrow = 4 * ti + r;
                    if (yrow >= h) continue;
                    const VF *x = q[r];
                    const VF a = x[1] + x[2], b = x[1] - x[2], cc = x[3] + x[4], dd = x[3] - x[4];
                    // Interleaved into pixels through memory (reading lanes out of registers one at a time
                    // is slower): tile j's four outputs are pixels 4(tj + j) … 4(tj + j) + 3 of the row.
                    float y[4][SX_LANES];
                    SX_FN(store)(y[0], x[0] + a + cc);
                    SX_FN(store)(y[1], b + dd * 2.0f);
                    SX_FN(store)(y[2], a + cc * 4.0f);
                    SX_FN(store)(y[3], b + dd * 8.0f + x[5]);
                    float *row = out + (o * h + yrow) * w + 4 * tj;
                    const ptrdiff_t full = 4 * (tj + n) <= w ? n : n - 1;  // the last tile may be cut by w
                    for (ptrdiff_t j = 0; j < full; j++) {
                        row[4 * j] = y[0][j]; row[4 * j + 1] = y[1][j]; row[4 * j + 2] = y[2][j]; row[4 * j + 3] = y[3][j];
                    }
                    for (ptrdiff_t j = full; j < n; j++) {
                        for (int e = 0; e < 4 && 4 * (tj + j) + e < w; e++) row[4 * j + e] = y[e][j];
                    }
                }
            }
        }
    }
}

static const sx_kernels SX_FN(table) = {
    .level = SX_LEVEL,
    .name = SX_NAME,
    .exp_shifted = SX_FN(exp_shifted),
    .softmax_rows = SX_FN(softmax_rows),
    .gelu = SX_FN(gelu),
    .layernorm_rows = SX_FN(layernorm_rows),
    .winograd_input = SX_FN(winograd_input),
    .winograd_output = SX_FN(winograd_output),
    .winograd4_input = SX_FN(winograd4_input),
    .winograd4_output = SX_FN(winograd4_output),
};

#undef VF
#undef VI
#undef VD
#undef HF
#undef SX_FN
