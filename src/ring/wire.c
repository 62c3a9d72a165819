/* Trajectory (de)serialisation: a fixed header then the token and log-prob arrays. */
#include <stdlib.h>
#include <string.h>

#include "mmupt/ring.h"

size_t ring_wire_size(int32_t n)
{
    return RING_WIRE_HEADER + (size_t)n * (sizeof(int32_t) + sizeof(float));
}

void ring_wire_encode(const struct ring_traj *t, unsigned char *buf)
{
    memcpy(buf + 0, &t->question, 8);
    memcpy(buf + 8, &t->group, 8);
    memcpy(buf + 16, &t->policy_version, 8);
    memcpy(buf + 24, &t->sample, 4);
    memcpy(buf + 28, &t->n, 4);
    size_t nb = (size_t)t->n * 4;
    if (nb) {
        memcpy(buf + RING_WIRE_HEADER, t->tokens, nb);
        memcpy(buf + RING_WIRE_HEADER + nb, t->logp, nb);
    }
}

int ring_wire_decode(const unsigned char *buf, size_t len, int max_tokens, struct ring_traj *out,
                     struct mmupt_err *err)
{
    if (len < RING_WIRE_HEADER)
        return mmupt_fail(err, "trajectory message of %zu bytes is shorter than its %d-byte header", len,
                          RING_WIRE_HEADER);
    struct ring_traj t = {0};
    memcpy(&t.question, buf + 0, 8);
    memcpy(&t.group, buf + 8, 8);
    memcpy(&t.policy_version, buf + 16, 8);
    memcpy(&t.sample, buf + 24, 4);
    memcpy(&t.n, buf + 28, 4);
    if (t.n < 0 || t.n > max_tokens)
        return mmupt_fail(err, "trajectory (question %lld): token count %d is outside [0, %d]",
                          (long long)t.question, (int)t.n, max_tokens);
    if (len != ring_wire_size(t.n))
        return mmupt_fail(err, "trajectory (question %lld): %zu bytes for %d tokens, expected %zu",
                          (long long)t.question, len, (int)t.n, ring_wire_size(t.n));
    size_t nb = (size_t)t.n * 4;
    /* Always allocate (at least one element) so a consumer can free whatever it popped. */
    t.tokens = mmupt_xmalloc(nb ? nb : 4);
    t.logp = mmupt_xmalloc(nb ? nb : 4);
    if (nb) {
        memcpy(t.tokens, buf + RING_WIRE_HEADER, nb);
        memcpy(t.logp, buf + RING_WIRE_HEADER + nb, nb);
    }
    *out = t;
    return 0;
}

void ring_traj_free(struct ring_traj *t)
{
    if (!t) return;
    free(t->tokens);
    free(t->logp);
    t->tokens = NULL;
    t->logp = NULL;
    t->n = 0;
}
