#!/usr/bin/env python3
"""JAX-jit peer of `eos bench --run experiments/quickstart.toml --only sharpness,taylor`
(issue 15, goal 2): a whole training run with its probes, timed end to end.

The protocol of experiments/quickstart.toml, with the probes JAX is compared on:
  data    teacher: x ~ N(0, I_20), n = 1000; a random tanh teacher 20-64-64-4 without
          biases, weights N(0, 2.5^2/fan_in); one-hot targets of its argmax (4 classes).
          (numpy draws: the same distribution as eos-data's teacher, not the same values.)
  model   20-64-64-4 tanh MLP with biases, SP with LeCun gain: W ~ N(0, 1/fan_in), b = 0.
  loss    mse: mean over samples of 1/2 ||f - y||^2.
  train   full-batch gradient descent, lr 0.2, 4000 steps; each step computes the loss,
          the gradient and its norm (eos logs both), then theta <- theta - lr g.
  probes  sharpness every 20 steps at theta_t, before the update: the top-2 Hessian
          eigenvalues by Lanczos with full reorthogonalisation (DGKS second pass), tol 1e-6,
          at most 100 products, ARPACK's residual test beta_m |s_mi| <= tol max(|theta_i|,
          eps^(2/3) ||T_m||) after every step, warm-started from the sum of the previous Ritz
          vectors plus 1e-3 Gaussian noise (crates/hessian/src/lanczos.rs); each product is
          one jitted forward-over-reverse HVP at theta_t (XLA recomputes the primal pass;
          eos caches it); the basis is float64 numpy.
          taylor every 10 steps: c0..c3 of L(theta_t + s dtheta_t) along the update
          dtheta_t = -lr g (one jitted call of nested jvps).
  logging a line every 10 steps and whenever a probe ran (values fetched to the host);
          a checkpoint (np.savez of the parameters) every 1000 steps.

Prints one JSON line: steps, wall_s (the loop, after jit compilation, which a warm-up step
of every jitted function pays before the clock starts), steps_per_s, bare_wall_s and
bare_steps_per_s (the same loop with the probes off), probe_share = 1 - bare/with,
lanczos_hvps_mean, and the last sharpness and loss (sanity: GD at the EoS settles near
2/lr = 10).

Usage: quickstart.py [--steps 4000] [--threads N] [--repeats 1]
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

WIDTHS = [20, 64, 64, 4]
N, LR, GAIN = 1000, 0.2, 2.5
SHARP_EVERY, K, TOL, MAX_ITER = 20, 2, 1e-6, 100
TAYLOR_EVERY, LOG_EVERY, CKPT_EVERY = 10, 10, 1000


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def make_data(np):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, WIDTHS[0]))
    h = x
    for i in range(len(WIDTHS) - 1):
        w = rng.normal(0, GAIN / np.sqrt(WIDTHS[i]), (WIDTHS[i + 1], WIDTHS[i]))
        h = h @ w.T
        if i < len(WIDTHS) - 2:
            h = np.tanh(h)
    y = np.eye(WIDTHS[-1])[np.argmax(h, axis=1)]
    return x, y


def init_params(np, jnp):
    rng = np.random.default_rng(1)
    return [(jnp.asarray(rng.normal(0, 1 / np.sqrt(WIDTHS[i]), (WIDTHS[i + 1], WIDTHS[i])), jnp.float32),
             jnp.zeros(WIDTHS[i + 1], jnp.float32)) for i in range(len(WIDTHS) - 1)]


class Lanczos:
    """Top-k Lanczos as eos's (crates/hessian/src/lanczos.rs), on flat float64 vectors."""

    def __init__(self, np, apply, dim, seed):
        self.np, self.apply, self.dim = np, apply, dim
        self.rng = np.random.default_rng(seed)
        self.Q = np.zeros((MAX_ITER + 1, dim))
        self.ritz = []
        self.hvps = []

    def start(self):
        np = self.np
        g = self.rng.standard_normal(self.dim)
        g /= np.linalg.norm(g)
        if not self.ritz:
            return g
        s = np.sum(self.ritz, axis=0)
        s = s / np.linalg.norm(s) + 1e-3 * g
        return s / np.linalg.norm(s)

    def run(self, p):
        np, Q = self.np, self.Q
        Q[0] = self.start()
        alpha, beta = [], []
        for j in range(MAX_ITER):
            w = self.apply(p, Q[j])
            a = w @ Q[j]
            w -= a * Q[j] + (beta[-1] * Q[j - 1] if j else 0.0)
            for _ in range(2):  # DGKS: a second pass when the first cancelled much
                before = np.linalg.norm(w)
                c = Q[: j + 1] @ w
                w -= Q[: j + 1].T @ c
                a += c[j]
                if np.linalg.norm(w) > before / np.sqrt(2):
                    break
            alpha.append(a)
            beta.append(np.linalg.norm(w))
            if j + 1 >= K and self.converged(alpha, beta):
                break
            Q[j + 1] = w / beta[-1]
        m = len(alpha)
        T = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
        vals, vecs = np.linalg.eigh(T)
        top = np.argsort(vals)[::-1][:K]
        self.ritz = [Q[:m].T @ vecs[:, i] for i in top]
        self.ritz = [r / np.linalg.norm(r) for r in self.ritz]
        self.hvps.append(m)
        return vals[top]

    def converged(self, alpha, beta):
        np = self.np
        m = len(alpha)
        T = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
        vals, vecs = np.linalg.eigh(T)
        floor = np.finfo(float).eps ** (2 / 3) * np.max(np.abs(vals))
        top = np.argsort(vals)[::-1][:K]
        return all(beta[-1] * abs(vecs[m - 1, i]) <= TOL * max(abs(vals[i]), floor) for i in top)


def run(steps, probes, jax, jnp, np, x, y):
    def loss(p, x, y):
        h = x
        for i, (w, b) in enumerate(p):
            h = h @ w.T + b
            if i < len(p) - 1:
                h = jnp.tanh(h)
        return jnp.mean(0.5 * jnp.sum((h - y) ** 2, axis=-1))

    def step(p, x, y):
        val, g = jax.value_and_grad(loss)(p, x, y)
        gn = jnp.sqrt(sum(jnp.vdot(a, a) for a in jax.tree_util.tree_leaves(g)))
        return jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g), g, val, gn

    def taylor(p, u, x, y):
        f0 = lambda q: loss(q, x, y)  # noqa: E731
        d1 = lambda q: jax.jvp(f0, (q,), (u,))[1]  # noqa: E731
        d2 = lambda q: jax.jvp(d1, (q,), (u,))[1]  # noqa: E731
        _, d3 = jax.jvp(d2, (p,), (u,))
        return jnp.stack([f0(p), d1(p), d2(p) / 2, d3 / 6])

    step_j, taylor_j = jax.jit(step), jax.jit(taylor)
    hvp_j = jax.jit(lambda p, u, x, y: jax.jvp(lambda q: jax.grad(loss)(q, x, y), (p,), (u,))[1])
    params = init_params(np, jnp)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    shapes = [a.shape for a in leaves]
    dim = sum(int(np.prod(s)) for s in shapes)

    def apply(p, q):
        out, o = [], 0
        for s in shapes:
            k = int(np.prod(s))
            out.append(jnp.asarray(q[o:o + k].reshape(s), jnp.float32))
            o += k
        hv = hvp_j(p, jax.tree_util.tree_unflatten(treedef, out), x, y)
        return np.concatenate([np.asarray(a, np.float64).ravel() for a in jax.tree_util.tree_leaves(hv)])

    lz = Lanczos(np, apply, dim, seed=2)
    # Compile every jitted function before the clock starts (eos has no compile step).
    nxt, g, _, _ = step_j(params, x, y)
    jax.block_until_ready(taylor_j(params, g, x, y))
    apply(params, np.ones(dim))
    lines, ckpt = [], tempfile.mkdtemp(prefix="jax-quickstart-")
    t0 = time.perf_counter()
    sharp = None
    for t in range(steps):
        line = {}
        if probes and t % SHARP_EVERY == 0:
            sharp = float(lz.run(params)[0])
            line["sharpness"] = sharp
        nxt, g, val, gn = step_j(params, x, y)
        if probes and t % TAYLOR_EVERY == 0:
            upd = jax.tree_util.tree_map(lambda a: -LR * a, g)
            line["taylor"] = np.asarray(taylor_j(params, upd, x, y)).tolist()
        if t % LOG_EVERY == 0 or line:
            line.update(step=t, loss=float(val), grad_norm=float(gn))
            lines.append(line)
        params = nxt
        if (t + 1) % CKPT_EVERY == 0:
            np.savez(os.path.join(ckpt, f"step{t + 1}.npz"),
                     *[np.asarray(a) for a in jax.tree_util.tree_leaves(params)])
    jax.block_until_ready(params)
    wall = time.perf_counter() - t0
    hvps = statistics.mean(lz.hvps) if lz.hvps else 0.0
    return wall, hvps, sharp, float(loss(params, x, y))


def main():
    ap = argparse.ArgumentParser(description="JAX peer of eos bench --run experiments/quickstart.toml")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1, help="timed runs of each variant (median)")
    a = ap.parse_args()
    if a.threads:
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, allowed[: a.threads])
    import jax
    import jax.numpy as jnp
    import numpy as np

    xs, ys = make_data(np)
    x, y = jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32)
    with_p, bare, hvps, sharp, last = [], [], [], None, None
    for _ in range(a.repeats):
        w, h, sharp, last = run(a.steps, True, jax, jnp, np, x, y)
        with_p.append(w)
        hvps.append(h)
        bare.append(run(a.steps, False, jax, jnp, np, x, y)[0])
    wall, bare_wall = statistics.median(with_p), statistics.median(bare)
    print(json.dumps({
        "peer": "jax-jit", "protocol": "quickstart (sharpness k=2 every 20, taylor every 10)",
        "steps": a.steps, "wall_s": round(wall, 3), "steps_per_s": round(a.steps / wall, 1),
        "bare_wall_s": round(bare_wall, 3), "bare_steps_per_s": round(a.steps / bare_wall, 1),
        "probe_share": round(1 - bare_wall / wall, 3), "lanczos_hvps_mean": round(statistics.mean(hvps), 1),
        "last_sharpness": sharp, "last_loss": last, "walls_s": [round(v, 3) for v in with_p],
        "bare_walls_s": [round(v, 3) for v in bare], "jax": jax.__version__,
        "device": f"{jax.devices()[0].platform}: {cpu_model()}", "cpus_pinned": len(os.sched_getaffinity(0)),
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
