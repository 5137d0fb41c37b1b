"""In-process cost of the bundled risk models: one input per call vs a batch of 64.

Runs each model's ``predict_batch`` on prepared inputs (its ``examples``: payments, or for
risk_seq payments with 64-transaction histories; what a serve worker's batcher calls), with one
BLAS thread as in a serve worker, and prints the time per call and per payment::

    .venv/bin/python bench/model_cost.py [--seconds 1] [--json] [--sweep]
"""

from __future__ import annotations

from tandem.models.blas import limit_blas_threads

limit_blas_threads()  # before numpy is imported, as tandem serve does

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from tandem.models import BUNDLED, PaymentModel  # noqa: E402

BATCHES = (1, 8, 64)


def measure(model: PaymentModel, batch: int, seconds: float) -> float:
    """Median seconds per ``predict_batch`` call of ``batch`` inputs, over about ``seconds``."""
    inputs = [model.prepare(json.dumps(p).encode(), {}) for p in model.examples(batch)]
    for _ in range(3):
        model.predict_batch(inputs)
    samples = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(samples) < 5:
        t = time.perf_counter()
        model.predict_batch(inputs)
        samples.append(time.perf_counter() - t)
    samples.sort()
    return samples[len(samples) // 2]


def run(seconds: float) -> dict[str, dict[str, float]]:
    """``{model: {"1": ms per call, "8": ..., "64": ...}}``."""
    out: dict[str, dict[str, float]] = {}
    for model in (cls() for cls in BUNDLED.values()):
        model.load()
        model.warm()
        out[model.name] = {str(b): 1000 * measure(model, b, seconds) for b in BATCHES}
    return out


def sweep(seconds: float) -> dict[int, dict[str, float]]:
    """The same MLP shape (16 → H → H → 1) with random weights for several widths H: what a
    wider network would cost per call (the cost depends only on the shapes)."""
    import numpy as np
    from tandem.models.risk_mlp import forward

    rng = np.random.default_rng(0)
    out: dict[int, dict[str, float]] = {}
    for h in (512, 1024, 2048, 4096):
        params = {
            "w1": rng.standard_normal((16, h), np.float32),
            "b1": np.zeros(h, np.float32),
            "w2": rng.standard_normal((h, h), np.float32),
            "b2": np.zeros(h, np.float32),
            "w3": rng.standard_normal(h, np.float32),
            "b3": np.float32(0),
        }
        out[h] = {}
        for b in (1, 64):
            z = rng.standard_normal((b, 16))
            forward(params, z)
            samples = []
            end = time.perf_counter() + seconds
            while time.perf_counter() < end or len(samples) < 5:
                t = time.perf_counter()
                forward(params, z)
                samples.append(time.perf_counter() - t)
            samples.sort()
            out[h][str(b)] = 1000 * samples[len(samples) // 2]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seconds", type=float, default=1.0, help="measuring time per row")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument(
        "--sweep", action="store_true", help="also time the MLP's forward pass at other widths"
    )
    args = p.parse_args()
    costs = run(args.seconds)
    widths = sweep(args.seconds) if args.sweep else {}
    if args.json:
        json.dump({"models": costs, "sweep": widths}, sys.stdout)
        return 0
    for name, c in costs.items():
        per = "  ".join(
            f"batch {b}: {c[str(b)]:.3f} ms/call ({1000 * c[str(b)] / b:.1f} us/payment)"
            for b in BATCHES
        )
        print(f"{name:<9} {per}  batch-64 speed-up per payment {c['1'] * 64 / c['64']:.1f}x")
    for h, c in widths.items():
        print(
            f"MLP 16-{h}-{h}-1 forward: batch 1 {c['1']:.3f} ms, batch 64 {c['64']:.3f} ms "
            f"({1000 * c['64'] / 64:.1f} us/payment), batch-64 speed-up per payment "
            f"{c['1'] * 64 / c['64']:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
