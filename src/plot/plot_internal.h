/* Shared by the plot module's files. */
#ifndef MMUPT_PLOT_INTERNAL_H
#define MMUPT_PLOT_INTERNAL_H

#include <stdint.h>

/* The 5 column bytes of an ASCII character's glyph (bit 0 = top row); '?' for anything else. */
const uint8_t *plot_glyph(char c);

#endif
