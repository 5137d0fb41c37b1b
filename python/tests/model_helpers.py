"""Shared by the bundled model tests: a loaded model, and one input's result."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from tandem.models import PaymentModel

M = TypeVar("M", bound=PaymentModel)

#: A payment every bundled model should decline: large, gift cards, at 3 am, abroad, on a
#: day-old card used eight times in the hour.
HIGH_RISK = {
    "amount": 1200,
    "merchant_category": "gift_cards",
    "country_mismatch": True,
    "hour": 3,
    "velocity_1h": 8,
    "card_age_days": 1,
}


def loaded(model: M) -> M:
    """The model after ``load()`` and ``warm()``, as a serve worker has it."""
    model.load()
    model.warm()
    return model


def score(model: PaymentModel, value: Any) -> Any:
    """The model's result for one input (a JSON-able value), through ``prepare``."""
    return model.predict_batch([model.prepare(json.dumps(value).encode(), {})])[0]
