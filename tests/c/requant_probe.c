/* Applies darb_requantize (darb_requantize_fast) to (x, multiplier, shift)
 * int32 triples read from a file; writes one int32 result per triple. For
 * tests/test_codegen.py, which compares them with the NumPy reference's
 * textbook gemmlowp steps. */
#include <stdio.h>

#include "darb.h"

int main(int argc, char **argv)
{
    FILE *in;
    FILE *out;
    int32_t t[3];
    if (argc != 3) {
        return 2;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == 0 || out == 0) {
        return 2;
    }
    while (fread(t, sizeof t[0], 3, in) == 3) {
        const int32_t y = darb_requantize(t[0], t[1], t[2]);
        if (fwrite(&y, sizeof y, 1, out) != 1) {
            return 2;
        }
    }
    fclose(in);
    return fclose(out) != 0;
}
