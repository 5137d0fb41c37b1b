"""A payment risk model: logistic regression over engineered transaction features.

The weights come from ``python -m tandem.models.train`` (synthetic transactions, fixed seed)
and ship as ``data/risk_v1.json``. Inputs and outputs are those of
:class:`~tandem.models.payments.PaymentModel` (a payment dict or a list of them); each result
also lists its ``top_factors``: the features that raised the risk most.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from .payments import CATEGORIES, FEATURES, RAW_FIELDS, PaymentModel, featurize, sigmoid

__all__ = ["CATEGORIES", "FEATURES", "RAW_FIELDS", "RiskModel", "featurize"]


class RiskModel(PaymentModel):
    """Scores payments for fraud risk (logistic regression, vectorized with numpy).

    :param weights: a weights file written by ``python -m tandem.models.train``; default the
        bundled ``data/risk_v1.json``.
    """

    name: ClassVar[str] = "risk"
    version: ClassVar[str] = "1"

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__(weights)
        self._spec: dict[str, Any] = {}
        self._w: Any = None
        self._bias = 0.0

    def load(self) -> None:
        """Reads the weights file and checks it matches this code's feature list."""
        import numpy as np

        spec = json.loads(self.weights_bytes("risk_v1.json"))
        self.adopt(
            spec["features"],
            np.asarray(spec["mean"], dtype=np.float64),
            np.asarray(spec["std"], dtype=np.float64),
            spec["thresholds"],
        )
        self._spec = spec
        self._w = np.asarray(spec["weights"], dtype=np.float64)
        self._bias = float(spec["bias"])

    def _scores(self, rows: Sequence[tuple[float, ...]]) -> tuple[Any, Any]:
        contributions = self.standardized(rows) * self._w
        logits = contributions.sum(axis=1) + self._bias
        return contributions, sigmoid(logits)

    def _results(self, risks: Any, contributions: Any) -> list[dict[str, Any]]:
        import numpy as np

        rows = contributions.tolist()
        if len(rows) > 4:  # one vectorized sort pays off from a few rows on
            top = np.argsort(-contributions, axis=1, kind="stable")[:, :3].tolist()
        else:
            top = [sorted(range(len(r)), key=r.__getitem__, reverse=True)[:3] for r in rows]
        return [
            self.result(risk, top_factors=[FEATURES[i] for i in idx if row[i] > 0])
            for risk, row, idx in zip(risks.tolist(), rows, top, strict=True)
        ]

    def results(self, rows: Sequence[tuple[float, ...]]) -> list[dict[str, Any]]:
        """Scores the payments in one vectorized pass, with each one's top factors."""
        contributions, risks = self._scores(rows)
        return self._results(risks, contributions)

    def stream(self, item: Any) -> Iterator[Any]:
        """One payment: each feature's contribution to the logit, largest first, then the
        total. A list: one result per payment, then a summary."""
        if item.many:
            yield from super().stream(item)
            return
        contributions, risks = self._scores(item.rows)
        row = contributions[0]
        for i in sorted(range(len(FEATURES)), key=lambda i: -abs(float(row[i]))):
            yield {"feature": FEATURES[i], "contribution": round(float(row[i]), 6)}
        logit = float(row.sum()) + self._bias
        yield {
            "bias": round(self._bias, 6),
            "logit": round(logit, 6),
            **self._results(risks, contributions)[0],
        }
