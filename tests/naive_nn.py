"""Slow, obviously correct convolution and pooling (plain loops over every
output, written from the textbook definitions). Nothing here imports darbgen."""
import numpy as np


def conv2d(x, w, b, stride, pad, dilation):
    """x (C, H, W), w (O, C, KH, KW), pad (top, bottom, left, right): (O, OH, OW)."""
    c, h, wd = x.shape
    o, _, kh, kw = w.shape
    top, bottom, left, right = pad
    oh = (h + top + bottom - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + left + right - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((o, oh, ow))
    for f in range(o):
        for i in range(oh):
            for j in range(ow):
                total = b[f]
                for ch in range(c):
                    for ky in range(kh):
                        for kx in range(kw):
                            y = i * stride[0] - top + ky * dilation[0]
                            xx = j * stride[1] - left + kx * dilation[1]
                            if 0 <= y < h and 0 <= xx < wd:
                                total += w[f, ch, ky, kx] * x[ch, y, xx]
                out[f, i, j] = total
    return out


def pool2d(x, kind, size, stride, pad):
    """Max or average over real (unpadded) positions of each window."""
    c, h, wd = x.shape
    top, bottom, left, right = pad
    oh = (h + top + bottom - size[0]) // stride[0] + 1
    ow = (wd + left + right - size[1]) // stride[1] + 1
    out = np.zeros((c, oh, ow))
    for ch in range(c):
        for i in range(oh):
            for j in range(ow):
                vals = [x[ch, y, xx] for y in range(i * stride[0] - top, i * stride[0] - top + size[0])
                        for xx in range(j * stride[1] - left, j * stride[1] - left + size[1])
                        if 0 <= y < h and 0 <= xx < wd]
                out[ch, i, j] = max(vals) if kind == "max" else sum(vals) / len(vals)
    return out
