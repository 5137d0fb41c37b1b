"""A payment risk model: logistic regression over engineered transaction features.

The weights come from ``python -m tandem.models.train`` (synthetic transactions, fixed seed)
and ship as ``data/risk_v1.json``. Inputs are payment dicts (or a list of them) in JSON::

    {"amount": 412.5, "merchant_category": "electronics", "country_mismatch": true,
     "hour": 3, "velocity_1h": 4, "card_age_days": 12, "card_present": false}

Only ``amount`` and ``merchant_category`` are required. The output for one payment is
``{"risk", "decision", "confidence", "top_factors", "model", "version"}``; ``risk`` is the
fraud probability, ``decision`` is approve / review / decline by the file's thresholds and
``confidence`` is the probability of the chosen side (max(risk, 1 - risk)).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from ..errors import BadRequest
from ._model import BatchConfig, Model

__all__ = ["CATEGORIES", "FEATURES", "RAW_FIELDS", "RiskModel", "featurize"]

#: Merchant categories the model knows; the first is the one-hot baseline.
CATEGORIES: tuple[str, ...] = (
    "grocery",
    "fuel",
    "restaurant",
    "travel",
    "electronics",
    "gaming",
    "gift_cards",
    "crypto",
)

#: The raw fields of a payment, in the order of a prepared row, with their defaults.
RAW_FIELDS: tuple[tuple[str, float | None], ...] = (
    ("amount", None),
    ("merchant_category", None),
    ("country_mismatch", 0.0),
    ("hour", 12.0),
    ("velocity_1h", 0.0),
    ("card_age_days", 365.0),
    ("card_present", 0.0),
)

#: The engineered features the weights apply to, in column order.
FEATURES: tuple[str, ...] = (
    "log_amount",
    "night",
    "hour_sin",
    "hour_cos",
    "country_mismatch",
    "log_velocity_1h",
    "log_card_age",
    "new_card",
    "card_present",
    *(f"category_{c}" for c in CATEGORIES[1:]),
)

_BOOL_FIELDS = {"country_mismatch", "card_present"}


def featurize(raw: Any) -> Any:
    """Turns prepared rows (an ``(n, 7)`` float array in RAW_FIELDS order) into features.

    Vectorized: one pass of numpy operations whatever ``n`` is.
    """
    import numpy as np

    amount, cat, mismatch, hour, velocity, age, present = (raw[:, i] for i in range(7))
    angle = hour * (2.0 * math.pi / 24.0)
    onehot = (cat[:, None] == np.arange(1, len(CATEGORIES))[None, :]).astype(np.float64)
    cols = [
        np.log1p(amount),
        (hour < 6).astype(np.float64),
        np.sin(angle),
        np.cos(angle),
        mismatch,
        np.log1p(velocity),
        np.log1p(age),
        (age < 30).astype(np.float64),
        present,
    ]
    return np.column_stack([*cols, onehot])


@dataclass(frozen=True)
class _Prepared:
    rows: list[tuple[float, ...]]
    many: bool


def _number(payment: Mapping[str, Any], key: str, default: float | None, where: str) -> float:
    value = payment.get(key, default)
    if value is None:
        raise BadRequest(f"risk model: {where} is missing required field {key!r}")
    if key in _BOOL_FIELDS:
        if not isinstance(value, (bool, int, float)):
            raise BadRequest(f"risk model: {where}.{key} must be a boolean, got {value!r}")
        return 1.0 if value else 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"risk model: {where}.{key} must be a finite number, got {value!r}")
    if value < 0:
        raise BadRequest(f"risk model: {where}.{key} must be >= 0, got {value!r}")
    if key == "hour" and value >= 24:
        raise BadRequest(f"risk model: {where}.hour must be in 0..23, got {value!r}")
    return float(value)


def prepare_payment(payment: Any, where: str = "payment") -> tuple[float, ...]:
    """Validates one payment dict and returns its row in RAW_FIELDS order.

    :raises BadRequest: naming the field, what was given and what is accepted.
    """
    if not isinstance(payment, Mapping):
        raise BadRequest(
            f"risk model: {where} must be a JSON object like "
            f'{{"amount": 12.5, "merchant_category": "grocery"}}, got {type(payment).__name__}'
        )
    category = payment.get("merchant_category")
    if category not in CATEGORIES:
        raise BadRequest(
            f"risk model: {where}.merchant_category {category!r} is unknown "
            f"(known: {', '.join(CATEGORIES)})"
        )
    if "country_mismatch" not in payment and "card_country" in payment:
        payment = {
            **payment,
            "country_mismatch": payment.get("card_country") != payment.get("ip_country"),
        }
    row = [
        float(CATEGORIES.index(category))
        if key == "merchant_category"
        else _number(payment, key, default, where)
        for key, default in RAW_FIELDS
    ]
    return tuple(row)


class RiskModel(Model):
    """Scores payments for fraud risk (logistic regression, vectorized with numpy).

    :param weights: a weights file written by ``python -m tandem.models.train``; default the
        bundled ``data/risk_v1.json``.
    """

    name: ClassVar[str] = "risk"
    version: ClassVar[str] = "1"
    batching: ClassVar[BatchConfig] = BatchConfig(
        max_batch_size=64, max_queue_delay_ms=2.0, max_queue_size=2048
    )

    def __init__(self, weights: str | Path | None = None) -> None:
        self._path = weights
        self._spec: dict[str, Any] = {}
        self._mean: Any = None
        self._std: Any = None
        self._w: Any = None
        self._bias = 0.0
        self._review = 0.5
        self._decline = 0.8

    def load(self) -> None:
        """Reads the weights file and checks it matches this code's feature list."""
        import numpy as np

        if self._path is None:
            text = (resources.files("tandem.models") / "data" / "risk_v1.json").read_text()
        else:
            text = Path(self._path).read_text()
        spec = json.loads(text)
        if tuple(spec["features"]) != FEATURES:
            raise ValueError(
                f"risk weights list features {spec['features']} but this code computes "
                f"{list(FEATURES)}: regenerate them with python -m tandem.models.train"
            )
        self._spec = spec
        self._mean = np.asarray(spec["mean"], dtype=np.float64)
        self._std = np.asarray(spec["std"], dtype=np.float64)
        self._w = np.asarray(spec["weights"], dtype=np.float64)
        self._bias = float(spec["bias"])
        self._review = float(spec["thresholds"]["review"])
        self._decline = float(spec["thresholds"]["decline"])

    def warm(self) -> None:
        """Scores one payment so numpy's first-call costs are paid before serving."""
        self.predict_batch([_Prepared([prepare_payment(_WARM_PAYMENT)], many=False)])

    def prepare(self, data: bytes, parameters: Mapping[str, str]) -> _Prepared:
        """Decodes a payment dict or a list of them."""
        value = super().prepare(data, parameters)
        if isinstance(value, list):
            if not value:
                raise BadRequest("risk model: the payment list is empty")
            rows = [prepare_payment(p, f"payment[{i}]") for i, p in enumerate(value)]
            return _Prepared(rows, many=True)
        return _Prepared([prepare_payment(value)], many=False)

    def _scores(self, rows: Sequence[tuple[float, ...]]) -> tuple[Any, Any]:
        import numpy as np

        z = (featurize(np.asarray(rows, dtype=np.float64)) - self._mean) / self._std
        contributions = z * self._w
        logits = contributions.sum(axis=1) + self._bias
        return contributions, 1.0 / (1.0 + np.exp(-logits))

    def _results(self, risks: Any, contributions: Any) -> list[dict[str, Any]]:
        import numpy as np

        rows = contributions.tolist()
        if len(rows) > 4:  # one vectorized sort pays off from a few rows on
            top = np.argsort(-contributions, axis=1, kind="stable")[:, :3].tolist()
        else:
            top = [sorted(range(len(r)), key=r.__getitem__, reverse=True)[:3] for r in rows]
        out = []
        for risk, row, idx in zip(risks.tolist(), rows, top, strict=True):
            decision = (
                "decline"
                if risk >= self._decline
                else "review"
                if risk >= self._review
                else "approve"
            )
            out.append(
                {
                    "risk": round(risk, 6),
                    "decision": decision,
                    "confidence": round(max(risk, 1.0 - risk), 6),
                    "top_factors": [FEATURES[i] for i in idx if row[i] > 0],
                    "model": self.name,
                    "version": self.version,
                }
            )
        return out

    def predict_batch(self, inputs: list[Any]) -> list[Any]:
        """Scores every payment of every input in one vectorized pass."""
        rows = [row for item in inputs for row in item.rows]
        contributions, risks = self._scores(rows)
        results = self._results(risks, contributions)
        out: list[Any] = []
        at = 0
        for item in inputs:
            chunk = results[at : at + len(item.rows)]
            at += len(item.rows)
            out.append(chunk if item.many else chunk[0])
        return out

    def stream(self, item: Any) -> Iterator[Any]:
        """One payment: each feature's contribution to the logit, largest first, then the
        total. A list: one result per payment, then a summary."""
        contributions, risks = self._scores(item.rows)
        if item.many:
            decisions: dict[str, int] = {}
            for i, result in enumerate(self._results(risks, contributions)):
                decisions[result["decision"]] = decisions.get(result["decision"], 0) + 1
                yield {"index": i, **result}
            yield {"count": len(item.rows), "decisions": decisions}
            return
        row = contributions[0]
        for i in sorted(range(len(FEATURES)), key=lambda i: -abs(float(row[i]))):
            yield {"feature": FEATURES[i], "contribution": round(float(row[i]), 6)}
        logit = float(row.sum()) + self._bias
        yield {
            "bias": round(self._bias, 6),
            "logit": round(logit, 6),
            **self._results(risks, contributions)[0],
        }


_WARM_PAYMENT = {"amount": 25.0, "merchant_category": "grocery"}
