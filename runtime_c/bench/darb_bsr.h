/*
 * darb_bsr.h - the 4 x 4 block-sparse (BSR) baseline kernel of `darbgen bench mcu`.
 */
#ifndef DARB_BSR_H
#define DARB_BSR_H

#include <stdint.h>

#include "darb.h"

typedef struct {
    uint16_t block_rows;        /* rows / 4 */
    const uint16_t *row_ptr;    /* [block_rows + 1] first block of each block row */
    const uint16_t *col_idx;    /* [blocks] block column */
} darb_bsr4_pattern;

void darb_bsr4_fc_s8(const darb_bsr4_pattern *pattern, const int8_t *values, const darb_quant_s8 *quant,
                     const int8_t *in, int8_t *out);

#endif /* DARB_BSR_H */
