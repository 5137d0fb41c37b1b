"""The gateway's inference service: tandem's risk model over ``inference.InferenceService``.

    python -m tandem serve inference:app --port 50051 --workers 2

``GATEWAY_INFERENCE_DELAY_MS`` (default 0) adds a delay to every prediction, to benchmark the
gateway with a slow Python dependency.
"""

from __future__ import annotations

import os
import time
from typing import Any

import tandem
from tandem.models import Registry, RiskModel

app = tandem.App("gateway-inference")

_DELAY_S = float(os.environ.get("GATEWAY_INFERENCE_DELAY_MS", "0")) / 1000.0


class SlowableRiskModel(RiskModel):
    """The risk model, optionally slowed down by ``GATEWAY_INFERENCE_DELAY_MS``."""

    def predict_batch(self, inputs: list[Any]) -> list[Any]:
        if _DELAY_S > 0:
            time.sleep(_DELAY_S)
        return super().predict_batch(inputs)


models = Registry([SlowableRiskModel()])
