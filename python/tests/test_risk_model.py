"""The bundled risk model: deterministic training, sensible scores, clear input errors."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from model_helpers import HIGH_RISK, loaded, score

from tandem.models import RiskModel
from tandem.models.train import DEFAULT_SEED, dumps, generate, train

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def model() -> RiskModel:
    return loaded(RiskModel())


def test_training_is_deterministic_and_matches_the_committed_weights() -> None:
    first = train(DEFAULT_SEED, 8000)
    assert dumps(first) == dumps(train(DEFAULT_SEED, 8000))
    assert dumps(first) != dumps(train(DEFAULT_SEED + 1, 8000))
    committed = json.loads((resources.files("tandem.models") / "data" / "risk_v1.json").read_text())
    assert dumps(train()) == dumps(committed)
    assert committed["metrics"]["holdout_auc"] > 0.8


def test_high_risk_payments_score_higher(model: RiskModel) -> None:
    low = score(
        model,
        {
            "amount": 20,
            "merchant_category": "grocery",
            "card_present": True,
            "card_age_days": 2000,
            "hour": 13,
        },
    )
    high = score(model, HIGH_RISK)
    assert low["decision"] == "approve" and high["decision"] == "decline"
    assert high["risk"] > 0.6 > 0.05 > low["risk"]
    assert "country_mismatch" in high["top_factors"]


def test_scores_rank_the_synthetic_fraud_above_the_rest(model: RiskModel) -> None:
    raw, labels = generate(4000, seed=99)
    fields = [
        "amount",
        "merchant_category",
        "country_mismatch",
        "hour",
        "velocity_1h",
        "card_age_days",
        "card_present",
    ]
    from tandem.models.risk import CATEGORIES

    payments = []
    for row in raw:
        p = dict(zip(fields, (float(v) for v in row), strict=True))
        p["merchant_category"] = CATEGORIES[int(row[1])]
        payments.append(p)
    items = [model.prepare(json.dumps(p).encode(), {}) for p in payments]
    risks = [out["risk"] for out in model.predict_batch(items)]
    fraud = [r for r, y in zip(risks, labels, strict=True) if y == 1]
    legit = [r for r, y in zip(risks, labels, strict=True) if y == 0]
    assert sum(fraud) / len(fraud) > 4 * sum(legit) / len(legit)


def test_list_input_scores_each_payment(model: RiskModel) -> None:
    out = score(
        model,
        [
            {"amount": 10, "merchant_category": "fuel"},
            {"amount": 900, "merchant_category": "crypto"},
        ],
    )
    assert len(out) == 2 and out[1]["risk"] > out[0]["risk"]


def test_stream_contributions_add_up_to_the_logit(model: RiskModel) -> None:
    item = model.prepare(json.dumps({"amount": 300, "merchant_category": "travel"}).encode(), {})
    *parts, final = list(model.stream(item))
    total = sum(p["contribution"] for p in parts) + final["bias"]
    assert total == pytest.approx(final["logit"], abs=1e-4)
    assert final["risk"] == score(model, {"amount": 300, "merchant_category": "travel"})["risk"]
