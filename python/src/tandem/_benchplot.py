"""Draws ``tandem bench --all --plot FILE.png``: p50/p99 and calls/s per transport.

``python -m tandem._benchplot FILE.png`` reads the ``tandem bench --all --json`` object on stdin.
Needs matplotlib (``pip install 'tandem[reports]'``); exits 3 with that advice without it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

EXIT_NO_MATPLOTLIB = 3


def draw(result: dict[str, Any], path: str) -> None:
    """Writes a PNG of ``result`` (the ``bench --all --json`` object) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["transports"]
    levels: list[int] = result["concurrency"]
    fig, (lat, thr) = plt.subplots(1, 2, figsize=(12, 4.8))
    width = 0.8 / (2 * len(levels))
    for i, c in enumerate(levels):
        for j, (field, label) in enumerate((("p50_us", "p50"), ("p99_us", "p99"))):
            xs, ys = [], []
            for k, row in enumerate(rows):
                run = next((r for r in row["runs"] if r["concurrency"] == c), None)
                if run is not None:
                    xs.append(k + (2 * i + j) * width - 0.4 + width / 2)
                    ys.append(run[field] / 1000.0)
            lat.bar(xs, ys, width, label=f"{label} @ concurrency {c}")
        xs, ys = [], []
        for k, row in enumerate(rows):
            run = next((r for r in row["runs"] if r["concurrency"] == c), None)
            if run is not None:
                xs.append(k + i * 0.8 / len(levels) - 0.4 + 0.4 / len(levels))
                ys.append(run["throughput_per_s"])
        thr.bar(xs, ys, 0.8 / len(levels), label=f"concurrency {c}")
    names = [r["transport"] for r in rows]
    for ax in (lat, thr):
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names)
        ax.set_yscale("log")
        ax.legend(fontsize="small")
        ax.grid(axis="y", alpha=0.3)
    lat.set_ylabel("latency, ms (log)")
    lat.set_title("latency per call")
    thr.set_ylabel("calls/s (log)")
    thr.set_title("throughput")
    rec = result.get("recommendation", {}).get("transport", "?")
    fig.suptitle(
        f"tandem bench --all: {result['app']} {result['method']}, "
        f"{result['payload_bytes']} B payload; recommendation: {rec}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str]) -> int:
    """``python -m tandem._benchplot FILE.png`` with the JSON object on stdin."""
    if len(argv) != 1:
        sys.stderr.write("usage: python -m tandem._benchplot FILE.png < bench-all.json\n")
        return 2
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        sys.stderr.write(
            f"matplotlib is not installed in {sys.executable}: "
            "pip install 'tandem[reports]' (make setup does), or pass --python\n"
        )
        return EXIT_NO_MATPLOTLIB
    try:
        result = json.load(sys.stdin)
        draw(result, argv[0])
    except (ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"not a tandem bench --all --json object: {exc!r}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"cannot write {argv[0]}: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
