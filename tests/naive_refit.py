"""Obviously correct oracle for darbgen.refit: one ridge problem per row,
solved with np.linalg.lstsq on the stacked system."""
import numpy as np


def refit_row(xp, xd, w_row, b, kept, alpha, fit_bias=True):
    """Refit one row: inputs xp (pruned network) and xd (dense), kept columns;
    each coordinate's penalty is alpha times its column's squared norm."""
    n = xp.shape[0]
    a = np.hstack([xp[:, kept], np.ones((n, 1))]) if fit_bias else xp[:, kept]
    target = xd @ w_row + (b if fit_bias else 0.0)
    if a.shape[1] == 0:
        return np.zeros(0), b
    lam = alpha * np.maximum(np.sum(a * a, axis=0), 1e-12)
    start = np.append(w_row[kept], b) if fit_bias else w_row[kept]
    big_a = np.vstack([a, np.diag(np.sqrt(lam))])
    big_t = np.concatenate([target, np.sqrt(lam) * start])
    sol = np.linalg.lstsq(big_a, big_t, rcond=None)[0]
    return (sol[:-1], sol[-1]) if fit_bias else (sol, b)


def refit(weight, bias, mask, xp, xd, alpha, fit_bias=True):
    w = np.asarray(weight, np.float64)
    out = np.zeros_like(w)
    out_b = np.zeros(w.shape[0])
    for r in range(w.shape[0]):
        kept = np.flatnonzero(mask[r])
        out[r, kept], out_b[r] = refit_row(np.asarray(xp, np.float64), np.asarray(xd, np.float64), w[r],
                                           float(bias[r]), kept, alpha, fit_bias)
    return out, out_b
