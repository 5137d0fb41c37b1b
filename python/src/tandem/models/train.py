"""Trains the bundled risk models: ``python -m tandem.models.train [--model risk|risk_mlp|risk_seq|all]``.

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
* ``risk_seq``: generates synthetic cards with histories (:func:`generate_sequences`: card
  testing, account takeover, velocity bursts and benign look-alikes on top of the payment
  signals above), trains a 2-layer GRU (32 units) with Adam and backpropagation through time
  (float32, seeded, one BLAS thread) and writes ``data/risk_seq_v1.npz`` the same way, with
  the hold-out AUC of a logistic regression fitted to the same payments without their
  histories beside its own. About 40 s on one core.
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
from .history import HISTORY_LENGTH
from .payments import CATEGORIES, FEATURES, featurize, sigmoid

__all__ = [
    "DEFAULT_SEED",
    "generate",
    "generate_sequences",
    "main",
    "train",
    "train_mlp",
    "train_seq",
    "write_npz",
]

DEFAULT_SEED = 20260101
DEFAULT_SAMPLES = 40_000

log = logging.getLogger("tandem.models.train")

# Ground truth of the synthetic world: how each category shifts the fraud log-odds.
_CATEGORY_EFFECT = (0.0, 0.2, -0.1, 0.6, 0.9, 1.1, 1.6, 1.9)
_CATEGORY_SHARE = (0.25, 0.15, 0.2, 0.1, 0.1, 0.08, 0.07, 0.05)
_CATEGORY_AMOUNT = (3.2, 3.6, 3.3, 5.5, 5.0, 3.0, 4.0, 5.2)
_HOUR_WEIGHTS = (1, 0.6, 0.4, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4, 5, *[5] * 8, 4, 3, 2, 1.5)


def _hour_p() -> Any:
    """The probability of each hour of the day for a payment."""
    import numpy as np

    weights = np.asarray(_HOUR_WEIGHTS)
    return weights / weights.sum()


def generate(n: int, seed: int) -> tuple[Any, Any]:
    """Synthetic payments (an ``(n, 7)`` array in RAW_FIELDS order) and fraud labels."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cat = rng.choice(len(CATEGORIES), size=n, p=_CATEGORY_SHARE)
    amount = rng.lognormal(np.asarray(_CATEGORY_AMOUNT)[cat], 1.0)
    hour = rng.choice(24, size=n, p=_hour_p()).astype(np.float64)
    mismatch = (rng.random(n) < 0.06).astype(np.float64)
    velocity = rng.poisson(0.8, size=n).astype(np.float64)
    age = np.floor(rng.exponential(400.0, size=n))
    present = (rng.random(n) < np.where(cat < 3, 0.7, 0.15)).astype(np.float64)
    raw = np.column_stack([amount, cat.astype(np.float64), mismatch, hour, velocity, age, present])
    label = (rng.random(n) < sigmoid(_payment_logit(raw))).astype(np.float64)
    return raw, label


def _payment_logit(raw: Any) -> Any:
    """The ground-truth fraud log-odds of payments (rows in RAW_FIELDS order), by their own
    fields."""
    import numpy as np

    amount, cat, mismatch, hour, velocity, age, present = (raw[:, i] for i in range(7))
    return (
        -5.0
        + 0.45 * (np.log1p(amount) - 3.5)
        + np.asarray(_CATEGORY_EFFECT)[cat.astype(np.int64)]
        + 1.8 * mismatch
        + 1.0 * (hour < 6)
        + 0.7 * np.log1p(velocity)
        - 0.5 * (np.log1p(age) - 5.0)
        + 0.9 * (age < 30)
        - 1.2 * present
    )


def _auc(scores: Any, labels: Any) -> float:
    import numpy as np

    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _standardise(raw: Any) -> tuple[Any, Any, Any, int]:
    """Payments' features (rows in RAW_FIELDS order) standardised on the first 80 %, the
    training part: ``(z, mean, std, split)``."""
    x = featurize(raw)
    split = int(len(x) * 0.8)
    mean = x[:split].mean(axis=0)
    std = x[:split].std(axis=0)
    std[std == 0] = 1.0
    return (x - mean) / std, mean, std, split


def _standardised(n: int, seed: int) -> tuple[Any, Any, Any, Any, int]:
    """The data set's features standardised on its training part: ``(z, y, mean, std, split)``."""
    raw, y = generate(n, seed)
    z, mean, std, split = _standardise(raw)
    return z, y, mean, std, split


def _metrics(holdout: Any, y: Any, split: int) -> dict[str, float]:
    """The fraud rate of labels ``y`` and the AUC of ``holdout`` scores on ``y[split:]``."""
    return {
        "fraud_rate": float(f"{float(y.mean()):.6g}"),
        "holdout_auc": float(f"{_auc(holdout, y[split:]):.6g}"),
    }


def _round(values: Any) -> list[float]:
    return [float(f"{v:.6g}") for v in values]


def _fit_logistic(z: Any, y: Any) -> Any:
    """L2-regularised logistic regression by Newton's method: ``[bias, *weights]``."""
    import numpy as np

    xt = np.column_stack([np.ones(len(z)), z])
    beta = np.zeros(xt.shape[1])
    ridge = 1e-2 * np.eye(xt.shape[1])
    ridge[0, 0] = 0.0
    for _ in range(25):
        p = sigmoid(xt @ beta)
        grad = xt.T @ (p - y) + ridge @ beta
        hess = (xt * (p * (1 - p))[:, None]).T @ xt + ridge
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return beta


def train(seed: int = DEFAULT_SEED, n: int = DEFAULT_SAMPLES) -> dict[str, Any]:
    """Generates the data set, fits the model and returns the weights file's content."""

    z, y, mean, std, split = _standardised(n, seed)
    beta = _fit_logistic(z[:split], y[:split])
    holdout = sigmoid(z[split:] @ beta[1:] + beta[0])
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
        "metrics": _metrics(holdout, y, split),
    }


class _Adam:
    """Adam (β₁ 0.9, β₂ 0.999, ε 1e-8) updating the float32 arrays of ``params`` in place."""

    def __init__(self, params: dict[str, Any], lr: float) -> None:
        import numpy as np

        self.params, self.lr, self.t = params, lr, 0
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}

    def step(self, grads: dict[str, Any]) -> None:
        """One update by these gradients."""
        import numpy as np

        b1, b2, eps = 0.9, 0.999, 1e-8
        self.t += 1
        m, v, p, t = self.m, self.v, self.params, self.t
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            step = self.lr * (m[k] / (1 - b1**t)) / (np.sqrt(v[k] / (1 - b2**t)) + eps)
            p[k] = (p[k] - step).astype(np.float32)


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
    adam = _Adam(p, lr)
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
            dlogit = (sigmoid(out) - yb) / np.float32(len(idx))
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
            adam.step(grads)
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
        "metrics": _metrics(holdout, y64, split),
    }
    return meta, arrays


# The sequence data set. Each card has habits (two favourite categories, an amount scale, a
# purchase rhythm of about daily gaps around its usual hour, travellers abroad often), and some
# cards end in a fraud pattern that only the history shows in full. The patterns and their share:
_NORMAL, _TESTING, _TAKEOVER, _BURST = range(4)
_PATTERN_SHARE = (0.925, 0.025, 0.025, 0.025)
# How much each pattern adds to the ground-truth log-odds of the current payment.
_PATTERN_EFFECT = (0.0, 5.0, 4.5, 4.0)
# gaming, gift_cards, crypto: where card testers try a stolen card with tiny amounts.
_DIGITAL = (5, 6, 7)
# travel, electronics, gift_cards, crypto: what a fraudster buys with a taken-over account.
_RESALE = (3, 4, 6, 7)
# A run of transactions that ends a history: how many before the current payment (low, high),
# how many minutes apart (low, high), P(card present), P(country mismatch).
_Tail = tuple[tuple[int, int], tuple[float, float], float, float]
_BENIGN = 4  # a benign burst: a shopping trip, several purchases within the hour
_TAILS: dict[int, _Tail] = {
    _TESTING: ((3, 9), (1.0, 30.0), 0.0, 0.1),
    _TAKEOVER: ((0, 4), (5.0, 45.0), 0.0, 0.6),
    _BURST: ((6, 15), (2.0, 6.0), 0.0, 0.3),
    _BENIGN: ((3, 7), (3.0, 15.0), 0.5, 0.02),
}


class _Cards:
    """A batch of synthetic cards: ``(n, length + 1)`` columns, each card's past
    transactions oldest first and its current payment last."""

    def __init__(self, rng: Any, n: int, length: int) -> None:
        import numpy as np

        self.rng, self.n, self.length = rng, n, length
        share = np.asarray(_CATEGORY_SHARE)
        self.fav = rng.choice(len(CATEGORIES), size=(n, 2), p=share)
        self.scale = rng.normal(0.0, 0.4, n)
        rhythm = rng.lognormal(0.0, 0.7, n)  # mean days between purchases
        self.habit = rng.choice(24, size=n, p=_hour_p()) + rng.random(n)
        self.age = np.floor(rng.exponential(400.0, n))
        self.pattern = rng.choice(4, size=n, p=_PATTERN_SHARE)
        self.traveler = (rng.random(n) < 0.15) & (self.pattern != _TAKEOVER)
        self.benign_burst = (rng.random(n) < 0.12) & (self.pattern == _NORMAL)
        shape = (n, length + 1)
        u = rng.random(shape)
        other = rng.choice(len(CATEGORIES), size=shape, p=share)
        self.cat = np.where(u < 0.5, self.fav[:, :1], np.where(u < 0.75, self.fav[:, 1:], other))
        self.amount = self.usual_amount(self.cat, 0.8)
        gaps = 1440.0 * rng.poisson(rhythm[:, None], shape) + np.abs(rng.normal(0.0, 90.0, shape))
        self.minutes = np.cumsum((gaps + 1.0)[:, ::-1], axis=1)[:, ::-1] - (gaps[:, -1:] + 1.0)
        self.mismatch = rng.random(shape) < np.where(self.traveler, 0.4, 0.02)[:, None]
        self.present = rng.random(shape) < np.where(self.cat < 3, 0.7, 0.15)
        self.tail = np.zeros(shape, dtype=bool)

    def usual_amount(self, cat: Any, sigma: float) -> Any:
        """Amounts of the card's habits in categories ``cat`` (a column per step)."""
        import numpy as np

        mu = np.asarray(_CATEGORY_AMOUNT)[cat] + self.scale[:, None]
        return self.rng.lognormal(mu, sigma)

    def hours(self) -> Any:
        """The current payment's hour: about the card's usual hour, else any hour (a
        quarter of cards), at night for most taken-over cards. The past keeps its usual hours:
        its minutes_ago grow by the time from the usual hour to now."""
        import numpy as np

        rng, n = self.rng, self.n
        usual = np.mod(self.habit + rng.normal(0.0, 1.5, n), 24.0)
        hour = np.where(rng.random(n) < 0.75, usual, rng.choice(24, size=n, p=_hour_p()))
        night = (self.pattern == _TAKEOVER) & (rng.random(n) < 0.6)
        hour = np.where(night, rng.uniform(0.0, 6.0, n), hour)
        self.minutes[:, :-1] += 60.0 * np.mod(hour - self.habit, 24.0)[:, None]
        return hour

    def inject(self, cards: Any, amount: Any, cat: Any, tail: _Tail) -> None:
        """Ends the history of ``cards`` with a run of transactions as ``tail`` describes,
        which the current payment continues, with the given amounts and categories (a
        column per step)."""
        import numpy as np

        (low, high), (closest, farthest), present, mismatch = tail
        rng, shape, last = self.rng, self.minutes.shape, self.length
        k = rng.integers(low, high, self.n)
        spacing = rng.uniform(closest, farthest, self.n)
        pos = np.arange(last + 1)
        run = cards[:, None] & (pos >= last - k[:, None])
        span = np.where(cards, k * spacing, 0.0)
        self.minutes = np.where(
            run, (last - pos) * spacing[:, None], self.minutes + span[:, None] * (pos < last)
        )
        self.amount = np.where(run, amount, self.amount)
        self.cat = np.where(run, cat, self.cat)
        self.present = np.where(run, rng.random(shape) < present, self.present)
        self.mismatch = np.where(run, rng.random(shape) < mismatch, self.mismatch)
        self.tail |= run


def _inject_patterns(c: _Cards) -> None:
    """Card testing, account takeover, velocity bursts, and benign bursts (a shopping trip)."""
    import numpy as np

    rng, shape, n = c.rng, c.cat.shape, c.n
    mixed = rng.choice(len(CATEGORIES), size=shape, p=np.asarray(_CATEGORY_SHARE))
    tiny = rng.uniform(0.5, 3.0, shape)
    tiny[:, -1] = rng.lognormal(4.8, 0.8, n)  # then a larger one, anywhere
    digital = rng.choice(_DIGITAL, size=shape)
    digital[:, -1] = mixed[:, -1]
    resale = np.where(rng.random(shape) < 0.6, rng.choice(_RESALE, size=shape), mixed)
    c.inject(c.pattern == _TESTING, tiny, digital, _TAILS[_TESTING])
    c.inject(c.pattern == _TAKEOVER, rng.lognormal(4.8, 0.8, shape), resale, _TAILS[_TAKEOVER])
    c.inject(c.pattern == _BURST, rng.lognormal(4.2, 0.6, shape), mixed, _TAILS[_BURST])
    c.inject(c.benign_burst, c.usual_amount(c.cat, 0.5), c.cat, _TAILS[_BENIGN])


def generate_sequences(n: int, seed: int, length: int = HISTORY_LENGTH) -> tuple[Any, Any, Any]:
    """Synthetic cards: their current payments (``(n, 7)``, RAW_FIELDS order), their
    histories of up to ``length`` transactions (``(n, length, 6)``, as :func:`prepare_history`
    returns them: left-padded) and fraud labels.

    A label is drawn from the log-odds of the single-payment data set (:func:`generate`'s
    ground truth, on the current payment), plus the card's fraud pattern, minus what its
    history explains (a traveller's country mismatch, a benign burst's velocity), plus an
    amount far above the card's usual: so some patterns go unlabelled and some normal
    payments are fraud.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    c = _Cards(rng, n, length)
    hour = c.hours()
    _inject_patterns(c)
    real = (c.minutes < 1440.0 * c.age[:, None]) | c.tail
    real[:, -1] = True
    past = slice(0, length)
    velocity = ((c.minutes[:, past] <= 60.0) & real[:, past]).sum(axis=1)
    now = (c.amount[:, -1], c.cat[:, -1], c.mismatch[:, -1], hour, velocity, c.age)
    payments = np.column_stack([*now, c.present[:, -1]]).astype(np.float64)
    history = [c.amount, c.cat, c.minutes, c.mismatch, c.present, real]
    histories = np.stack([col[:, past] for col in history], axis=2).astype(np.float64)
    histories *= histories[:, :, -1:]
    usual = np.asarray(_CATEGORY_AMOUNT)[c.cat[:, -1]] + c.scale
    logit = (
        _payment_logit(payments)
        + np.asarray(_PATTERN_EFFECT)[c.pattern]
        - 1.8 * (c.traveler & c.mismatch[:, -1])
        - 0.7 * np.log1p(velocity) * c.benign_burst
        + 0.8 * np.clip(np.log(c.amount[:, -1]) - usual - 1.0, 0.0, None)
    )
    labels = (rng.random(n) < sigmoid(logit)).astype(np.float64)
    return payments, histories, labels


def _step_standardisation(payments: Any, histories: Any) -> tuple[Any, Any]:
    """The mean and std of each step feature over the real (not padded) steps."""
    import numpy as np

    from .history import PADDING, STEP_FEATURES, step_features

    total = np.zeros(len(STEP_FEATURES))
    squares = np.zeros(len(STEP_FEATURES))
    count = 0.0
    for at in range(0, len(payments), 4096):
        x = step_features(payments[at : at + 4096], histories[at : at + 4096]).astype(np.float64)
        real = 1.0 - x[:, :, PADDING : PADDING + 1]
        total = total + (x * real).sum(axis=(0, 1))
        squares = squares + (x * x * real).sum(axis=(0, 1))
        count += float(real.sum())
    mean = total / count
    std = np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
    std[std < 1e-9] = 1.0
    return mean, std


def _gru_init(rng: Any, steps: int, payment: int, hidden: int, layers: int) -> dict[str, Any]:
    """Seeded initial weights: scaled normal input and recurrent matrices, zero biases, a
    zero head whose bias is ``payment``-agnostic (set by the caller)."""
    import numpy as np

    p: dict[str, Any] = {}
    inputs = steps
    for i in range(layers):
        p[f"w{i}"] = rng.standard_normal((inputs, 3 * hidden)) / np.sqrt(inputs)
        p[f"b{i}"] = np.zeros(3 * hidden)
        p[f"u{i}"] = rng.standard_normal((hidden, 3 * hidden)) / np.sqrt(hidden)
        inputs = hidden
    p["head_w"] = np.zeros(hidden + payment)
    p["head_b"] = np.zeros(())
    return {k: v.astype(np.float32) for k, v in p.items()}


def _clipped(grads: dict[str, Any], limit: float) -> dict[str, Any]:
    """The gradients scaled down to a global norm of at most ``limit`` (BPTT can spike)."""
    import numpy as np

    norm = float(np.sqrt(sum(float((g * g).sum()) for g in grads.values())))
    if norm <= limit:
        return grads
    return {k: (g * (limit / norm)).astype(g.dtype) for k, g in grads.items()}


def train_seq(
    seed: int = DEFAULT_SEED,
    n: int = DEFAULT_SAMPLES,
    hidden: int = 32,
    layers: int = 2,
    epochs: int = 6,
    batch: int = 128,
    lr: float = 3e-3,
    decay: float = 0.7,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trains the GRU of :class:`~tandem.models.RiskSeqModel` on :func:`generate_sequences`
    (Adam on binary cross-entropy, backpropagation through time, float32, seeded): ``(meta,
    arrays)`` for :func:`write_npz`, the weights stored as float16. The metrics compare it
    with a logistic regression fitted to the same payments without their histories."""
    import numpy as np

    from .gru import layer_names, logits, loss_and_grads
    from .history import STEP_FEATURES, standardize_steps, step_features

    payments, histories, y64 = generate_sequences(n, seed)
    z, mean, std, split = _standardise(payments)
    pay = z.astype(np.float32)
    step_mean, step_std = _step_standardisation(payments[:split], histories[:split])

    def steps(idx: Any) -> Any:
        return standardize_steps(step_features(payments[idx], histories[idx]), step_mean, step_std)

    y = y64.astype(np.float32)
    rng = np.random.default_rng(seed + 2)
    p = _gru_init(rng, len(STEP_FEATURES), len(FEATURES), hidden, layers)
    p["head_b"] = np.asarray(np.log(y[:split].mean() / (1 - y[:split].mean())), np.float32)
    adam = _Adam(p, lr)
    for epoch in range(epochs):
        adam.lr = lr * decay**epoch
        order = rng.permutation(split)
        for at in range(0, split, batch):
            idx = np.sort(order[at : at + batch])
            _, grads = loss_and_grads(p, steps(idx), pay[idx], y[idx])
            adam.step(_clipped(grads, 1.0))
    names = layer_names(layers)
    arrays: dict[str, Any] = {k: p[k].astype(np.float16) for k in names}
    served = {k: arrays[k].astype(np.float32) for k in names}
    held = np.arange(split, n)
    holdout = np.concatenate(
        [logits(served, steps(i), pay[i]) for i in np.array_split(held, max(1, len(held) // 2048))]
    ).astype(np.float64)
    beta = _fit_logistic(pay[:split].astype(np.float64), y64[:split])
    logistic = pay[split:].astype(np.float64) @ beta[1:] + beta[0]
    arrays.update(mean=mean, std=std, step_mean=step_mean, step_std=step_std)
    meta = {
        "schema": 1,
        "model": "risk_seq",
        "version": "1",
        "seed": seed,
        "samples": n,
        "history_length": histories.shape[1],
        "hidden": hidden,
        "layers": layers,
        "epochs": epochs,
        "features": list(FEATURES),
        "step_features": list(STEP_FEATURES),
        "categories": list(CATEGORIES),
        "thresholds": {"review": 0.2, "decline": 0.6},
        "metrics": {
            **_metrics(holdout, y64, split),
            "holdout_auc_logistic": float(f"{_auc(logistic, y64[split:]):.6g}"),
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
        choices=("risk", "risk_mlp", "risk_seq", "all"),
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
        parser.error("--out needs one --model: risk, risk_mlp or risk_seq")
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
    if args.model in ("risk_seq", "all"):
        out = args.out or data / "risk_seq_v1.npz"
        meta, arrays = train_seq(args.seed, args.samples)
        write_npz(out, meta, arrays)
        log.info(
            "wrote %s (holdout AUC %.4f; logistic regression on the same payments %.4f)",
            out,
            meta["metrics"]["holdout_auc"],
            meta["metrics"]["holdout_auc_logistic"],
        )
    return 0


if __name__ == "__main__":
    # One BLAS thread (set before numpy is first imported): the MLP's sums run in one order,
    # so the same seed gives the same weights.
    os.environ.update(dict.fromkeys(BLAS_THREAD_VARS, "1"))
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(main())
