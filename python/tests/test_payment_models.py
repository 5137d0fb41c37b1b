"""Input validation shared by the bundled payment models: the same clear error from each."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tandem.errors import BadRequest
from tandem.models import RiskMlpModel, RiskModel, RiskSeqModel
from tandem.models.payments import PaymentModel

HISTORY = {"amount": [5.0], "merchant_category": ["fuel"], "minutes_ago": [60]}


def as_input(model: PaymentModel, payment: Any) -> Any:
    """The model's input around a payment (or a list of them): risk_seq's adds a history."""
    if not isinstance(model, RiskSeqModel):
        return payment
    if isinstance(payment, list):
        return [as_input(model, p) for p in payment]
    return {"payment": payment, "history": HISTORY}


@pytest.mark.parametrize(
    ("payment", "words"),
    [
        ({"merchant_category": "fuel"}, "missing required field 'amount'"),
        ({"amount": "12", "merchant_category": "fuel"}, "amount must be a finite number"),
        ({"amount": -1, "merchant_category": "fuel"}, "amount must be >= 0"),
        ({"amount": 1, "merchant_category": "fuel", "hour": 24}, "hour must be in 0..23"),
        ({"amount": 1}, "merchant_category None is unknown"),
        ([], "payment list is empty"),
        ([{"amount": 1, "merchant_category": "fuel"}, 3], "payment[1] must be a JSON object"),
    ],
)
@pytest.mark.parametrize(
    "model", [RiskModel(), RiskMlpModel(), RiskSeqModel()], ids=lambda m: m.name
)
def test_bad_payments_are_rejected_with_the_model_and_the_field(
    model: PaymentModel, payment: Any, words: str
) -> None:
    with pytest.raises(BadRequest) as err:
        model.prepare(json.dumps(as_input(model, payment)).encode(), {})
    assert str(err.value).startswith(f"{model.name} model: ") and words in str(err.value)
    with pytest.raises(BadRequest) as lr_err:
        RiskModel().prepare(json.dumps(payment).encode(), {})
    assert str(lr_err.value) == str(err.value).replace(f"{model.name} model: ", "risk model: ", 1)
