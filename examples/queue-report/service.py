"""The Python side of the queue-report example: monthly reports, run by consumers."""

from __future__ import annotations

from typing import Any

import tandem

app = tandem.App("reports")


@app.handler("monthly")
def monthly(payload: dict[str, Any], ctx: tandem.Context) -> dict[str, Any]:
    month = int(payload["month"])
    if not 1 <= month <= 12:
        raise ValueError(f"no month {month}")
    ctx.logger.info("report for month %d (attempt %d)", month, ctx.attempt)
    return {"month": month, "rows": month * 100, "total": month * 1234.5}


@app.handler("archive")
async def archive(payload: str, ctx: tandem.Context) -> None:
    ctx.logger.info("archiving %s", payload)
