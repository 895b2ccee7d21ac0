#!/usr/bin/env python3
"""Step-by-step reference of full-batch gradient descent on a small CNN (JAX, float64),
for eos's `train_reference` test (crates/train/tests/train_reference.rs).

Run from the repository root:

    /tmp/jaxnet/bin/python crates/train/tests/data/gen_train_reference.py

(venv: python3 -m venv /tmp/jaxnet && /tmp/jaxnet/bin/pip install "jax[cpu]" numpy safetensors)

Writes, next to this script:
  train_ref_init.safetensors    an eos-net/1 file: metadata format/model/loss, the
                                batch x [12, 1, 4, 4], y [12, 3] and the initial
                                weights under their eos-net/1 names. eos reads it twice:
                                as `[data] kind = "file"` (x, y) and as
                                `model.init_from` (the weights).
  train_ref_values.safetensors  JAX's loss [STEPS] and sharpness [STEPS] (the largest
                                eigenvalue of the dense Hessian, numpy eigvalsh) at
                                theta_t, t = 0 .. STEPS-1, with theta_{t+1} = theta_t -
                                LR grad L(theta_t).

The network is implemented here from the formulas in the headers of
crates/model/src/net/{conv2d,act,pool,flatten,dense}.rs, without any eos code:
  conv2d    y[n,o,i,j] = sum_{c,a,b} W[o,c,a,b] xpad[n,c,i+a,j+b] + b[o]   (padding 1)
  act       tanh
  avgpool2d mean of each 2 x 2 window, stride 2
  flatten   row-major [n, C, H, W] -> [n, C*H*W]
  dense     y = x W^T + b
  loss      mse: mean over samples of 1/2 ||f - y||^2
Everything is deterministic (numpy seed 20261207; JAX only differentiates).
"""

import json
import os
import struct

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
STEPS = 30
LR = 0.5
N, C, H = 12, 1, 4
K = 3  # classes
LAYERS = [
    {"type": "conv2d", "out": 3, "kernel": 3, "padding": 1},
    {"type": "act", "fn": "tanh"},
    {"type": "avgpool2d", "kernel": 2},
    {"type": "flatten"},
    {"type": "dense", "out": K},
]
NAMES = ["layers.0.weight", "layers.0.bias", "layers.4.weight", "layers.4.bias"]


def forward(p, x):
    w, b, v, c = p
    xp = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    n, _, h, _ = x.shape
    y = jnp.zeros((n, w.shape[0], h, h))
    for a in range(3):
        for bb in range(3):
            patch = xp[:, :, a:a + h, bb:bb + h]  # [n, C, h, h]
            y = y + jnp.einsum("nchw,oc->nohw", patch, w[:, :, a, bb])
    y = jnp.tanh(y + b[None, :, None, None])
    y = y.reshape(n, y.shape[1], h // 2, 2, h // 2, 2).mean(axis=(3, 5))
    y = y.reshape(n, -1)
    return y @ v.T + c


def loss(p, x, y):
    f = forward(p, x)
    return jnp.mean(0.5 * jnp.sum((f - y) ** 2, axis=1))


def flat(p):
    return jnp.concatenate([t.reshape(-1) for t in p])


def unflat(v, like):
    out, o = [], 0
    for t in like:
        out.append(v[o:o + t.size].reshape(t.shape))
        o += t.size
    return out


def save_file(tensors, path, metadata):
    """Byte-deterministic safetensors writer (tensors sorted, metadata keys sorted)."""
    header = {"__metadata__": dict(sorted(metadata.items()))}
    off, blobs = 0, []
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype=np.float64)
        raw = a.tobytes()
        header[name] = {"dtype": "F64", "shape": list(a.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    rng = np.random.default_rng(20261207)
    x = rng.standard_normal((N, C, H, H))
    y = np.eye(K)[rng.integers(0, K, N)]
    p = [rng.standard_normal((3, C, 3, 3)) / 3.0, 0.1 * rng.standard_normal(3),
         rng.standard_normal((K, 12)) / np.sqrt(12), 0.1 * rng.standard_normal(K)]
    init = dict(zip(NAMES, p))
    meta = {"format": "eos-net/1", "model": json.dumps(LAYERS), "loss": "mse"}
    save_file({"x": x, "y": y, **init}, os.path.join(OUT_DIR, "train_ref_init.safetensors"),
              meta)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    p = [jnp.asarray(t) for t in p]
    lf = lambda v: loss(unflat(v, p), xj, yj)  # noqa: E731
    grad = jax.jit(jax.grad(lf))
    hess = jax.jit(jax.hessian(lf))
    theta = flat(p)
    losses, sharp = [], []
    for _ in range(STEPS):
        losses.append(float(lf(theta)))
        h = np.asarray(hess(theta))
        assert np.allclose(h, h.T, atol=1e-12), "Hessian not symmetric"
        sharp.append(float(np.linalg.eigvalsh(h)[-1]))
        theta = theta - LR * grad(theta)
    save_file({"loss": np.array(losses), "sharpness": np.array(sharp)},
              os.path.join(OUT_DIR, "train_ref_values.safetensors"),
              {"steps": str(STEPS), "lr": repr(LR)})
    print("loss", losses[0], "->", losses[-1], "sharpness", sharp[0], "->", sharp[-1],
          "2/lr", 2 / LR)


if __name__ == "__main__":
    main()
