"""The report consumer: payments by merchant and currency, as a CSV and a PNG bar chart.

    python -m tandem consume reports:app --redis URL --stream reports --group reports

Task payload: ``{"report_id", "out_dir", "payments": [[id, merchant_id, currency, amount_cents], ...]}``.
The chart uses matplotlib (``pip install 'tandem[reports]'``, Agg backend) when it is installed,
else a tiny pure-Python PNG encoder draws the bars.
"""

from __future__ import annotations

import csv
import struct
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import tandem

app = tandem.App("reports")


@app.handler("payments_report")
def payments_report(task: dict[str, Any], ctx: tandem.Context) -> dict[str, Any]:
    """Writes ``<out_dir>/<report_id>.csv`` and ``.png``; returns their paths and totals."""
    try:
        rid = str(task["report_id"])
        out = Path(str(task["out_dir"]))
        payments = list(task["payments"])
    except (KeyError, TypeError) as exc:
        raise tandem.BadRequest(f"report task is missing a field: {exc}") from None
    if not rid.replace("_", "").isalnum():
        raise tandem.BadRequest(f"report_id must be alphanumeric, got {rid!r}")
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row in payments:
        _pid, merchant, currency, amount = row
        t = totals[(str(merchant), str(currency))]
        t[0] += 1
        t[1] += int(amount)
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"{rid}.csv"
    with csv_path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["merchant_id", "currency", "payments", "amount_cents"])
        for (merchant, currency), (count, amount) in sorted(totals.items()):
            w.writerow([merchant, currency, count, amount])
    png_path = out / f"{rid}.png"
    labels = [f"{m}/{c}" for m, c in sorted(totals)]
    values = [totals[k][1] / 100.0 for k in sorted(totals)]
    _chart(png_path, labels, values)
    ctx.logger.info("report %s: %d payments, %d groups", rid, len(payments), len(totals))
    return {
        "csv": str(csv_path),
        "png": str(png_path),
        "payments": len(payments),
        "groups": len(totals),
    }


def _chart(path: Path, labels: list[str], values: list[float]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        write_bar_png(path, values)
        return
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(labels, values)
    ax.set_ylabel("amount")
    ax.set_title("payments by merchant/currency")
    ax.tick_params(axis="x", rotation=45, labelsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_bar_png(path: Path, values: list[float], width: int = 400, height: int = 200) -> None:
    """A bar chart as an RGB PNG, with nothing but zlib."""
    top = max(values, default=0.0) or 1.0
    n = max(len(values), 1)
    bar = max(width // n, 1)
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")  # filter type: none
        for x in range(width):
            i = x // bar
            h = values[i] / top * (height - 10) if i < len(values) else 0.0
            filled = height - y <= h and x % bar < bar - 1
            row += b"\x1f\x77\xb4" if filled else b"\xff\xff\xff"
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )
