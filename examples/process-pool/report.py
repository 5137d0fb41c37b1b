"""A one-shot script: sorts the numbers it is given and sums them.

Run by ``tandem::process::Script`` (or ``tandem call script:report.py main '[3, 1, 2]'``).
"""

from __future__ import annotations

import tandem


@tandem.script
def main(data: list[float]) -> dict[str, object]:
    print("building the report")  # goes to stderr: stdout carries only the answer
    return {"sorted": sorted(data), "total": sum(data)}
