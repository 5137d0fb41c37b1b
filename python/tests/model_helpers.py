"""Shared by the bundled model tests: a loaded model, and one input's result."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from tandem.models import PaymentModel

M = TypeVar("M", bound=PaymentModel)


def loaded(model: M) -> M:
    """The model after ``load()`` and ``warm()``, as a serve worker has it."""
    model.load()
    model.warm()
    return model


def score(model: PaymentModel, value: Any) -> Any:
    """The model's result for one input (a JSON-able value), through ``prepare``."""
    return model.predict_batch([model.prepare(json.dumps(value).encode(), {})])[0]
