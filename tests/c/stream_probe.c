/* Runs a recurrent model both ways: RUN on whole sequences, and RESET + STEP
 * one time step at a time; writes both outputs. tests/test_recurrent.py
 * builds it with -DMODEL_HEADER, -DRUN/RESET/STEP (the model's functions) and
 * -DN_IN/N_STEP/N_OUT (its sizes), and -DELEM=int16_t for int16 models. */
#include <stdio.h>

#include MODEL_HEADER

#ifndef ELEM
#define ELEM float
#endif

int main(int argc, char **argv)
{
    static ELEM seq[N_IN];
    static ELEM a[N_OUT];
    static ELEM b[N_OUT];
    FILE *in;
    FILE *out;
    unsigned t;
    if (argc != 3 || (in = fopen(argv[1], "rb")) == 0 || (out = fopen(argv[2], "wb")) == 0) {
        return 2;
    }
    while (fread(seq, sizeof seq[0], N_IN, in) == N_IN) {
        RUN(seq, a);
        RESET();
        for (t = 0; t < N_IN / N_STEP; ++t) {
            STEP(seq + t * N_STEP, b);
        }
        if (fwrite(a, sizeof a[0], N_OUT, out) != N_OUT || fwrite(b, sizeof b[0], N_OUT, out) != N_OUT) {
            return 2;
        }
    }
    fclose(in);
    return fclose(out) != 0;
}
