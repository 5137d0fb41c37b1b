"""Trains the bundled risk model: ``python -m tandem.models.train [--out PATH] [--seed N]``.

It generates a synthetic transactions data set (fixed seed, so the output is reproducible),
fits an L2-regularised logistic regression with Newton's method, and writes the weights, the
standardisation, the thresholds and hold-out metrics as JSON. Rounded to 6 significant digits,
the file is identical on every run with the same seed.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from .risk import CATEGORIES, FEATURES, featurize

__all__ = ["DEFAULT_SEED", "generate", "main", "train"]

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


def _round(values: Any) -> list[float]:
    return [float(f"{v:.6g}") for v in values]


def train(seed: int = DEFAULT_SEED, n: int = DEFAULT_SAMPLES) -> dict[str, Any]:
    """Generates the data set, fits the model and returns the weights file's content."""
    import numpy as np

    raw, y = generate(n, seed)
    x = featurize(raw)
    split = int(n * 0.8)
    mean = x[:split].mean(axis=0)
    std = x[:split].std(axis=0)
    std[std == 0] = 1.0
    z = (x - mean) / std
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


def dumps(spec: dict[str, Any]) -> str:
    """The weights file's text (stable key order, one trailing newline)."""
    return json.dumps(spec, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Trains and writes the weights file; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m tandem.models.train", description=__doc__)
    default_out = Path(__file__).parent / "data" / "risk_v1.json"
    parser.add_argument("--out", type=Path, default=default_out, help="weights file to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="data set seed")
    parser.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, help="data set size")
    args = parser.parse_args(argv)
    spec = train(args.seed, args.samples)
    args.out.write_text(dumps(spec))
    log.info("wrote %s (holdout AUC %.4f)", args.out, spec["metrics"]["holdout_auc"])
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
