/* shapes: what the module's files share. */
#ifndef MMUPT_SHAPES_INTERNAL_H
#define MMUPT_SHAPES_INTERNAL_H

#include <stdint.h>

#include "mmupt/shapes.h"

/* The independent random streams of one item. Separate streams keep parts apart: changing the
 * question mix or the SFT probabilities leaves every image as it was. ASK came last and has a key
 * of its own, so adding it changed no draw of the others (ask_share 0 writes the old bytes). */
enum shapes_stream { SHAPES_STREAM_LAYOUT, SHAPES_STREAM_KIND, SHAPES_STREAM_TARGET, SHAPES_STREAM_PIXELS, SHAPES_STREAM_ASK };

/* A SplitMix64 sequence started from the counter-based key (seed, split, index, stream)
 * (sample_rng_bits). The key gives independence between items; within an item the cheap
 * sequence serves the ~7,000 draws an image needs. */
struct shapes_rng {
    uint64_t state;
};

void shapes_rng_init(struct shapes_rng *r, const struct shapes_config *c, enum shapes_split split, uint64_t index,
                     enum shapes_stream stream);
uint64_t shapes_rng_next(struct shapes_rng *r);
double shapes_rng_uniform(struct shapes_rng *r); /* [0, 1) */
int shapes_rng_below(struct shapes_rng *r, int n); /* [0, n), n >= 1 */

#endif
