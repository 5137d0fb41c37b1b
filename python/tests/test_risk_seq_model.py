"""The bundled sequence risk model: clear input errors, batch = one by one, deterministic,
better than the logistic model where the history matters, and a correct backward pass."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from model_helpers import loaded, score

from tandem.errors import BadRequest
from tandem.models import RiskModel, RiskSeqModel, gru
from tandem.models.history import HISTORY_COLUMNS, HISTORY_LENGTH, prepare_history
from tandem.models.payments import CATEGORIES, RAW_FIELDS
from tandem.models.train import DEFAULT_SEED, _auc, generate_sequences, train_seq, write_npz

pytestmark = pytest.mark.timeout(60)

PAYMENT = {"amount": 250.0, "merchant_category": "electronics", "hour": 14}
HISTORY = {
    "amount": [30.0, 12.5, 1.0, 2.0],
    "merchant_category": ["grocery", "fuel", "gaming", "gaming"],
    "minutes_ago": [4000, 2900, 9, 4],
    "country_mismatch": [False, False, False, True],
}


@pytest.fixture(scope="module")
def model() -> RiskSeqModel:
    return loaded(RiskSeqModel())


def prepare(model: RiskSeqModel, value: Any) -> Any:
    return model.prepare(json.dumps(value).encode(), {})


def with_history(**columns: Any) -> dict[str, Any]:
    return {"payment": PAYMENT, "history": {**HISTORY, **columns}}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ({"payment": PAYMENT}, "input must be a JSON object like"),
        ([{"payment": PAYMENT, "history": HISTORY}, 3], "input[1] must be a JSON object"),
        ({"payment": PAYMENT, "history": [1, 2]}, "history must be a JSON object of columns"),
        (
            {"payment": PAYMENT, "history": {"amount": [1.0], "merchant_category": ["fuel"]}},
            "history is missing required field 'minutes_ago'",
        ),
        (
            with_history(amount=[1.0, 2.0]),
            "history.merchant_category has 4 values but history.amount has 2",
        ),
        (with_history(card_present=[True]), "history.card_present has 1 values but"),
        (
            with_history(amount=[1.0] * 65, merchant_category=["fuel"] * 65),
            "history.amount has 65 transactions; at most 64 are read",
        ),
        (with_history(amount=[1.0, math.nan, 1.0, 1.0]), "history.amount[1] must be finite"),
        (with_history(amount=[1.0, "2", 1.0, 1.0]), "history.amount must be a list of numbers"),
        (with_history(amount=[1.0, True, 1.0, 1.0]), "amount must be a list of numbers, got True"),
        (with_history(amount=[1.0, 1e400, 1.0, 1.0]), "history.amount[1] must be finite"),
        (
            with_history(amount=[1.0, 10**400, 1.0, 1.0]),
            "history.amount[1] must be finite, got a 401-digit integer",
        ),
        (with_history(amount=[[1.0], [2.0], [3.0], [4.0]]), "history.amount must be a list of"),
        (with_history(amount=5.0), "history.amount must be a list, got float"),
        (with_history(amount=[1.0, -2.0, 1.0, 1.0]), "history.amount[1] must be >= 0"),
        (
            with_history(merchant_category=["grocery", "casino", "fuel", "fuel"]),
            "history.merchant_category[1] 'casino' is unknown (known: grocery",
        ),
        (
            with_history(merchant_category=["grocery", 3, "fuel", "fuel"]),
            "history.merchant_category must be a list of category names, got 3 at [1]",
        ),
        (with_history(minutes_ago=[10, 20, 5, 1]), "history.minutes_ago[1] is 20, more than"),
        (with_history(country_mismatch=["no"] * 4), "country_mismatch must be a list of booleans"),
        (with_history(minutes=[1, 2, 3, 4]), "history has unknown field 'minutes'"),
        ({"payment": {"amount": 1}, "history": HISTORY}, "payment.merchant_category None"),
        (
            [with_history(), {"payment": PAYMENT, "history": {**HISTORY, "amount": [-1] * 4}}],
            "history[1].amount[0] must be >= 0",
        ),
    ],
)
def test_bad_inputs_name_the_field(model: RiskSeqModel, value: Any, words: str) -> None:
    with pytest.raises(BadRequest) as err:
        prepare(model, value)
    assert str(err.value).startswith("risk_seq model: ") and words in str(err.value)


def test_bundled_weights_load_and_beat_the_logistic_model(model: RiskSeqModel) -> None:
    meta = model.meta
    assert meta["history_length"] == HISTORY_LENGTH and meta["layers"] == 2
    metrics = meta["metrics"]
    assert metrics["holdout_auc"] > metrics["holdout_auc_logistic"] + 0.015
    result = score(model, with_history())
    assert set(result) == {"risk", "decision", "confidence", "model", "version"}
    assert result["model"] == "risk_seq" and 0.0 < result["risk"] < 1.0


def test_beats_the_logistic_model_on_fresh_cards(model: RiskSeqModel) -> None:
    payments, histories, labels = generate_sequences(3000, DEFAULT_SEED + 7)
    rows = [tuple(r) for r in payments.tolist()]
    seq = model.scores(rows, histories)
    logistic = RiskModel()
    logistic.load()
    lr = np.array([r["risk"] for r in logistic.results(rows)])
    assert _auc(seq, labels) > _auc(lr, labels) + 0.015


def as_input(payment: Any, history: Any) -> dict[str, Any]:
    """A generated card as the JSON input a client sends."""
    real = history[:, -1] == 1
    cols = {name: history[real, i].tolist() for i, name in enumerate(HISTORY_COLUMNS[:-1])}
    pay = {key: value for (key, _), value in zip(RAW_FIELDS, payment.tolist(), strict=True)}
    cols["merchant_category"] = [CATEGORIES[int(c)] for c in cols["merchant_category"]]
    pay["merchant_category"] = CATEGORIES[int(pay["merchant_category"])]
    for name in ("country_mismatch", "card_present"):
        cols[name] = [bool(v) for v in cols[name]]
        pay[name] = bool(pay[name])
    return {"payment": pay, "history": cols}


def test_generated_cards_are_what_prepare_returns(model: RiskSeqModel) -> None:
    payments, histories, _ = generate_sequences(40, DEFAULT_SEED)
    items = [as_input(p, h) for p, h in zip(payments, histories, strict=True)]
    prepared = prepare(model, items)
    np.testing.assert_array_equal(prepared.extra, histories)
    np.testing.assert_array_equal(np.asarray(prepared.rows), payments)


def test_a_short_history_is_left_padded() -> None:
    padded = prepare_history(HISTORY)
    assert padded.shape == (HISTORY_LENGTH, len(HISTORY_COLUMNS))
    assert not padded[:-4].any()
    np.testing.assert_array_equal(padded[-4:, 0], HISTORY["amount"])
    np.testing.assert_array_equal(padded[-4:, -1], 1.0)
    assert prepare_history({"amount": [], "merchant_category": [], "minutes_ago": []}).sum() == 0


def test_a_batch_scores_like_one_by_one(model: RiskSeqModel) -> None:
    values = [*RiskSeqModel.examples(60), with_history(), {"payment": PAYMENT, "history": {}}]
    values[-1]["history"] = {"amount": [], "merchant_category": [], "minutes_ago": []}
    items = [prepare(model, v) for v in values]
    batched = model.predict_batch(items)
    single = [model.predict_batch([item])[0] for item in items]
    np.testing.assert_allclose(
        [r["risk"] for r in batched], [r["risk"] for r in single], rtol=1e-4, atol=1e-5
    )
    listed = score(model, values[:3])
    assert [r["risk"] for r in listed] == pytest.approx([r["risk"] for r in batched[:3]], abs=1e-5)
    assert len({r["risk"] for r in batched}) > 30


def test_the_history_changes_the_risk(model: RiskSeqModel) -> None:
    calm = {
        "amount": [40.0 + i for i in range(30)],
        "merchant_category": ["grocery", "restaurant"] * 15,
        "minutes_ago": [1440 * (30 - i) for i in range(30)],
        "card_present": [True] * 30,
    }
    testing = {
        "amount": [*calm["amount"][:-6], 1.0, 1.5, 0.9, 2.0, 1.2, 1.1],
        "merchant_category": [*calm["merchant_category"][:-6], *["gaming", "gift_cards"] * 3],
        "minutes_ago": [*calm["minutes_ago"][:-6], 30, 25, 19, 14, 8, 3],
        "card_present": [*calm["card_present"][:-6], *[False] * 6],
    }
    after_calm = score(model, {"payment": PAYMENT, "history": calm})["risk"]
    after_testing = score(model, {"payment": PAYMENT, "history": testing})["risk"]
    assert after_testing > 0.5 > 0.1 > after_calm


def test_is_deterministic(model: RiskSeqModel) -> None:
    items = [prepare(model, v) for v in RiskSeqModel.examples(16)]
    other = RiskSeqModel()
    other.load()
    assert model.predict_batch(items) == model.predict_batch(items) == other.predict_batch(items)


def test_stream_of_a_list_ends_with_a_summary(model: RiskSeqModel) -> None:
    *results, summary = list(model.stream(prepare(model, RiskSeqModel.examples(4))))
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert summary["count"] == 4 and sum(summary["decisions"].values()) == 4


def test_training_is_deterministic_and_loadable(tmp_path: Path) -> None:
    small = {"n": 600, "hidden": 4, "epochs": 1}
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    write_npz(a, *train_seq(DEFAULT_SEED, **small))
    write_npz(b, *train_seq(DEFAULT_SEED, **small))
    assert a.read_bytes() == b.read_bytes()
    trained = RiskSeqModel(weights=a)
    trained.load()
    assert trained.meta["hidden"] == 4 and 0.0 < score(trained, with_history())["risk"] < 1.0
    meta, arrays = train_seq(DEFAULT_SEED, **small)
    write_npz(b, {**meta, "history_length": 32}, arrays)
    with pytest.raises(ValueError, match="regenerate them"):
        RiskSeqModel(weights=b).load()


# ----- the GRU's backward pass against finite differences -----------------------------------


def numeric_grads(params: dict[str, Any], batch: tuple[Any, Any, Any]) -> dict[str, Any]:
    """The loss's gradient by central differences, one parameter entry at a time."""
    out = {}
    for name, value in params.items():
        grad = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            old = value[i]
            value[i] = old + 1e-6
            up, _ = gru.loss_and_grads(params, *batch)
            value[i] = old - 1e-6
            down, _ = gru.loss_and_grads(params, *batch)
            value[i] = old
            grad[i] = (up - down) / 2e-6
        out[name] = grad
    return out


def worst_relative_error(analytic: dict[str, Any], numeric: dict[str, Any]) -> float:
    return max(
        float(np.abs(analytic[k] - numeric[k]).max() / max(np.abs(numeric[k]).max(), 1e-8))
        for k in numeric
    )


def small_network() -> tuple[dict[str, Any], tuple[Any, Any, Any]]:
    """Two GRU layers of 3 units over 5 steps of 4 features, 2 payment features, float64."""
    rng = np.random.default_rng(0)
    shapes = {"w0": (4, 9), "b0": (9,), "u0": (3, 9), "w1": (3, 9), "b1": (9,), "u1": (3, 9)}
    params = {k: rng.standard_normal(s) * 0.7 for k, s in shapes.items()}
    params["head_w"] = rng.standard_normal(3 + 2)
    params["head_b"] = np.array(0.3)
    batch = (rng.standard_normal((3, 5, 4)), rng.standard_normal((3, 2)), np.array([0, 1, 1.0]))
    return params, batch


def test_gru_gradients_match_finite_differences() -> None:
    params, batch = small_network()
    _, analytic = gru.loss_and_grads(params, *batch)
    assert set(analytic) == set(params)
    assert worst_relative_error(analytic, numeric_grads(params, batch)) < 1e-6


def test_the_gradient_check_catches_a_wrong_backward_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    params, batch = small_network()
    numeric = numeric_grads(params, batch)
    right = gru._layer_backward

    def without_the_reset_gate(*args: Any) -> Any:
        x, w, u, out, kept, dout = args
        kept = [(r, z, n, ghn * 0.0) for r, z, n, ghn in kept]
        return right(x, w, u, out, kept, dout)

    monkeypatch.setattr(gru, "_layer_backward", without_the_reset_gate)
    _, wrong = gru.loss_and_grads(params, *batch)
    assert worst_relative_error(wrong, numeric) > 1e-2
