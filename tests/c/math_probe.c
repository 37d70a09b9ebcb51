/* Evaluates darb_expf, darb_sigmoidf and darb_tanhf on float32 inputs read
 * from a file; writes the three results per input. For tests/test_codegen.py. */
#include <stdio.h>

#include "darb.h"

int main(int argc, char **argv)
{
    FILE *in;
    FILE *out;
    float x;
    if (argc != 3) {
        return 2;
    }
    in = fopen(argv[1], "rb");
    out = fopen(argv[2], "wb");
    if (in == 0 || out == 0) {
        return 2;
    }
    while (fread(&x, sizeof x, 1, in) == 1) {
        const float y[3] = { darb_expf(x), darb_sigmoidf(x), darb_tanhf(x) };
        if (fwrite(y, sizeof y[0], 3, out) != 3) {
            return 2;
        }
    }
    fclose(in);
    return fclose(out) != 0;
}
