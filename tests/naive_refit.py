"""Obviously correct oracle for darbgen.refit: one ridge problem per row,
solved with np.linalg.lstsq on the stacked system."""
import numpy as np


def refit_row(xp, xd, w_row, b, kept, alpha):
    """Refit one row: inputs xp (pruned network) and xd (dense), kept columns."""
    n = xp.shape[0]
    a = np.hstack([xp[:, kept], np.ones((n, 1))])
    target = xd @ w_row + b
    lam = alpha * max(np.sum(a * a) / a.shape[1], 1e-12)
    start = np.append(w_row[kept], b)
    big_a = np.vstack([a, np.sqrt(lam) * np.eye(a.shape[1])])
    big_t = np.concatenate([target, np.sqrt(lam) * start])
    sol = np.linalg.lstsq(big_a, big_t, rcond=None)[0]
    return sol[:-1], sol[-1]


def refit(weight, bias, mask, xp, xd, alpha):
    w = np.asarray(weight, np.float64)
    out = np.zeros_like(w)
    out_b = np.zeros(w.shape[0])
    for r in range(w.shape[0]):
        kept = np.flatnonzero(mask[r])
        out[r, kept], out_b[r] = refit_row(np.asarray(xp, np.float64), np.asarray(xd, np.float64), w[r],
                                           float(bias[r]), kept, alpha)
    return out, out_b
