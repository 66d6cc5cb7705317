#!/usr/bin/env python3
"""Fits the 2^f polynomial of the Panama loops (simd/Exp2Polynomial): minimax (by Lawson's iteration) on
[-0.5, 0.5] in relative error, constant term fixed at 1, and checks it evaluated in fp32 (Horner).
Run with Debian's /usr/bin/python3 (numpy): python3 tools/codegen/exp2_poly.py"""
import numpy as np

x = np.linspace(-0.5, 0.5, 20001)
y = np.exp2(x)
for deg in (5, 6):
    # Lawson's iteration: weighted least squares -> minimax, relative error, c0 fixed at 1.
    V = np.vstack([x**k for k in range(1, deg + 1)]).T
    w = np.ones_like(x)
    for it in range(200):
        W = w / y
        c, *_ = np.linalg.lstsq(V * W[:, None], (y - 1) * W, rcond=None)
        err = np.abs((V @ c + 1 - y) / y)
        w = w * err ** 0.5 if False else w * (err / err.max() + 1e-3)
        w /= w.sum()
    cf = np.float32(c)
    xf = np.float32(x)
    p = np.float32(cf[-1])
    for k in range(deg - 2, -1, -1):
        p = np.float32(p * xf + cf[k])
    p = np.float32(p * xf + np.float32(1))
    e32 = np.abs(p.astype(np.float64) - y) / y
    print(deg, [repr(float(v)) for v in cf], "max rel err float64 %.2e float32 eval %.2e" % (err.max(), e32.max()))
