#!/usr/bin/env python3
"""Generate independent reference values (JAX autodiff, float64) for eos tests.

Run from the repository root:

    /tmp/jaxvenv/bin/python crates/model/tests/data/gen_reference.py

(venv: python3 -m venv /tmp/jaxvenv && /tmp/jaxvenv/bin/pip install "jax[cpu]" numpy safetensors)

Writes ref_<case>.safetensors next to this script. Everything is deterministic
(fixed numpy seeds; JAX is only used for differentiation, never for randomness).

Model (eos interchange format), layers i = 0..L-1:
    h_0 = x
    z_i = m_i * (h_{i-1} @ W_i^T) + b_i      (b_i absent when the case has no bias)
    h_i = phi(z_i)                            for i < L-1
    f   = z_{L-1}                             (no activation on the last layer)
Loss  L = mean_i l_i with
    mse           l = 1/2 ||f - y||^2
    cross_entropy l = logsumexp(f) - sum_k y_k f_k            (y one-hot)
    logistic      l = sum_k log(1 + exp(-y_k f_k))            (y in {-1, +1})
    mse_mean_all  l = (1/K) ||f - y||^2                       (torch MSELoss)
Flattened parameter order: for each layer: weight (row-major), then bias.
"""

import math
import os
import sys

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.experimental import jet  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
LEAKY_SLOPE = 0.1


# ----------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------

def act_fn(name):
    if name == "relu":
        return lambda z: jnp.maximum(z, 0.0)
    if name == "tanh":
        return jnp.tanh
    if name == "identity":
        return lambda z: z
    if name == "gelu":
        c = math.sqrt(2.0 / math.pi)
        return lambda z: 0.5 * z * (1.0 + jnp.tanh(c * (z + 0.044715 * z ** 3)))
    if name == "silu":
        return lambda z: z * (1.0 / (1.0 + jnp.exp(-z)))
    if name == "leaky_relu:0.1":
        return lambda z: jnp.where(z > 0, z, LEAKY_SLOPE * z)
    raise ValueError(name)


def forward(params, x, mults, phi, return_pre=False):
    """params: list of (W, b or None)."""
    h = x
    pres = []
    nl = len(params)
    for i, (w, b) in enumerate(params):
        z = mults[i] * (h @ w.T)
        if b is not None:
            z = z + b
        pres.append(z)
        h = phi(z) if i < nl - 1 else z
    return (h, pres) if return_pre else h


def loss_fn(name):
    if name == "mse":
        return lambda f, y: jnp.mean(0.5 * jnp.sum((f - y) ** 2, axis=1))
    if name == "mse_mean_all":
        return lambda f, y: jnp.mean(jnp.sum((f - y) ** 2, axis=1) / f.shape[1])
    if name == "cross_entropy":
        return lambda f, y: jnp.mean(
            jax.scipy.special.logsumexp(f, axis=1) - jnp.sum(y * f, axis=1))
    if name == "logistic":
        # plain log1p(exp(.)) (margins are O(1) here); jet has no rule for logaddexp
        return lambda f, y: jnp.mean(jnp.sum(jnp.log1p(jnp.exp(-y * f)), axis=1))
    raise ValueError(name)


def save_file(tensors, path, metadata):
    """Byte-deterministic safetensors writer (the library's writer orders the
    metadata map nondeterministically). Tensors sorted by name, metadata keys
    sorted, header padded with spaces to a multiple of 8 bytes."""
    import json
    import struct
    dt = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32"}
    header = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, off = [], 0
    for k in sorted(tensors):
        a = np.ascontiguousarray(tensors[k])
        b = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[k] = {"dtype": dt[a.dtype], "shape": list(a.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)))
        fh.write(h)
        for b in blobs:
            fh.write(b)
    # round-trip through the reference reader
    back = load_file(path)
    assert sorted(back) == sorted(tensors)
    for k in tensors:
        assert back[k].dtype == tensors[k].dtype and np.array_equal(back[k], tensors[k]), k


# ----------------------------------------------------------------------------
# flatten / unflatten (order: W_0 row-major, b_0, W_1, b_1, ...)
# ----------------------------------------------------------------------------

def make_unflatten(widths, bias):
    shapes = []
    for i in range(len(widths) - 1):
        shapes.append(((widths[i + 1], widths[i]), (widths[i + 1],) if bias else None))

    def unflatten(theta):
        out, o = [], 0
        for ws, bs in shapes:
            nw = ws[0] * ws[1]
            w = theta[o:o + nw].reshape(ws)
            o += nw
            b = None
            if bs is not None:
                b = theta[o:o + bs[0]]
                o += bs[0]
            out.append((w, b))
        assert o == theta.shape[0]
        return out

    nparam = sum(ws[0] * ws[1] + (bs[0] if bs else 0) for ws, bs in shapes)
    return unflatten, shapes, nparam


def flatten_np(params):
    parts = []
    for w, b in params:
        parts.append(np.asarray(w).reshape(-1))
        if b is not None:
            parts.append(np.asarray(b).reshape(-1))
    return np.concatenate(parts)


# ----------------------------------------------------------------------------
# case construction
# ----------------------------------------------------------------------------

def build_case(spec, seed):
    rng = np.random.default_rng(seed)
    widths, bias, n = spec["widths"], spec["bias"], spec["n"]
    scale = spec["scale"]
    params = []
    for i in range(len(widths) - 1):
        fan_in, fan_out = widths[i], widths[i + 1]
        w = rng.normal(0.0, 1.0, (fan_out, fan_in)) * scale / math.sqrt(fan_in)
        b = rng.normal(0.0, 0.5, (fan_out,)) if bias else None
        params.append((w, b))
    x = rng.normal(0.0, 1.0, (n, widths[0]))
    k = widths[-1]
    if spec["loss"] in ("mse", "mse_mean_all"):
        y = rng.normal(0.0, 1.0, (n, k))
    elif spec["loss"] == "cross_entropy":
        labels = rng.integers(0, k, n)
        y = np.zeros((n, k))
        y[np.arange(n), labels] = 1.0
    elif spec["loss"] == "logistic":
        y = rng.choice([-1.0, 1.0], size=(n, k))
    else:
        raise ValueError(spec["loss"])
    vdir = []
    for w, b in params:
        vw = rng.normal(0.0, 1.0, w.shape)
        vb = rng.normal(0.0, 1.0, b.shape) if b is not None else None
        vdir.append((vw, vb))
    return params, x, y, vdir


def min_abs_hidden_pre(params, x, mults, phi):
    jp = [(jnp.asarray(w), None if b is None else jnp.asarray(b)) for w, b in params]
    _, pres = forward(jp, jnp.asarray(x), mults, phi, return_pre=True)
    return min(float(jnp.min(jnp.abs(z))) for z in pres[:-1]) if len(pres) > 1 else math.inf


# ----------------------------------------------------------------------------
# reference computation
# ----------------------------------------------------------------------------

def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def compute_case(name, spec):
    phi = act_fn(spec["activation"])
    mults = [float(m) for m in spec["multipliers"]]
    lossf = loss_fn(spec["loss"])
    kinked = spec["activation"] in ("relu", "leaky_relu:0.1")

    seed = spec["seed"]
    while True:
        params, x, y, vdir = build_case(spec, seed)
        if not kinked or min_abs_hidden_pre(params, x, mults, phi) > 1e-3:
            break
        seed += 1  # reseed: a pre-activation is too close to the kink

    unflatten, shapes, P = make_unflatten(spec["widths"], spec["bias"])
    theta0 = jnp.asarray(flatten_np(params))
    vflat = jnp.asarray(flatten_np(vdir))
    X, Y = jnp.asarray(x), jnp.asarray(y)

    def f_of(theta):
        return forward(unflatten(theta), X, mults, phi)

    def L_of(theta):
        return lossf(f_of(theta), Y)

    grad = jax.grad(L_of)
    loss = L_of(theta0)
    g = grad(theta0)
    _, hv = jax.jvp(grad, (theta0,), (vflat,))
    vhv = jnp.dot(vflat, hv)

    # Taylor coefficients of t -> L(theta + t v) by nested forward mode.
    def g0(t):
        return L_of(theta0 + t * vflat)

    def d(fn):
        return lambda t: jax.jvp(fn, (t,), (jnp.ones_like(t),))[1]

    t0 = jnp.asarray(0.0)
    g1, g2, g3 = d(g0), d(d(g0)), d(d(d(g0)))
    taylor = np.array([float(g0(t0)), float(g1(t0)), float(g2(t0)) / 2.0, float(g3(t0)) / 6.0])

    # Cross-check with jet (Taylor mode): series for theta(t) = theta0 + t v.
    zero = jnp.zeros_like(vflat)
    primal_out, series_out = jet.jet(L_of, (theta0,), ((vflat, zero, zero),))
    # jet returns derivative coefficients d^k/dt^k (not divided by k!)
    taylor_jet = np.array([float(primal_out), float(series_out[0]),
                           float(series_out[1]) / 2.0, float(series_out[2]) / 6.0])

    _, jvp_out = jax.jvp(f_of, (theta0,), (vflat,))

    n = x.shape[0]
    J = jax.jacrev(f_of)(theta0)  # [n, K, P]
    ntk_trace = float(jnp.sum(J ** 2)) / n

    H = jax.hessian(L_of)(theta0)
    H = np.asarray(H)
    eig = np.linalg.eigvalsh(0.5 * (H + H.T))  # ascending
    htrace = float(np.trace(H))

    # ------------------------------------------------------------ sanity checks
    checks = {}
    eps = 1e-5
    hv_fd = (grad(theta0 + eps * vflat) - grad(theta0 - eps * vflat)) / (2 * eps)
    checks["hvp_vs_fd_grad"] = (rel_err(hv_fd, hv), 1e-6)
    checks["hvp_vs_dense_H"] = (rel_err(H @ np.asarray(vflat), hv), 1e-12)
    checks["H_symmetric"] = (rel_err(H, H.T), 1e-12)
    checks["taylor_c2_vs_vhv/2"] = (abs(taylor[2] - float(vhv) / 2) / abs(float(vhv) / 2), 1e-12)
    checks["taylor_c1_vs_g.v"] = (abs(taylor[1] - float(jnp.dot(g, vflat))) / abs(taylor[1]), 1e-12)
    checks["taylor_c0_vs_loss"] = (abs(taylor[0] - float(loss)) / abs(float(loss)), 1e-15)
    checks["taylor_nested_jvp_vs_jet"] = (rel_err(taylor_jet, taylor), 1e-10)
    # c3 vs finite differences of vhv along v: d/dt (v^T H(theta+tv) v) = 6 c3
    def vhv_at(t):
        return float(jnp.dot(vflat, jax.jvp(grad, (theta0 + t * vflat,), (vflat,))[1]))
    h3 = 1e-4
    c3_fd = (vhv_at(h3) - vhv_at(-h3)) / (2 * h3) / 6.0
    checks["taylor_c3_vs_fd"] = (abs(c3_fd - taylor[3]) / max(abs(taylor[3]), 1e-12), 1e-5)
    # NTK trace alternative: per-sample forward-mode Jacobian (jacfwd), summed.
    def f_single(theta, xi):
        return forward(unflatten(theta), xi[None, :], mults, phi)[0]
    per = jax.vmap(lambda xi: jnp.sum(jax.jacfwd(f_single)(theta0, xi) ** 2))(X)
    ntk_alt = float(jnp.sum(per)) / n
    checks["ntk_trace_jacrev_vs_jacfwd"] = (abs(ntk_alt - ntk_trace) / ntk_trace, 1e-12)
    checks["hessian_trace_vs_sum_eig"] = (abs(htrace - eig.sum()) / max(abs(htrace), 1e-12), 1e-10)
    # jvp output vs FD of outputs
    jvp_fd = (f_of(theta0 + eps * vflat) - f_of(theta0 - eps * vflat)) / (2 * eps)
    checks["jvp_vs_fd"] = (rel_err(jvp_fd, jvp_out), 1e-7)
    if spec["activation"] in ("relu", "leaky_relu:0.1", "identity") and \
            spec["loss"] in ("mse", "mse_mean_all"):
        # f is linear in each single parameter, so diag(H) = diag(Gauss-Newton) and
        # tr(H) = c * ntk_trace with c = 1 (mse) or 2/K (mse_mean_all).
        c = 1.0 if spec["loss"] == "mse" else 2.0 / spec["widths"][-1]
        checks["hessian_trace_vs_c*ntk_trace"] = (abs(htrace - c * ntk_trace) / abs(htrace), 1e-12)
    if kinked:
        # perturbations used above must not cross a kink
        for t in (-h3, h3, -eps, eps):
            pt = unflatten(theta0 + t * vflat)
            _, pres = forward(pt, X, mults, phi, return_pre=True)
            _, pres0 = forward(unflatten(theta0), X, mults, phi, return_pre=True)
            for z, z0 in zip(pres[:-1], pres0[:-1]):
                assert bool(jnp.all(jnp.sign(z) == jnp.sign(z0))), "kink crossed"

    ok = True
    for k, (err, tol) in checks.items():
        if not (err <= tol):
            ok = False
            print(f"  CHECK FAILED {name}: {k} err={err:.3e} tol={tol:.0e}", file=sys.stderr)

    # ------------------------------------------------------------ tensors
    tensors = {}
    gp = unflatten(g)
    hp = unflatten(hv)
    for i, ((w, b), (vw, vb)) in enumerate(zip(params, vdir)):
        tensors[f"layers.{i}.weight"] = w
        tensors[f"v.layers.{i}.weight"] = vw
        tensors[f"ref.grad.layers.{i}.weight"] = np.asarray(gp[i][0])
        tensors[f"ref.hvp.layers.{i}.weight"] = np.asarray(hp[i][0])
        if b is not None:
            tensors[f"layers.{i}.bias"] = b
            tensors[f"v.layers.{i}.bias"] = vb
            tensors[f"ref.grad.layers.{i}.bias"] = np.asarray(gp[i][1])
            tensors[f"ref.hvp.layers.{i}.bias"] = np.asarray(hp[i][1])
    tensors["x"] = x
    tensors["y"] = y
    tensors["ref.loss"] = np.array([float(loss)])
    tensors["ref.vhv"] = np.array([float(vhv)])
    tensors["ref.taylor"] = taylor
    tensors["ref.jvp"] = np.asarray(jvp_out)
    tensors["ref.ntk_trace"] = np.array([ntk_trace])
    tensors["ref.hessian_eigenvalues"] = eig
    tensors["ref.hessian_trace"] = np.array([htrace])
    tensors = {k: np.ascontiguousarray(np.asarray(v, dtype=np.float64)) for k, v in tensors.items()}

    pre_min = min_abs_hidden_pre(params, x, mults, phi)
    _, pres = forward([(jnp.asarray(w), None if b is None else jnp.asarray(b)) for w, b in params],
                      X, mults, phi, return_pre=True)
    pre_std = [float(jnp.std(z)) for z in pres]
    metadata = {
        "activation": spec["activation"],
        "loss": spec["loss"],
        "multipliers": ",".join(repr(m) for m in mults),
        "generator": f"gen_reference.py (jax {jax.__version__}, float64)",
        "widths": ",".join(str(w) for w in spec["widths"]),
        "seed": str(seed),
    }
    summary = dict(P=P, n=n, loss=float(loss), vhv=float(vhv), taylor=taylor,
                   ntk_trace=ntk_trace, eig_min=float(eig[0]), eig_max=float(eig[-1]),
                   htrace=htrace, grad_norm=float(jnp.linalg.norm(g)),
                   pre_std=pre_std, pre_min_abs=pre_min, seed=seed, checks=checks, ok=ok)
    return tensors, metadata, summary


CASES = {
    "tanh_mse_bias": dict(widths=[4, 6, 5, 3], activation="tanh", loss="mse", bias=True,
                          multipliers=[0.7, 1.3, 0.5], n=6, scale=1.5, seed=1001),
    "gelu_ce_bias": dict(widths=[5, 7, 4], activation="gelu", loss="cross_entropy", bias=True,
                         multipliers=[1.0, 0.6], n=7, scale=1.5, seed=2002),
    "silu_logistic_nobias": dict(widths=[6, 5, 5, 1], activation="silu", loss="logistic",
                                 bias=False, multipliers=[1.2, 0.8, 1.5], n=8, scale=1.5,
                                 seed=3003),
    "relu_mse_nobias": dict(widths=[4, 8, 2], activation="relu", loss="mse", bias=False,
                            multipliers=[1.0, 1.0], n=6, scale=1.4, seed=4004),
    "leaky_mse_mean_all_bias": dict(widths=[3, 6, 4], activation="leaky_relu:0.1",
                                    loss="mse_mean_all", bias=True, multipliers=[0.9, 1.1],
                                    n=5, scale=1.4, seed=5005),
    "identity_mse_bias": dict(widths=[3, 4, 2], activation="identity", loss="mse", bias=True,
                              multipliers=[1.0, 1.0], n=5, scale=1.0, seed=6006),
}


def main():
    all_ok = True
    for name, spec in CASES.items():
        tensors, metadata, s = compute_case(name, spec)
        all_ok &= s["ok"]
        path = os.path.join(OUT_DIR, f"ref_{name}.safetensors")
        save_file(tensors, path, metadata=metadata)
        print(f"== {name}  (P={s['P']}, n={s['n']}, seed={s['seed']}) -> {os.path.basename(path)} "
              f"[{os.path.getsize(path)} B]  {'OK' if s['ok'] else 'CHECKS FAILED'}")
        print(f"   loss={s['loss']:.17g}  |grad|={s['grad_norm']:.6g}  vhv={s['vhv']:.17g}")
        print(f"   taylor=[{', '.join(f'{c:.17g}' for c in s['taylor'])}]")
        print(f"   ntk_trace={s['ntk_trace']:.17g}  hessian_trace={s['htrace']:.17g}")
        print(f"   eig_min={s['eig_min']:.17g}  eig_max={s['eig_max']:.17g}")
        print(f"   pre-activation std per layer={[round(v, 3) for v in s['pre_std']]}  "
              f"min|hidden pre|={s['pre_min_abs']:.3g}")
        print("   checks: " + ", ".join(f"{k}={e:.1e}" for k, (e, _) in s["checks"].items()))

        if name == "tanh_mse_bias":
            meta32 = dict(metadata)
            meta32["generator"] = (f"gen_reference.py (jax {jax.__version__}, float64 "
                                   f"references cast to float32)")
            t32 = {k: v.astype(np.float32) for k, v in tensors.items()}
            path32 = os.path.join(OUT_DIR, f"ref_{name}_f32.safetensors")
            save_file(t32, path32, metadata=meta32)
            print(f"== {name}_f32 -> {os.path.basename(path32)} [{os.path.getsize(path32)} B] "
                  f"(float32 cast of the above)")
    if not all_ok:
        print("SOME SANITY CHECKS FAILED", file=sys.stderr)
        sys.exit(1)
    print("all sanity checks passed")


if __name__ == "__main__":
    main()
