/* The next-token sampler: logit bias, temperature, top-k, top-p, then one draw (see sampler.h).
 *
 * All probabilities are handled as weights relative to the best token, w = exp((b - m) / T) with
 * m the largest biased logit, in double: no overflow, the best token weighs exactly 1, and the
 * renormalisation after truncation is just a different sum. */
#include <math.h>
#include <stdlib.h>

#include "mmupt/sampler.h"

/* A candidate token: its biased logit and id. Self-contained, so qsort needs no context. */
struct sample_cand {
    float v;
    int32_t id;
};

/* The workspace, carved out of the caller's scratch: the biased logits, a heap for top-k, and the
 * candidate list. */
struct sample_work {
    float *b;
    float *heap;
    struct sample_cand *cand;
};

static size_t sample_align8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t sample_scratch_size(int V)
{
    if (V < 1) return 0;
    size_t n = (size_t)V;
    return 2 * sample_align8(n * sizeof(float)) + n * sizeof(struct sample_cand);
}

static struct sample_work sample_carve(void *scratch, int V)
{
    size_t fl = sample_align8((size_t)V * sizeof(float));
    char *s = scratch;
    struct sample_work w = {(float *)s, (float *)(s + fl), (struct sample_cand *)(s + 2 * fl)};
    return w;
}

int sample_params_valid(const struct sample_params *p, int V)
{
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature)) return 0;
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f)) return 0;
    if (p->n_bias < 0 || (p->n_bias > 0 && (!p->bias_ids || !p->bias))) return 0;
    for (int i = 0; i < p->n_bias; i++)
        if (p->bias_ids[i] < 0 || p->bias_ids[i] >= V || isnan(p->bias[i])) return 0;
    return 1;
}

/* b = logits + bias. Returns the largest value, or NAN when a value is NaN or +inf (softmax is
 * undefined there) or every value is -inf (nothing can be drawn). */
static float sample_bias(const float *logits, int V, const struct sample_params *p, float *b)
{
    for (int i = 0; i < V; i++) b[i] = logits[i];
    for (int i = 0; i < p->n_bias; i++) b[p->bias_ids[i]] += p->bias[i];
    float m = -INFINITY;
    for (int i = 0; i < V; i++) {
        if (isnan(b[i]) || b[i] == INFINITY) return NAN;
        if (b[i] > m) m = b[i];
    }
    return m == -INFINITY ? NAN : m;
}

/* log sum_i exp((b_i - m) * inv_t): the normaliser of the full softmax at temperature 1/inv_t. */
static double sample_log_norm(const float *b, int V, float m, double inv_t)
{
    double s = 0.0;
    for (int i = 0; i < V; i++) s += (double)expf((float)(((double)b[i] - m) * inv_t));
    return log(s);
}

static int32_t sample_argmax(const float *b, int V)
{
    int32_t best = 0;
    for (int32_t i = 1; i < V; i++)
        if (b[i] > b[best]) best = i; /* strict: ties keep the lower id */
    return best;
}

/* The k-th largest value of b, by a min-heap of the k largest seen so far: O(V log k). -inf when
 * fewer than k values are finite (then every finite token passes). */
static float sample_kth_largest(const float *b, int V, int k, float *heap)
{
    int n = 0;
    for (int i = 0; i < V; i++) {
        float x = b[i];
        if (x == -INFINITY) continue;
        int j;
        if (n < k) { /* sift up */
            j = n++;
            while (j > 0 && heap[(j - 1) / 2] > x) {
                heap[j] = heap[(j - 1) / 2];
                j = (j - 1) / 2;
            }
        } else if (x > heap[0]) { /* replace the smallest of the k, sift down */
            j = 0;
            for (;;) {
                int c = 2 * j + 1;
                if (c >= k) break;
                if (c + 1 < k && heap[c + 1] < heap[c]) c++;
                if (heap[c] >= x) break;
                heap[j] = heap[c];
                j = c;
            }
        } else {
            continue;
        }
        heap[j] = x;
    }
    return n < k ? -INFINITY : heap[0];
}

/* Most probable first; equal logits (equal probabilities) by lower id. */
static int sample_cand_cmp(const void *pa, const void *pb)
{
    const struct sample_cand *a = pa, *b = pb;
    if (a->v != b->v) return a->v > b->v ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

/* expf, not exp: a float exponent is exact enough for weights summed in double, and the sampler
 * evaluates it for the whole vocabulary every token (the cost that dominates rollout with a large
 * vocabulary on the CPU). */
static double sample_weight(float v, float m, double inv_t) { return (double)expf((float)(((double)v - m) * inv_t)); }

/* Top-p over the n candidates: reorder them most probable first and return how many form the
 * nucleus. Only tokens within `gap` nats of the best are sorted: every other token weighs at most
 * e^-gap relative to the best, so together at most (n-1) e^-gap <= 1 - top_p of the mass, and the
 * nucleus lies inside the sorted prefix. The full sort remains as the fallback for rounding. */
static int sample_nucleus(struct sample_cand *c, int n, float m, double inv_t, double top_p)
{
    double total = 0.0;
    for (int i = 0; i < n; i++) total += sample_weight(c[i].v, m, inv_t);
    double target = top_p * total;

    double gap = log((double)(n > 1 ? n - 1 : 1) / (1.0 - top_p)) + 1.0;
    int n_near = 0;
    double near_mass = 0.0;
    for (int i = 0; i < n; i++) {
        double z = ((double)c[i].v - m) * inv_t;
        if (z >= -gap) {
            struct sample_cand t = c[n_near];
            c[n_near++] = c[i];
            c[i] = t;
            near_mass += exp(z);
        }
    }
    int n_sort = near_mass >= target ? n_near : n;
    qsort(c, (size_t)n_sort, sizeof(*c), sample_cand_cmp);

    double cum = 0.0;
    for (int i = 0; i < n_sort; i++) {
        cum += sample_weight(c[i].v, m, inv_t);
        if (cum >= target) return i + 1;
    }
    return n_sort; /* only reachable through rounding: keep everything sorted */
}

/* Draw from the candidates in proportion to their weights with u in [0, 1). The running sum is
 * added in the same order as the total, so it ends exactly at total, and u * total < total for
 * u < 1 under round-to-nearest: the fallback is a guard only. It takes the most probable candidate
 * rather than the last one, which could be a token of negligible weight (a banned <|image_pad|>). */
static int32_t sample_draw(const struct sample_cand *c, int n, float m, double inv_t, double u)
{
    double total = 0.0;
    int best = 0;
    for (int i = 0; i < n; i++) {
        total += sample_weight(c[i].v, m, inv_t);
        if (c[i].v > c[best].v || (c[i].v == c[best].v && c[i].id < c[best].id)) best = i;
    }
    double r = u * total, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += sample_weight(c[i].v, m, inv_t);
        if (cum > r) return c[i].id;
    }
    return c[best].id;
}

int32_t sample_token(const float *logits, int V, const struct sample_params *p, double u, void *scratch,
                     float *logp)
{
    if (V < 1 || !logits || !p || !scratch || !sample_params_valid(p, V)) return -1;
    if (!(u >= 0.0 && u < 1.0)) return -1;
    struct sample_work w = sample_carve(scratch, V);
    float m = sample_bias(logits, V, p, w.b);
    if (isnan(m)) return -1;

    if (p->temperature == 0.0f) {
        int32_t tok = sample_argmax(w.b, V);
        if (logp) *logp = (float)(((double)w.b[tok] - m) - sample_log_norm(w.b, V, m, 1.0));
        return tok;
    }
    double inv_t = 1.0 / (double)p->temperature;

    float thr = -INFINITY;
    if (p->top_k > 0 && p->top_k < V) thr = sample_kth_largest(w.b, V, p->top_k, w.heap);
    int n = 0;
    for (int32_t i = 0; i < V; i++)
        if (w.b[i] != -INFINITY && w.b[i] >= thr) w.cand[n++] = (struct sample_cand){w.b[i], i};

    if (p->top_p < 1.0f) n = sample_nucleus(w.cand, n, m, inv_t, (double)p->top_p);
    int32_t tok = sample_draw(w.cand, n, m, inv_t, u);
    if (logp) *logp = (float)(((double)w.b[tok] - m) * inv_t - sample_log_norm(w.b, V, m, inv_t));
    return tok;
}
