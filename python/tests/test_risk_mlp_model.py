"""The bundled MLP risk model: loads, deterministic, batch = one by one, clear input errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from model_helpers import HIGH_RISK, loaded, score

from tandem.models import RiskMlpModel, RiskModel
from tandem.models.payments import FEATURES, example_payments
from tandem.models.train import DEFAULT_SEED, train_mlp, write_npz

pytestmark = pytest.mark.timeout(60)

LOW = {"amount": 20, "merchant_category": "grocery", "card_present": True, "hour": 13}


@pytest.fixture(scope="module")
def model() -> RiskMlpModel:
    return loaded(RiskMlpModel())


def test_bundled_weights_load_and_rank_risk(model: RiskMlpModel) -> None:
    assert tuple(model.meta["features"]) == FEATURES
    assert model.meta["hidden"] == [1024, 1024]
    assert model.meta["metrics"]["holdout_auc"] > 0.85
    low, high = score(model, LOW), score(model, HIGH_RISK)
    assert set(high) == {"risk", "decision", "confidence", "model", "version"}
    assert high["model"] == "risk_mlp" and high["version"] == "1"
    assert low["decision"] == "approve" and high["decision"] == "decline"
    assert high["risk"] > 0.6 > 0.05 > low["risk"]
    assert high["confidence"] == pytest.approx(max(high["risk"], 1 - high["risk"]), abs=1e-6)


def test_agrees_with_the_logistic_model_on_decisions(model: RiskMlpModel) -> None:
    lr = RiskModel()
    lr.load()
    items = [model.prepare(json.dumps(p).encode(), {}) for p in example_payments(200)]
    mlp_risk = np.array([r["risk"] for r in model.predict_batch(items)])
    lr_risk = np.array([r["risk"] for r in lr.predict_batch(items)])
    assert np.corrcoef(mlp_risk, lr_risk)[0, 1] > 0.9


def test_is_deterministic(model: RiskMlpModel) -> None:
    items = [model.prepare(json.dumps(p).encode(), {}) for p in example_payments(64)]
    other = RiskMlpModel()
    other.load()
    first = model.predict_batch(items)
    assert model.predict_batch(items) == first
    assert other.predict_batch(items) == first


def test_a_batch_scores_like_one_by_one(model: RiskMlpModel) -> None:
    items = [model.prepare(json.dumps(p).encode(), {}) for p in example_payments(64)]
    batched = model.predict_batch(items)
    single = [model.predict_batch([item])[0] for item in items]
    np.testing.assert_allclose(
        [r["risk"] for r in batched], [r["risk"] for r in single], rtol=1e-4, atol=1e-5
    )
    assert [r["decision"] for r in batched] == [r["decision"] for r in single]
    listed = score(model, example_payments(3))
    assert [r["risk"] for r in listed] == pytest.approx([r["risk"] for r in batched[:3]], abs=1e-5)


def test_stream_of_a_list_ends_with_a_summary(model: RiskMlpModel) -> None:
    *results, summary = list(
        model.stream(model.prepare(json.dumps(example_payments(4)).encode(), {}))
    )
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert summary["count"] == 4 and sum(summary["decisions"].values()) == 4


def test_training_is_deterministic_and_loadable(tmp_path: Path) -> None:
    first = train_mlp(DEFAULT_SEED, n=3000, hidden=32, epochs=1)
    again = train_mlp(DEFAULT_SEED, n=3000, hidden=32, epochs=1)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    write_npz(a, *first)
    write_npz(b, *again)
    assert a.read_bytes() == b.read_bytes()
    other = train_mlp(DEFAULT_SEED + 1, n=3000, hidden=32, epochs=1)
    assert not np.array_equal(other[1]["w2"], first[1]["w2"])
    assert first[1]["w2"].dtype == np.float16 and first[0]["hidden"] == [32, 32]
    small = RiskMlpModel(weights=a)
    small.load()
    assert 0.0 < score(small, HIGH_RISK)["risk"] < 1.0


def test_weights_for_other_features_are_refused(tmp_path: Path) -> None:
    meta, arrays = train_mlp(DEFAULT_SEED, n=1000, hidden=8, epochs=1)
    write_npz(tmp_path / "w.npz", {**meta, "features": ["amount"]}, arrays)
    with pytest.raises(ValueError, match="regenerate them"):
        RiskMlpModel(weights=tmp_path / "w.npz").load()


def test_served_layout_matches_the_training_forward_pass(model: RiskMlpModel) -> None:
    from tandem.models.risk_mlp import _Network, forward, read_weights

    _, arrays = read_weights(
        (Path(__file__).parents[1] / "src/tandem/models/data/risk_mlp_v1.npz").read_bytes()
    )
    net = _Network(arrays)
    z = np.random.default_rng(1).standard_normal((64, len(FEATURES)))
    for n in (1, 2, 3, 4, 17, 64):
        np.testing.assert_allclose(net.logits(z[:n]), forward(arrays, z[:n]), rtol=1e-4, atol=1e-4)
