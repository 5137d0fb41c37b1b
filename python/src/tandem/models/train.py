"""Trains the bundled risk models: ``python -m tandem.models.train [--model risk|risk_mlp|all]``.

It generates a synthetic transactions data set (fixed seed, so the output is reproducible) and

* ``risk``: fits an L2-regularised logistic regression with Newton's method, and writes the
  weights, the standardisation, the thresholds and hold-out metrics as JSON
  (``data/risk_v1.json``). Rounded to 6 significant digits, the file is identical on every run
  with the same seed.
* ``risk_mlp``: trains a 16 → 1024 → 1024 → 1 ReLU MLP with Adam on binary cross-entropy
  (float32, seeded initialisation and shuffling, one BLAS thread so the sums run in one order)
  and writes ``data/risk_mlp_v1.npz``: float16 weights, the standardisation, the thresholds and
  hold-out metrics (computed with the float16-rounded weights the model serves). About 20 s on
  one core.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .blas import BLAS_THREAD_VARS
from .payments import CATEGORIES, FEATURES, featurize

__all__ = ["DEFAULT_SEED", "generate", "main", "train", "train_mlp", "write_npz"]

DEFAULT_SEED = 20260101
DEFAULT_SAMPLES = 40_000

log = logging.getLogger("tandem.models.train")

# Ground truth of the synthetic world: how each category shifts the fraud log-odds.
_CATEGORY_EFFECT = (0.0, 0.2, -0.1, 0.6, 0.9, 1.1, 1.6, 1.9)
_CATEGORY_SHARE = (0.25, 0.15, 0.2, 0.1, 0.1, 0.08, 0.07, 0.05)
_CATEGORY_AMOUNT = (3.2, 3.6, 3.3, 5.5, 5.0, 3.0, 4.0, 5.2)


def generate(n: int, seed: int) -> tuple[Any, Any]:
    """Synthetic payments (an ``(n, 7)`` array in RAW_FIELDS order) and fraud labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cat = rng.choice(len(CATEGORIES), size=n, p=_CATEGORY_SHARE)
    amount = rng.lognormal(np.asarray(_CATEGORY_AMOUNT)[cat], 1.0)
    hour_weights = np.asarray(
        [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4, 5] + [5] * 8 + [4, 3, 2, 1.5]
    )
    hour = rng.choice(24, size=n, p=hour_weights / hour_weights.sum()).astype(np.float64)
    mismatch = (rng.random(n) < 0.06).astype(np.float64)
    velocity = rng.poisson(0.8, size=n).astype(np.float64)
    age = np.floor(rng.exponential(400.0, size=n))
    present = (rng.random(n) < np.where(cat < 3, 0.7, 0.15)).astype(np.float64)
    logit = (
        -5.0
        + 0.45 * (np.log1p(amount) - 3.5)
        + np.asarray(_CATEGORY_EFFECT)[cat]
        + 1.8 * mismatch
        + 1.0 * (hour < 6)
        + 0.7 * np.log1p(velocity)
        - 0.5 * (np.log1p(age) - 5.0)
        + 0.9 * (age < 30)
        - 1.2 * present
    )
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float64)
    raw = np.column_stack([amount, cat.astype(np.float64), mismatch, hour, velocity, age, present])
    return raw, label


def _auc(scores: Any, labels: Any) -> float:
    import numpy as np

    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _standardised(n: int, seed: int) -> tuple[Any, Any, Any, Any, int]:
    """The data set's features standardised on its training part: ``(z, y, mean, std, split)``."""
    raw, y = generate(n, seed)
    x = featurize(raw)
    split = int(n * 0.8)
    mean = x[:split].mean(axis=0)
    std = x[:split].std(axis=0)
    std[std == 0] = 1.0
    return (x - mean) / std, y, mean, std, split


def _round(values: Any) -> list[float]:
    return [float(f"{v:.6g}") for v in values]


def train(seed: int = DEFAULT_SEED, n: int = DEFAULT_SAMPLES) -> dict[str, Any]:
    """Generates the data set, fits the model and returns the weights file's content."""
    import numpy as np

    z, y, mean, std, split = _standardised(n, seed)
    xt = np.column_stack([np.ones(split), z[:split]])
    beta = np.zeros(xt.shape[1])
    ridge = 1e-2 * np.eye(xt.shape[1])
    ridge[0, 0] = 0.0
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(xt @ beta)))
        grad = xt.T @ (p - y[:split]) + ridge @ beta
        hess = (xt * (p * (1 - p))[:, None]).T @ xt + ridge
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    holdout = 1.0 / (1.0 + np.exp(-(z[split:] @ beta[1:] + beta[0])))
    return {
        "schema": 1,
        "model": "risk",
        "version": "1",
        "seed": seed,
        "samples": n,
        "features": list(FEATURES),
        "categories": list(CATEGORIES),
        "mean": _round(mean),
        "std": _round(std),
        "weights": _round(beta[1:]),
        "bias": float(f"{beta[0]:.6g}"),
        "thresholds": {"review": 0.2, "decline": 0.6},
        "metrics": {
            "fraud_rate": float(f"{float(y.mean()):.6g}"),
            "holdout_auc": float(f"{_auc(holdout, y[split:]):.6g}"),
        },
    }


def train_mlp(
    seed: int = DEFAULT_SEED,
    n: int = DEFAULT_SAMPLES,
    hidden: int = 1024,
    epochs: int = 3,
    batch: int = 256,
    lr: float = 1e-3,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trains the MLP of :class:`~tandem.models.RiskMlpModel`: ``(meta, arrays)`` for
    :func:`write_npz`, the weights stored as float16."""
    import numpy as np

    from .risk_mlp import PARAMS, forward

    z64, y64, mean, std, split = _standardised(n, seed)
    z = z64.astype(np.float32)
    y = y64.astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    d = z.shape[1]

    def he(fan_in: int, shape: tuple[int, ...]) -> Any:
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    p = {
        "w1": he(d, (d, hidden)),
        "b1": np.zeros(hidden, np.float32),
        "w2": he(hidden, (hidden, hidden)),
        "b2": np.zeros(hidden, np.float32),
        "w3": he(hidden, (hidden,)) * np.float32(0.1),
        "b3": np.asarray(np.log(y[:split].mean() / (1 - y[:split].mean())), np.float32),
    }
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    t = 0
    for _ in range(epochs):
        order = rng.permutation(split)
        for at in range(0, split, batch):
            idx = order[at : at + batch]
            xb, yb = z[idx], y[idx]
            a1 = xb @ p["w1"] + p["b1"]
            h1 = np.maximum(a1, 0.0)
            a2 = h1 @ p["w2"] + p["b2"]
            h2 = np.maximum(a2, 0.0)
            out = h2 @ p["w3"] + p["b3"]
            dlogit = (1.0 / (1.0 + np.exp(-out)) - yb) / np.float32(len(idx))
            da2 = np.outer(dlogit, p["w3"]) * (a2 > 0)
            da1 = (da2 @ p["w2"].T) * (a1 > 0)
            grads = {
                "w3": h2.T @ dlogit,
                "b3": np.asarray(dlogit.sum(), np.float32),
                "w2": h1.T @ da2,
                "b2": da2.sum(axis=0),
                "w1": xb.T @ da1,
                "b1": da1.sum(axis=0),
            }
            t += 1
            for k, g in grads.items():
                m[k] = b1 * m[k] + (1 - b1) * g
                v[k] = b2 * v[k] + (1 - b2) * g * g
                step = lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
                p[k] = (p[k] - step).astype(np.float32)
    arrays: dict[str, Any] = {k: p[k].astype(np.float16) for k in PARAMS}
    served = {k: arrays[k].astype(np.float32) for k in PARAMS}
    holdout = forward(served, z[split:]).astype(np.float64)
    arrays["mean"] = mean
    arrays["std"] = std
    meta = {
        "schema": 1,
        "model": "risk_mlp",
        "version": "1",
        "seed": seed,
        "samples": n,
        "hidden": [hidden, hidden],
        "epochs": epochs,
        "features": list(FEATURES),
        "categories": list(CATEGORIES),
        "thresholds": {"review": 0.2, "decline": 0.6},
        "metrics": {
            "fraud_rate": float(f"{float(y64.mean()):.6g}"),
            "holdout_auc": float(f"{_auc(holdout, y64[split:]):.6g}"),
        },
    }
    return meta, arrays


def write_npz(path: Path, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Writes an ``.npz`` (deflated) that ``numpy.load`` reads, byte-identical for the same
    content: fixed member timestamps, ``meta`` as a JSON string."""
    import zipfile

    import numpy as np

    members = {"meta": np.asarray(json.dumps(meta, sort_keys=True)), **arrays}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in members.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            zf.writestr(info, buf.getvalue())


def dumps(spec: dict[str, Any]) -> str:
    """The weights file's text (stable key order, one trailing newline)."""
    return json.dumps(spec, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Trains and writes the weights file; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tandem.models.train", description=__doc__)
    data = Path(__file__).parent / "data"
    parser.add_argument(
        "--model",
        choices=("risk", "risk_mlp", "all"),
        default="all",
        help="which model to train (default: all)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="weights file to write (with one --model)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data set seed")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="data set size")
    args = parser.parse_args(argv)
    if args.out is not None and args.model == "all":
        parser.error("--out needs --model risk or --model risk_mlp")
    if args.model in ("risk", "all"):
        out = args.out or data / "risk_v1.json"
        spec = train(args.seed, args.samples)
        out.write_text(dumps(spec))
        log.info("wrote %s (holdout AUC %.4f)", out, spec["metrics"]["holdout_auc"])
    if args.model in ("risk_mlp", "all"):
        out = args.out or data / "risk_mlp_v1.npz"
        meta, arrays = train_mlp(args.seed, args.samples)
        write_npz(out, meta, arrays)
        log.info("wrote %s (holdout AUC %.4f)", out, meta["metrics"]["holdout_auc"])
    return 0


if __name__ == "__main__":
    # One BLAS thread (set before numpy is first imported): the MLP's sums run in one order,
    # so the same seed gives the same weights.
    os.environ.update(dict.fromkeys(BLAS_THREAD_VARS, "1"))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
