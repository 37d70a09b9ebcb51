/* Runs a recurrent model both ways: RUN on whole sequences, and RESET + STEP
 * one time step at a time; writes RUN's output, then every STEP's output.
 * tests/test_recurrent.py builds it with -DMODEL_HEADER, -DRUN/RESET/STEP
 * (the model's functions), -DN_IN/N_STEP/N_OUT/N_STEP_OUT (its sizes) and
 * -DELEM (the model's element type). */
#include <stdio.h>

#include MODEL_HEADER

#ifndef ELEM
#define ELEM float
#endif

int main(int argc, char **argv)
{
    static ELEM seq[N_IN];
    static ELEM a[N_OUT];
    static ELEM b[(N_IN / N_STEP) * N_STEP_OUT];
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
            STEP(seq + t * N_STEP, b + t * N_STEP_OUT);
        }
        if (fwrite(a, sizeof a[0], N_OUT, out) != N_OUT || fwrite(b, sizeof b[0], sizeof b / sizeof b[0], out)
            != sizeof b / sizeof b[0]) {
            return 2;
        }
    }
    fclose(in);
    return fclose(out) != 0;
}
