"""What the bundled payment risk models share: input validation, features, decisions.

Inputs are payment dicts (or a list of them) in JSON::

    {"amount": 412.5, "merchant_category": "electronics", "country_mismatch": true,
     "hour": 3, "velocity_1h": 4, "card_age_days": 12, "card_present": false}

Only ``amount`` and ``merchant_category`` are required. :class:`PaymentModel` decodes and
validates them (:func:`prepare_payment`), turns them into the engineered features
(:func:`featurize`, vectorized), scores every payment of a batch in one call of the subclass's
``score`` and builds each result: ``risk`` (the fraud probability), ``decision`` (approve /
review / decline by the model's thresholds), ``confidence`` (the probability of the chosen side,
max(risk, 1 - risk)), ``model`` and ``version``. :class:`~tandem.models.RiskModel` (logistic
regression), :class:`~tandem.models.RiskMlpModel` (a numpy MLP) and
:class:`~tandem.models.RiskSeqModel` (a GRU, whose inputs add the card's history) subclass it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from ..errors import BadRequest
from ._model import BatchConfig, Model

__all__ = [
    "CATEGORIES",
    "FEATURES",
    "RAW_FIELDS",
    "PaymentModel",
    "Prepared",
    "featurize",
    "prepare_payment",
    "sigmoid",
]

#: Merchant categories the models know; the first is the one-hot baseline.
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

#: The engineered features the models' weights apply to, in column order.
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

#: The payment ``warm()`` scores.
WARM_PAYMENT = {"amount": 25.0, "merchant_category": "grocery"}


def example_payments(n: int) -> list[dict[str, Any]]:
    """``n`` varied, valid payment dicts, the same on every call (for benchmarks and tests)."""
    cats = ["grocery", "fuel", "travel", "electronics", "gaming", "crypto"]
    return [
        {
            "amount": 3.0 + 17.0 * i,
            "merchant_category": cats[i % len(cats)],
            "country_mismatch": i % 7 == 0,
            "hour": i % 24,
            "velocity_1h": i % 5,
            "card_age_days": 5 + 13 * i,
            "card_present": i % 3 == 0,
        }
        for i in range(n)
    ]


def sigmoid(logits: Any) -> Any:
    """The fraud probability of each numpy logit, ``1 / (1 + e^-x)`` (the dtype is kept)."""
    import numpy as np

    return 1.0 / (1.0 + np.exp(-logits))


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
class Prepared:
    """One decoded input: its payments' rows, whether it was a list, and what else a model
    prepared for them (``risk_seq``: their histories, an array with one entry per row)."""

    rows: list[tuple[float, ...]]
    many: bool
    extra: Any = None


def _number(
    payment: Mapping[str, Any], key: str, default: float | None, where: str, model: str
) -> float:
    value = payment.get(key, default)
    if value is None:
        raise BadRequest(f"{model} model: {where} is missing required field {key!r}")
    if key in _BOOL_FIELDS:
        if not isinstance(value, (bool, int, float)):
            raise BadRequest(f"{model} model: {where}.{key} must be a boolean, got {value!r}")
        return 1.0 if value else 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadRequest(f"{model} model: {where}.{key} must be a finite number, got {value!r}")
    if value < 0:
        raise BadRequest(f"{model} model: {where}.{key} must be >= 0, got {value!r}")
    if key == "hour" and value >= 24:
        raise BadRequest(f"{model} model: {where}.hour must be in 0..23, got {value!r}")
    return float(value)


def prepare_payment(payment: Any, where: str = "payment", model: str = "risk") -> tuple[float, ...]:
    """Validates one payment dict and returns its row in RAW_FIELDS order.

    :param where: how the error message names the payment (``payment[3]`` in a list).
    :param model: the model name the error message starts with.
    :raises BadRequest: naming the field, what was given and what is accepted.
    """
    if not isinstance(payment, Mapping):
        raise BadRequest(
            f"{model} model: {where} must be a JSON object like "
            f'{{"amount": 12.5, "merchant_category": "grocery"}}, got {type(payment).__name__}'
        )
    category = payment.get("merchant_category")
    if category not in CATEGORIES:
        raise BadRequest(
            f"{model} model: {where}.merchant_category {category!r} is unknown "
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
        else _number(payment, key, default, where, model)
        for key, default in RAW_FIELDS
    ]
    return tuple(row)


class PaymentModel(Model):
    """Base of the payment risk models: override ``load`` and ``results`` (or, for inputs
    that carry more than a payment, ``prepare_items`` and ``results_of``).

    ``prepare`` validates a payment or a list of payments; ``predict_batch`` scores every
    payment of every input in one ``results_of`` call and splits them back per input;
    ``stream`` of a list yields one result per payment, then a summary of the decisions.

    :param weights: a weights file written by ``python -m tandem.models.train``; default the
        bundled one (``load`` names it).
    """

    batching: ClassVar[BatchConfig] = BatchConfig(
        max_batch_size=64, max_queue_delay_ms=2.0, max_queue_size=2048
    )
    #: The decoded input ``warm()`` scores.
    warm_item: ClassVar[Any] = WARM_PAYMENT

    def __init__(self, weights: str | Path | None = None) -> None:
        self._path = weights
        self._mean: Any = None
        self._std: Any = None
        self._review = 0.5
        self._decline = 0.8

    @classmethod
    def examples(cls, n: int) -> list[Any]:
        """``n`` varied, valid inputs (decoded JSON), the same on every call (for benchmarks
        and tests): :func:`example_payments`."""
        return example_payments(n)

    def weights_bytes(self, bundled: str) -> bytes:
        """The weights file's bytes: the one given to ``__init__``, else ``data/<bundled>``."""
        if self._path is None:
            return (resources.files("tandem.models") / "data" / bundled).read_bytes()
        return Path(self._path).read_bytes()

    def adopt(
        self, features: Sequence[str], mean: Any, std: Any, thresholds: Mapping[str, Any]
    ) -> None:
        """Takes the standardization and thresholds of loaded weights, after checking that
        they were trained on this code's feature list."""
        if tuple(features) != FEATURES:
            raise ValueError(
                f"{self.name} weights list features {list(features)} but this code computes "
                f"{list(FEATURES)}: regenerate them with python -m tandem.models.train"
            )
        self._mean, self._std = mean, std
        self._review = float(thresholds["review"])
        self._decline = float(thresholds["decline"])

    def prepare(self, data: bytes, parameters: Mapping[str, str]) -> Prepared:
        """Decodes a payment dict or a list of them."""
        value = super().prepare(data, parameters)
        if isinstance(value, list):
            if not value:
                raise BadRequest(f"{self.name} model: the payment list is empty")
            return self.prepare_items(value, many=True)
        return self.prepare_items([value], many=False)

    def prepare_items(self, items: list[Any], many: bool) -> Prepared:
        """Validates decoded payments (``many``: they came as a list, so errors name
        ``payment[i]``)."""
        rows = [
            prepare_payment(p, f"payment[{i}]" if many else "payment", self.name)
            for i, p in enumerate(items)
        ]
        return Prepared(rows, many)

    def warm(self) -> None:
        """Scores ``warm_item`` so numpy's first-call costs are paid before serving."""
        self.predict_batch([self.prepare_items([self.warm_item], many=False)])

    def features(self, rows: Sequence[tuple[float, ...]]) -> Any:
        """The ``(n, len(FEATURES))`` float64 feature matrix of prepared rows."""
        import numpy as np

        return featurize(np.asarray(rows, dtype=np.float64))

    def standardized(self, rows: Sequence[tuple[float, ...]]) -> Any:
        """The feature matrix of prepared rows, standardized as in training."""
        return (self.features(rows) - self._mean) / self._std

    def results(self, rows: Sequence[tuple[float, ...]]) -> list[dict[str, Any]]:
        """One result dict per prepared row (see :meth:`result`)."""
        raise NotImplementedError(f"model {self.name!r} does not implement results")

    def results_of(self, items: Sequence[Prepared]) -> list[dict[str, Any]]:
        """One result dict per payment of the prepared inputs, in order (default: ``results``
        of all their rows)."""
        return self.results([row for item in items for row in item.rows])

    def result(self, risk: float, **extra: Any) -> dict[str, Any]:
        """The result of one payment whose fraud probability is ``risk``; ``extra`` keys go
        after ``confidence``."""
        decision = (
            "decline" if risk >= self._decline else "review" if risk >= self._review else "approve"
        )
        return {
            "risk": round(risk, 6),
            "decision": decision,
            "confidence": round(max(risk, 1.0 - risk), 6),
            **extra,
            "model": self.name,
            "version": self.version,
        }

    def predict_batch(self, inputs: list[Any]) -> list[Any]:
        """Scores every payment of every input in one vectorized pass."""
        results = self.results_of(inputs)
        out: list[Any] = []
        at = 0
        for item in inputs:
            chunk = results[at : at + len(item.rows)]
            at += len(item.rows)
            out.append(chunk if item.many else chunk[0])
        return out

    def stream(self, item: Any) -> Iterator[Any]:
        """A list: one result per payment (with its ``index``), then ``{"count",
        "decisions"}``. One payment: its result."""
        if not item.many:
            yield from self.results_of([item])
            return
        decisions: dict[str, int] = {}
        for i, result in enumerate(self.results_of([item])):
            decisions[result["decision"]] = decisions.get(result["decision"], 0) + 1
            yield {"index": i, **result}
        yield {"count": len(item.rows), "decisions": decisions}
