"""Independent NumPy implementation of the threshold-neurons model (pilot, not a test).

Ahn et al. 2023 (arXiv 2212.07469) model (2) as reconstructed in
experiments/threshold-neurons/coord-pair.toml: x = lam*y*e_j + xi (d = 200, lam = 3,
n = 300, xi ~ N(0, I)), f(x) = sum_i [a+_i relu(x_i + b) + a-_i relu(-x_i + b)],
a+- ~ N(0, 1/(2d)), b = 0, GD on the SUMMED logistic loss (the paper's units) for
total time eta*T = tau. Prints the final b and test accuracy per eta, and the
mean-model threshold 2/lambda_mm computed from the sampled training set.

    python3 -m venv v && v/bin/pip install numpy && TAU=10 v/bin/python pilot_numpy.py 2e-4 4e-3
"""
import sys

import numpy as np

D, N, LAM = 200, 300, 3.0
rng = np.random.default_rng(0)


def data(m):
    y = rng.choice([-1.0, 1.0], m)
    j = rng.integers(0, D, m)
    x = rng.standard_normal((m, D))
    x[np.arange(m), j] += LAM * y
    return x, y


X, Y = data(N)
XT, YT = data(2000)
AP0 = rng.normal(0, np.sqrt(1 / (2 * D)), D)
AM0 = rng.normal(0, np.sqrt(1 / (2 * D)), D)


def f(x, ap, am, b):
    return np.maximum(x + b, 0) @ ap + np.maximum(-x + b, 0) @ am


def run(eta, tau=float(__import__("os").environ.get("TAU", "10"))):
    ap, am, b = AP0.copy(), AM0.copy(), 0.0
    for _ in range(int(np.ceil(tau / eta))):
        p, q = np.maximum(X + b, 0), np.maximum(-X + b, 0)
        g = -Y / (1 + np.exp(Y * (p @ ap + q @ am)))  # d(sum loss)/d f_k
        gb = g @ ((X + b > 0) @ ap + (-X + b > 0) @ am)
        ap, am, b = ap - eta * (p.T @ g), am - eta * (q.T @ g), b - eta * gb
    return b, np.mean(np.sign(f(XT, ap, am, b)) == YT)


S = np.abs(X).sum(1)
print("eta_mm (sample, paper units)", 2 / (0.25 * np.sum(S**2) / (2 * D)),
      "8pi/(nd)", 8 * np.pi / (N * D), "8pi/d^2", 8 * np.pi / D**2)
for eta in map(float, sys.argv[1:]):
    b, acc = run(eta)
    print(f"eta {eta:.2e}  b {b:+.4f}  test acc {acc:.3f}", flush=True)
