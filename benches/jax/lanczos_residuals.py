#!/usr/bin/env python3
"""JAX-jit peer of the block-Lanczos rows of `eos bench` (issue 15, goal 4): the time of the
peer's 20-step Lanczos top-5 (shared/peers/jax_bench.py, copied here step for step) and the
accuracy it reaches, as residuals ||H y - theta y|| of its top-5 Ritz pairs.

Suites as jax_bench.py: small 3072-512-512-10 (n = 1000), medium 3072-1024-1024-1024-10
(n = 5000), relu + mse with biases, LeCun-normal weights from numpy's default_rng(0), zero
biases, N(0, 1) inputs and targets (the same distribution as eos bench, not the same draws).

Lanczos (timed, as in the peer): 20 steps from a seeded N(0, I) start, each one jitted
forward-over-reverse HVP at theta (XLA recomputes the primal pass), full reorthogonalisation
in numpy against the float32 basis, float64 tridiagonal. Then (untimed) the Ritz vectors
y_i = Q s_i of the top 5 and one more HVP each give the true residual ||H y_i - theta_i y_i||
(float32 HVP, float64 arithmetic) and the relative residual divided by |theta_i|.

Prints one JSON line per suite: lanczos_top5_s (median of --repeats after one warm-up),
eigenvalues, residuals, rel_residuals, lanczos_hvps = 20.

Usage: lanczos_residuals.py [--suites small,medium] [--repeats 3]
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

STEPS = 20
SUITES = {"small": ([3072, 512, 512, 10], 1000), "medium": ([3072, 1024, 1024, 1024, 10], 5000)}


def run_suite(name, widths, n, repeats):
    import jax
    import jax.numpy as jnp
    import numpy as np

    dtype = jnp.float32
    rng = np.random.default_rng(0)
    L = len(widths) - 1
    params = [(jnp.asarray(rng.normal(0, 1 / np.sqrt(widths[i]), (widths[i + 1], widths[i])), dtype),
               jnp.zeros((widths[i + 1],), dtype)) for i in range(L)]
    x = jnp.asarray(rng.normal(size=(n, widths[0])), dtype)
    y = jnp.asarray(rng.normal(size=(n, widths[-1])), dtype)

    def loss(p, x, y):
        h = x
        for i, (w, b) in enumerate(p):
            h = h @ w.T + b
            if i < L - 1:
                h = jax.nn.relu(h)
        return jnp.mean(0.5 * jnp.sum((h - y) ** 2, axis=-1))

    def hvp(p, u, x, y):
        return jax.jvp(lambda q: jax.grad(loss)(q, x, y), (p,), (u,))[1]

    hvp_j = jax.jit(hvp)
    shapes = [a.shape for a in jax.tree_util.tree_leaves(params)]
    treedef = jax.tree_util.tree_structure(params)
    P = sum(int(np.prod(s)) for s in shapes)

    def to_tree(f):
        leaves, o = [], 0
        for s in shapes:
            k = int(np.prod(s))
            leaves.append(jnp.asarray(f[o:o + k].reshape(s), dtype))
            o += k
        return jax.tree_util.tree_unflatten(treedef, leaves)

    def to_flat(tree):
        return np.concatenate([np.asarray(a).ravel() for a in jax.tree_util.tree_leaves(tree)])

    Q = np.zeros((STEPS + 1, P), np.float32)
    Q.fill(1.0)

    def lanczos(k=5):
        q = np.random.default_rng(1).standard_normal(P)
        Q[0] = q / np.linalg.norm(q)
        alpha, beta = np.zeros(STEPS), np.zeros(STEPS)
        for j in range(STEPS):
            w = to_flat(hvp_j(params, to_tree(Q[j]), x, y))
            alpha[j] = w @ Q[j]
            w -= alpha[j] * Q[j] + (beta[j - 1] * Q[j - 1] if j else 0.0)
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
            beta[j] = np.linalg.norm(w)
            Q[j + 1] = w / beta[j]
        T = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
        vals, vecs = np.linalg.eigh(T)
        return vals[::-1][:k], vecs[:, ::-1][:, :k]

    lanczos()  # warm-up (jit compilation)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        vals, S = lanczos()
        ts.append(time.perf_counter() - t0)
    res = []
    for i in range(len(vals)):
        yv = Q[:STEPS].T.astype(np.float64) @ S[:, i]
        yv /= np.linalg.norm(yv)
        hy = to_flat(hvp_j(params, to_tree(yv), x, y)).astype(np.float64)
        res.append(float(np.linalg.norm(hy - vals[i] * yv)))
    return {
        "suite": name, "n_params": P, "lanczos_top5_s": float(f"{statistics.median(ts):.4g}"),
        "lanczos_top5_s_all": [round(t, 3) for t in ts], "lanczos_hvps": STEPS,
        "eigenvalues": [float(v) for v in vals], "residuals": res,
        "rel_residuals": [r / abs(float(v)) for r, v in zip(res, vals)],
        "jax": jax.__version__, "repeats": repeats,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", default="small,medium")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    for s in a.suites.split(","):
        if s not in SUITES:
            ap.error(f"unknown suite {s!r}; choose from {','.join(SUITES)}")
        widths, n = SUITES[s]
        print(json.dumps(run_suite(s, widths, n, a.repeats)), flush=True)


if __name__ == "__main__":
    main()
