#!/usr/bin/python3
"""Derives the erf constants of ops/vecmath_coef.h (run with Debian's python3:
numpy and mpmath).

Lawson's algorithm (iteratively reweighted least squares, converging to the
minimax fit) on Chebyshev-spaced points against mpmath at 30 digits:
  |x| <= SPLIT: erf(x) = x + x P(x^2), P of degree 5, absolute error of P;
  SPLIT < t <= CLAMP: erfc(t) = exp(-t - t Q(t)), Q of degree 6, error of the
    exponent (= relative error of erfc).
Prints the float32 coefficients, highest degree first (Horner order).
"""
import mpmath
import numpy as np

mpmath.mp.dps = 30
SPLIT, CLAMP = 0.921875, 3.9375


def lawson(xs, target, degree, weight, iters=300):
    a = np.stack([xs**k for k in range(degree + 1)], 1)
    w = np.ones_like(xs)
    for _ in range(iters):
        sw = np.sqrt(w) * weight
        c, *_ = np.linalg.lstsq(a * sw[:, None], target * sw, rcond=None)
        e = np.abs((a @ c - target) * weight)
        w = w * e
        w /= w.sum()
    return c, e.max()


def cheb(lo, hi, n=4000):
    return np.cos(np.linspace(0, np.pi, n)) * 0.5 * (hi - lo) + 0.5 * (hi + lo)


xs = np.maximum(cheb(0.0, SPLIT), 1e-6)
p, ep = lawson(xs * xs, np.array([float(mpmath.erf(x) / x - 1) for x in xs]), 5,
               np.ones_like(xs))
ts = cheb(SPLIT, CLAMP)
q, eq = lawson(ts, np.array([float(-mpmath.log(mpmath.erfc(t)) / t - 1) for t in ts]), 6, ts)
print("P (max error %.3g):" % ep, ", ".join("%.9ef" % v for v in p.astype(np.float32)[::-1]))
print("Q (max relative error of erfc %.3g):" % eq,
      ", ".join("%.9ef" % v for v in q.astype(np.float32)[::-1]))
