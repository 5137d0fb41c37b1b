"""Reconciliation, run once per request by the gateway (``tandem::process::Script``).

Input (JSON on stdin): ``{"csv": "payment_id,amount_cents\\n...", "db": "/path/gateway.sqlite3"}``.
Output: ``{"matched": [...], "mismatched": [{"id", "expected", "actual"}], "missing": [...]}``
where ``missing`` lists ids of the CSV the gateway has no payment for.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from typing import Any

import tandem


@tandem.script
def reconcile(payload: dict[str, Any]) -> dict[str, Any]:
    """Compares the settlement CSV with the gateway's payments (read-only)."""
    text = payload.get("csv")
    if not isinstance(text, str):
        raise tandem.BadRequest("reconcile expects {'csv': str, 'db': str}")
    rows: dict[str, int] = {}
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or row[0].strip() in ("", "payment_id", "id"):
            continue
        if len(row) < 2:
            raise tandem.BadRequest(f"line {n}: expected 'payment_id,amount_cents', got {row!r}")
        try:
            rows[row[0].strip()] = int(row[1].strip())
        except ValueError:
            raise tandem.BadRequest(
                f"line {n}: amount_cents must be an integer, got {row[1]!r}"
            ) from None
    conn = sqlite3.connect(f"file:{payload['db']}?mode=ro", uri=True)
    try:
        matched: list[str] = []
        mismatched: list[dict[str, Any]] = []
        missing: list[str] = []
        for pid, amount in rows.items():
            found = conn.execute(
                "SELECT amount_cents FROM payments WHERE id = ?", (pid,)
            ).fetchone()
            if found is None:
                missing.append(pid)
            elif found[0] == amount:
                matched.append(pid)
            else:
                mismatched.append({"id": pid, "expected": found[0], "actual": amount})
    finally:
        conn.close()
    return {"matched": matched, "mismatched": mismatched, "missing": missing}
