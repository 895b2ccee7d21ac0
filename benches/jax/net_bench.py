#!/usr/bin/env python3
"""JAX-jit peer of `eos bench --suite cnn,transformer` (issue 12): the same operations on
the same shapes, printed as one JSON line per suite with the same keys.

Suites (benches/src/net_suites.rs):
  cnn          conv3x3(16) relu maxpool2 conv3x3(32) relu maxpool2 flatten dense(10),
               NCHW input 1x28x28, n = 256, cross-entropy, one-hot class i mod 10.
  transformer  embedding(16 -> 64) + learned positions, 2 pre-LN blocks (causal attention,
               4 heads, no biases, scores / sqrt(16); dense 256 gelu(tanh) dense 64), final
               layernorm (eps 1e-5, biased variance), dense(16) readout; sorting-task ids,
               T = 16, V = 16, n = 128 sequences, cross-entropy averaged over every position.

Initialisation as eos's `Network::random`: weights N(0, 1/fan_in) (fan_in = in*k*k for
convolutions), embeddings N(0, 1), layernorm gains 1, biases 0; v ~ N(0, I). (numpy draws,
not eos's: values differ, shapes and distributions do not.)

Keys: grad_ms (jit grad), hvp_ms (forward-over-reverse, one jitted call), hvp_over_grad,
hvp_cached_ms (jax.linearize of the gradient once, then the jitted linear map: JAX's
counterpart of eos's cached primal pass), lanczos_top5_s (20 Lanczos steps, full
reorthogonalisation in numpy, one jitted HVP per step, as ../shared/peers/jax_bench.py),
third_deriv_ms (d^3/dt^3 L(theta + t v) by nested jvp). Medians over --repeats after warm-up;
every input is a jit argument.

Threads: run under `taskset -c 0,1` (XLA sizes its pool from the affinity) or pass
--threads N. numpy runs single-threaded (its BLAS threads spinning steal the pinned cores).

Usage: net_bench.py [--suites cnn,transformer] [--threads N] [--repeats 7] [--dtype float32]
"""
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

LANCZOS_STEPS = 20


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def cnn_case(np, jnp, jax, dtype):
    rng = np.random.default_rng(0)
    n, classes = 256, 10
    shapes = [(16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (10, 32 * 7 * 7), (10,)]
    params = [jnp.asarray(rng.normal(0, 1 / np.sqrt(np.prod(s[1:])), s) if len(s) > 1 else np.zeros(s), dtype)
              for s in shapes]
    x = jnp.asarray(rng.normal(size=(n, 1, 28, 28)), dtype)
    y = jnp.asarray(np.eye(classes)[np.arange(n) % classes], dtype)
    lax = jax.lax

    def conv(h, w, b):
        h = lax.conv_general_dilated(h, w, (1, 1), [(1, 1), (1, 1)],
                                     dimension_numbers=("NCHW", "OIHW", "NCHW"))
        return h + b[None, :, None, None]

    def maxpool(h):
        return lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    def loss(p, x, y):
        h = maxpool(jax.nn.relu(conv(x, p[0], p[1])))
        h = maxpool(jax.nn.relu(conv(h, p[2], p[3])))
        f = h.reshape(h.shape[0], -1) @ p[4].T + p[5]
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(f, axis=-1), axis=-1))

    return params, x, y, loss


def transformer_case(np, jnp, jax, dtype):
    rng = np.random.default_rng(0)
    n, T, V, d, H, m = 128, 16, 16, 64, 4, 256

    def normal(shape, std):
        return jnp.asarray(rng.normal(0, std, shape), dtype)

    params = {"emb": normal((V, d), 1.0), "pos": normal((T, d), 1.0), "blocks": []}
    for _ in range(2):
        params["blocks"].append({
            "ln1": (jnp.ones(d, dtype), jnp.zeros(d, dtype)),
            "qkv": normal((3 * d, d), 1 / np.sqrt(d)), "proj": normal((d, d), 1 / np.sqrt(d)),
            "ln2": (jnp.ones(d, dtype), jnp.zeros(d, dtype)),
            "w1": normal((m, d), 1 / np.sqrt(d)), "b1": jnp.zeros(m, dtype),
            "w2": normal((d, m), 1 / np.sqrt(m)), "b2": jnp.zeros(d, dtype),
        })
    params["lnf"] = (jnp.ones(d, dtype), jnp.zeros(d, dtype))
    params["out"] = (normal((V, d), 1 / np.sqrt(d)), jnp.zeros(V, dtype))
    ids = rng.integers(0, V, size=(n, T))
    x = jnp.asarray(ids, jnp.int32)
    y = jnp.asarray(np.eye(V)[np.sort(ids, axis=1)], dtype)
    mask = jnp.tril(jnp.ones((T, T), bool))

    def layernorm(h, wb):
        mu = jnp.mean(h, -1, keepdims=True)
        var = jnp.mean((h - mu) ** 2, -1, keepdims=True)
        return (h - mu) / jnp.sqrt(var + 1e-5) * wb[0] + wb[1]

    def attention(h, wqkv, wp):
        b, t, _ = h.shape
        q, k, v = jnp.split(h @ wqkv.T, 3, axis=-1)
        heads = lambda a: a.reshape(b, t, H, d // H).transpose(0, 2, 1, 3)  # noqa: E731
        q, k, v = heads(q), heads(k), heads(v)
        s = q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // H)
        a = jax.nn.softmax(jnp.where(mask, s, -jnp.inf), axis=-1)
        o = (a @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
        return o @ wp.T

    def loss(p, x, y):
        h = p["emb"][x] + p["pos"][None, :x.shape[1]]
        for blk in p["blocks"]:
            h = h + attention(layernorm(h, blk["ln1"]), blk["qkv"], blk["proj"])
            z = jax.nn.gelu(layernorm(h, blk["ln2"]) @ blk["w1"].T + blk["b1"], approximate=True)
            h = h + z @ blk["w2"].T + blk["b2"]
        f = layernorm(h, p["lnf"]) @ p["out"][0].T + p["out"][1]
        return -jnp.mean(jnp.sum(y * jax.nn.log_softmax(f, axis=-1), axis=-1))

    return params, x, y, loss


CASES = {"cnn": cnn_case, "transformer": transformer_case}


def run_suite(name, repeats, dtype):
    import jax
    import jax.numpy as jnp
    import numpy as np

    params, x, y, loss = CASES[name](np, jnp, jax, dtype)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(1)
    v = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(rng.normal(size=a.shape), dtype) for a in leaves])

    grad = jax.grad(loss)

    def hvp(p, u, x, y):
        return jax.jvp(lambda q: grad(q, x, y), (p,), (u,))[1]

    def third_deriv(p, u, x, y):
        d1 = lambda q: jax.jvp(lambda r: loss(r, x, y), (q,), (u,))[1]  # noqa: E731
        d2 = lambda q: jax.jvp(d1, (q,), (u,))[1]  # noqa: E731
        return jax.jvp(d2, (p,), (u,))[1]

    grad_j, hvp_j, third_j = jax.jit(grad), jax.jit(hvp), jax.jit(third_deriv)
    # linearize returns a pytree (a Partial) holding the residuals: passing it as a jit
    # argument keeps XLA from constant-folding them into the program.
    _, lin = jax.linearize(lambda q: grad(q, x, y), params)
    lin_j = jax.jit(lambda f, u: f(u))

    shapes = [a.shape for a in leaves]
    P = sum(int(np.prod(s)) for s in shapes)

    def to_tree(f):
        out, o = [], 0
        for s in shapes:
            k = int(np.prod(s))
            out.append(jnp.asarray(f[o:o + k].reshape(s), dtype))
            o += k
        return jax.tree_util.tree_unflatten(treedef, out)

    def to_flat(tree):
        return np.concatenate([np.asarray(a).ravel() for a in jax.tree_util.tree_leaves(tree)])

    Q = np.zeros((LANCZOS_STEPS + 1, P), np.dtype(dtype))
    Q.fill(1.0)

    def lanczos(steps=LANCZOS_STEPS, k=5):
        q = np.random.default_rng(1).standard_normal(P)
        Q[0] = q / np.linalg.norm(q)
        alpha, beta = np.zeros(steps), np.zeros(steps)
        for j in range(steps):
            w = to_flat(hvp_j(params, to_tree(Q[j]), x, y))
            alpha[j] = w @ Q[j]
            w -= alpha[j] * Q[j] + (beta[j - 1] * Q[j - 1] if j else 0.0)
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
            beta[j] = np.linalg.norm(w)
            Q[j + 1] = w / beta[j]
        T = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
        return np.linalg.eigvalsh(T)[::-1][:k]

    slow = max(1, repeats // 3)
    block = jax.block_until_ready
    res = {
        "grad_ms": 1e3 * median_time(lambda: block(grad_j(params, x, y)), repeats),
        "hvp_ms": 1e3 * median_time(lambda: block(hvp_j(params, v, x, y)), repeats),
        "hvp_cached_ms": 1e3 * median_time(lambda: block(lin_j(lin, v)), repeats),
        "lanczos_top5_s": median_time(lanczos, slow, warmup=1),
        "lanczos_hvps": LANCZOS_STEPS,
        "third_deriv_ms": 1e3 * median_time(lambda: block(third_j(params, v, x, y)), repeats),
    }
    res["hvp_over_grad"] = res["hvp_ms"] / res["grad_ms"]
    top = lanczos()  # not timed: a sanity value to compare with eos's λ_max
    return {
        "suite": name, "n": int(x.shape[0]), "n_params": P, "dtype": np.dtype(dtype).name,
        **{k: float(f"{val:.4g}") if isinstance(val, float) else val for k, val in res.items()},
        "check_lambda_max_lanczos20": float(top[0]), "repeats": repeats, "repeats_slow": slow,
    }


def main():
    ap = argparse.ArgumentParser(description="JAX peer of eos bench --suite cnn,transformer")
    ap.add_argument("--suites", default="cnn,transformer")
    ap.add_argument("--threads", type=int, default=None,
                    help="pin to the first N allowed CPUs (like taskset) and set XLA_FLAGS")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    a = ap.parse_args()
    for s in a.suites.split(","):
        if s not in CASES:
            ap.error(f"unknown suite {s!r}; choose from {','.join(CASES)}")
    if a.threads:  # before JAX creates its CPU client
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, allowed[: a.threads])
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                                   f" intra_op_parallelism_threads={a.threads}").strip()
    import jax

    if a.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    info = {"peer": "jax-jit", "jax": jax.__version__, "device": f"{jax.devices()[0].platform}: {cpu_model()}",
            "cpus_pinned": len(os.sched_getaffinity(0)), "python": platform.python_version()}
    for s in a.suites.split(","):
        t0 = time.perf_counter()
        r = run_suite(s, a.repeats, getattr(jnp, a.dtype))
        r["suite_wall_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps({**r, **info}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
