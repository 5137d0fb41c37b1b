"""The Python side of the grpc-inference example: a payment risk service.

    python -m tandem serve service:app --port 50051 --workers 2

serves ``tandem.v1.Call`` (the handlers below) and ``inference.InferenceService`` (the models
in ``models``) in two processes sharing port 50051.
"""

from __future__ import annotations

from typing import Any

import tandem
from tandem.models import Registry, RiskModel

app = tandem.App("payments-risk")

# The InferenceService serves every model of the module's `models` registry.
models = Registry([RiskModel()])

_rules = {"blocked_countries": {"KP", "IR"}}


@app.handler("rules.check")
def check_rules(payment: dict[str, Any], ctx: tandem.Context) -> dict[str, Any]:
    """A hand-written rule next to the model: block sanctioned countries outright."""
    if not isinstance(payment, dict):
        raise tandem.BadRequest("rules.check expects a payment object")
    country = str(payment.get("ip_country", ""))
    blocked = country in _rules["blocked_countries"]
    ctx.logger.info("rules.check country=%s blocked=%s", country, blocked)
    return {"blocked": blocked, "reason": f"country {country}" if blocked else None}
