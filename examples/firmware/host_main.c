/*
 * host_main.c - runs classify.c on the host: reads float32 images (64 values
 * each) from the file named by argv[1], prints one predicted digit per line.
 */
#include <stdio.h>

#include "classify.h"

int main(int argc, char **argv)
{
    float pixels[64];
    FILE *in;
    if (argc != 2 || (in = fopen(argv[1], "rb")) == 0) {
        fprintf(stderr, "usage: %s IMAGES.f32\n", argv[0]);
        return 2;
    }
    while (fread(pixels, sizeof pixels[0], 64, in) == 64) {
        printf("%d\n", digits_classify(pixels));
    }
    fclose(in);
    return 0;
}
