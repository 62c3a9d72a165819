// Top-p for sample.cu's per-row kernel (kernel 4): the nucleus cut and the draw within it, one
// block per row - the candidates gathered and bitonic-sorted in shared memory, or, for a flat
// distribution with more candidates than SAMPLE_SORT_CAP, binary searches over the float's uint32
// image. Included by sample.cu after the definitions it uses (the row view, sets, weights, the
// piece sums and the descent); not a header of its own.
#ifndef MMUPT_KERNELS_CUDA_SAMPLE_NUCLEUS_CUH
#define MMUPT_KERNELS_CUDA_SAMPLE_NUCLEUS_CUH

// The n-th member (n >= 1, in id order) of a counted set, or -1.
static __device__ int sample_nth(const struct sample_row *r, struct sample_set s, int n, double *sums)
{
    s.count = 1;
    return sample_search(r, &s, 0, r->V, (double)n - 0.5, 0.0, sums, 0);
}

// Largest key t in [lo, hi) for which the mass of s restricted to keys >= t passes the test
// (>= x when ge, else > x), given that it passes at lo: a binary search, one pass per step.
static __device__ uint32_t sample_key_search(const struct sample_row *r, struct sample_set s, uint32_t lo, uint32_t hi,
                                             double x, int ge, double *sums)
{
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        s.kmin = mid;
        double mass = sample_set_mass(r, &s, sums);
        if (ge ? mass >= x : mass > x) lo = mid;
        else hi = mid;
    }
    return lo;
}

// Members of s with key exactly k, counted.
static __device__ int sample_count_at(const struct sample_row *r, struct sample_set s, uint32_t k, double *sums)
{
    s.kmin = s.kmax = k;
    s.count = 1;
    return (int)sample_set_mass(r, &s, sums);
}

// Top-p when the candidates do not fit the shared sort: exact, by binary searches on the key.
// The nucleus is every kept token above the cut value v* plus the first c of the ties at v* (in id
// order), with v* the largest value whose mass at or above reaches the target; the draw is found
// the same way inside the nucleus.
static __device__ int sample_nucleus_slow(const struct sample_row *r, float thr, double total, double top_p, double u,
                                          double *sums)
{
    struct sample_set s = sample_set_kept(thr);
    double target = top_p * total;
    uint32_t top = sample_key(r->m) + 1u; // no mass at or above
    uint32_t ks = sample_key_search(r, s, 0u, top, target, 1, sums);
    s.kmin = ks + 1u;
    double above = sample_set_mass(r, &s, sums);
    double wt = sample_weight(sample_unkey(ks), r->m, r->inv_t);
    int ties = sample_count_at(r, s, ks, sums), c = ties;
    if (wt > 0.0) {
        double need = ceil((target - above) / wt);
        c = need < 1.0 ? 1 : need > (double)ties ? ties : (int)need;
        while (c > 1 && above + (c - 1) * wt >= target) c--;
        while (c < ties && above + c * wt < target) c++;
    }
    struct sample_set nuc = s;
    nuc.kmin = ks;
    nuc.kcut = ks;
    nuc.id_cut = SAMPLE_NO_ID;
    if (c < ties) {
        struct sample_set tie = s;
        tie.kmin = tie.kmax = ks;
        nuc.id_cut = sample_nth(r, tie, c, sums);
    }

    double x = u * sample_set_mass(r, &nuc, sums);
    uint32_t ke = sample_key_search(r, nuc, ks, top, x, 0, sums);
    struct sample_set hi = nuc;
    hi.kmin = ke + 1u;
    double before = ke + 1u < top ? sample_set_mass(r, &hi, sums) : 0.0;
    double we = sample_weight(sample_unkey(ke), r->m, r->inv_t);
    int nte = sample_count_at(r, nuc, ke, sums), q = 0;
    if (we > 0.0) {
        double f = floor((x - before) / we);
        q = f < 0.0 ? 0 : f > (double)(nte - 1) ? nte - 1 : (int)f;
        while (q > 0 && before + q * we > x) q--;
        while (q < nte - 1 && before + (q + 1) * we <= x) q++;
    }
    struct sample_set tie = nuc;
    tie.kmin = tie.kmax = ke;
    return sample_nth(r, tie, q + 1, sums);
}

// Sort key of a candidate: value image above, inverted id below, so that descending key order is
// (value desc, id asc). Real candidates are > 0 (finite keys are), so 0 pads to the end.
static __device__ __forceinline__ uint64_t sample_cand_key(float v, int i)
{
    return ((uint64_t)sample_key(v) << 32) | (uint32_t)~(uint32_t)i;
}

// Bitonic sort of keys[0, n2), n2 a power of two, into descending order.
static __device__ void sample_bitonic_desc(uint64_t *keys, int n2)
{
    for (int k = 2; k <= n2; k <<= 1)
        for (int j = k >> 1; j > 0; j >>= 1) {
            for (int i = threadIdx.x; i < n2; i += blockDim.x) {
                int p = i ^ j;
                if (p <= i) continue;
                uint64_t a = keys[i], b = keys[p];
                if ((i & k) == 0 ? a < b : a > b) {
                    keys[i] = b;
                    keys[p] = a;
                }
            }
            __syncthreads();
        }
}

// Exclusive prefix of each thread's x over the block in thread order, in a fixed order: a
// Hillis-Steele scan within each warp, then the warps' totals added one by one.
static __device__ double sample_block_excl_scan(double x)
{
    __shared__ double s_tot[32];
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    double incl = x;
    for (int off = 1; off < 32; off *= 2) {
        double y = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += y;
    }
    double excl = __shfl_up_sync(0xffffffffu, incl, 1);
    if (lane == 0) excl = 0.0;
    if (lane == 31) s_tot[warp] = incl;
    __syncthreads();
    double base = 0.0;
    for (int w = 0; w < warp; w++) base += s_tot[w];
    __syncthreads();
    return base + excl;
}

static __device__ int sample_block_min_int(int v)
{
    __shared__ int s_v[32];
    for (int off = 16; off > 0; off /= 2) v = min(v, __shfl_xor_sync(0xffffffffu, v, off));
    if (threadIdx.x % 32 == 0) s_v[threadIdx.x / 32] = v;
    __syncthreads();
    for (int w = 0; w < (int)(blockDim.x / 32); w++) v = min(v, s_v[w]);
    __syncthreads();
    return v;
}

// Top-p: the nucleus (smallest prefix in (value desc, id asc) order whose mass reaches
// top_p * total) and the draw inside it. The candidates within `gap` nats of the best are the
// CPU's superset of the nucleus; when they fit SAMPLE_SORT_CAP they are sorted in shared memory,
// else (or if rounding puts the target beyond them) sample_nucleus_slow decides.
static __device__ int sample_nucleus(const struct sample_row *r, float thr, struct sample_mass ms, double top_p,
                                     double u, double *sums)
{
    __shared__ uint64_t keys[SAMPLE_SORT_CAP];
    __shared__ int s_n;
    __shared__ double s_total;
    double target = top_p * ms.kept;
    double gap = log((double)(ms.n_kept > 1 ? ms.n_kept - 1 : 1) / (1.0 - top_p)) + 1.0;
    if (threadIdx.x == 0) s_n = 0;
    __syncthreads();
    double near = 0.0;
    sample_each(r, threadIdx.x, blockDim.x, r->V, [&](float v, int i) {
        if (v == -INFINITY || !(v >= thr) || ((double)v - r->m) * r->inv_t < -gap) return;
        near += sample_weight(v, r->m, r->inv_t);
        int at = atomicAdd(&s_n, 1); // slots in any order: the sort below fixes the order
        if (at < SAMPLE_SORT_CAP) keys[at] = sample_cand_key(v, i);
    });
    near = reduce_block_sum_double(near, sums);
    int n = s_n;
    if (n > SAMPLE_SORT_CAP || !(near >= target)) return sample_nucleus_slow(r, thr, ms.kept, top_p, u, sums);

    int n2 = 1;
    while (n2 < n) n2 *= 2;
    for (int i = n + threadIdx.x; i < n2; i += blockDim.x) keys[i] = 0;
    __syncthreads();
    sample_bitonic_desc(keys, n2);

    // Thread t owns sorted positions [t*per, (t+1)*per): its running sum starts at its prefix.
    int per = (n + blockDim.x - 1) / blockDim.x, beg = min((int)threadIdx.x * per, n), end = min(beg + per, n);
    double local = 0.0;
    for (int j = beg; j < end; j++) local += sample_weight(sample_unkey((uint32_t)(keys[j] >> 32)), r->m, r->inv_t);
    double base = sample_block_excl_scan(local), acc = base;
    int cut = SAMPLE_NO_ID;
    for (int j = beg; j < end && cut == SAMPLE_NO_ID; j++) {
        acc += sample_weight(sample_unkey((uint32_t)(keys[j] >> 32)), r->m, r->inv_t);
        if (acc >= target) cut = j + 1;
    }
    cut = sample_block_min_int(cut);
    if (cut == SAMPLE_NO_ID) cut = n; // rounding only: keep every sorted candidate, as the CPU does
    acc = base;
    for (int j = beg; j < end; j++) {
        acc += sample_weight(sample_unkey((uint32_t)(keys[j] >> 32)), r->m, r->inv_t);
        if (j == cut - 1) s_total = acc; // one writer: the owner of the nucleus' last position
    }
    __syncthreads();
    double x = u * s_total;
    int pick = SAMPLE_NO_ID;
    acc = base;
    for (int j = beg; j < end && j < cut && pick == SAMPLE_NO_ID; j++) {
        acc += sample_weight(sample_unkey((uint32_t)(keys[j] >> 32)), r->m, r->inv_t);
        if (acc > x) pick = j;
    }
    pick = sample_block_min_int(pick);
    if (pick == SAMPLE_NO_ID) pick = 0; // the most probable candidate, as the CPU's guard
    return (int)~(uint32_t)keys[pick];
}

#endif
