/* classify.h - the firmware example's one function. */
#ifndef CLASSIFY_H
#define CLASSIFY_H

/* The digit (0-9) in an 8x8 image of pixel values 0..16 divided by 16. */
int digits_classify(const float pixels[64]);

#endif /* CLASSIFY_H */
