#!/usr/bin/env python3
"""Fits the coefficients of ErfPolynomial (the SIMD exact GELU's erf) and prints them as Java
constants. Lawson's iteratively reweighted least squares gives near-minimax polynomials:
  |x| <= SPLIT:        erf(x) = x + x * (P(x^2) - 1),           P of degree 6 (the small
                       correction x*(P - 1) is evaluated first, so only its last add rounds at
                       the size of erf)
  SPLIT < |x| < LIMIT: erf(x) = 1 - exp(-x^2) * R((|x| - MID) / HALF), R of degree 9
  |x| >= LIMIT:        erf(x) = +-1  (erfc(3.92) = 3.3e-8)
Run with Debian's python3 (numpy): /usr/bin/python3 tools/codegen/erf_polynomial.py"""
import math
import numpy as np

SPLIT, LIMIT = 0.875, 3.92
MID, HALF = (SPLIT + LIMIT) / 2, (LIMIT - SPLIT) / 2


def lawson(xs, basis, target, weight, iters=60):
    a = basis(xs)
    w = np.ones_like(xs)
    for _ in range(iters):
        s = np.sqrt(w)
        c, *_ = np.linalg.lstsq(a * s[:, None], target * s, rcond=None)
        err = np.abs((a @ c - target) * weight)
        w = w * err
        w /= w.sum()
    return c, np.max(np.abs((a @ c - target) * weight))


xs = np.linspace(0, SPLIT, 20001)
erf_over_x = np.array([math.erf(x) / x if x else 2 / math.sqrt(math.pi) for x in xs])
p, err_p = lawson(xs, lambda x: np.vander(x * x, 7, increasing=True), erf_over_x, xs)
xs = np.linspace(SPLIT, LIMIT, 40001)
erfcx = np.array([math.erfc(x) * math.exp(x * x) for x in xs])
r, err_r = lawson(xs, lambda x: np.vander((x - MID) / HALF, 10, increasing=True), erfcx,
                  np.exp(-xs * xs))
print(f"  // |erf error| in double: {err_p:.1e} below the split, {err_r:.1e} above")
print(f"  static final float SPLIT = {SPLIT}f;")
print(f"  static final float LIMIT = {LIMIT}f;")
print(f"  static final float MID = {MID!r}f;")
print(f"  static final float INV_HALF = {1 / HALF!r}f;")
print(f"  static final float P0_MINUS_1 = {float(np.float32(p[0] - 1))!r}f;")
for i, c in enumerate(p[1:], 1):
    print(f"  static final float P{i} = {float(np.float32(c))!r}f;")
for i, c in enumerate(r):
    print(f"  static final float R{i} = {float(np.float32(c))!r}f;")
