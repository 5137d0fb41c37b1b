"""A payment risk model that reads the card's recent transactions: a GRU over its history.

Its input is the current payment (the dict of :class:`~tandem.models.RiskModel`) with the
card's history (:mod:`tandem.models.history`: columns of up to 64 past transactions, oldest
first), or a list of such objects::

    {"payment": {"amount": 412.5, "merchant_category": "electronics", ...},
     "history": {"amount": [...], "merchant_category": [...], "minutes_ago": [...], ...}}

The network (:mod:`tandem.models.gru`): the 15 features of each step (the 64 transactions,
left-padded, then the current payment as step 65) → two stacked GRU layers of 32 units →
a linear head over the last state and the payment's 16 standardised features → sigmoid,
float32. ``python -m tandem.models.train --model risk_seq`` trains it on the project's
synthetic card histories (fixed seed; patterns such as card testing, account takeover and
velocity bursts that only the history shows in full) and writes ``data/risk_seq_v1.npz``.

Results are ``{"risk", "decision", "confidence", "model", "version"}``, like risk_mlp's.

Why it is here: the recurrence runs step by step, 65 steps in each of 2 layers of small numpy
operations whose cost is mostly per operation, not per payment: a batch of 64 histories costs
a few times one, so batching gains far more than for the other models (docs/grpc.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import BadRequest
from ._model import BatchConfig
from .gru import layer_names, logits
from .history import (
    HISTORY_LENGTH,
    STEP_FEATURES,
    example_inputs,
    prepare_history,
    standardize_steps,
    step_features,
)
from .payments import WARM_PAYMENT, PaymentModel, Prepared, prepare_payment, sigmoid
from .risk_mlp import read_weights

__all__ = ["RiskSeqModel"]

_SHAPE = '{"payment": {"amount": 12.5, "merchant_category": "grocery"}, "history": {...}}'


class RiskSeqModel(PaymentModel):
    """Scores payments for fraud risk from the payment and the card's history (GRU, numpy).

    :param weights: a weights file written by ``python -m tandem.models.train``; default the
        bundled ``data/risk_seq_v1.npz``.
    """

    name: ClassVar[str] = "risk_seq"
    version: ClassVar[str] = "1"
    #: On the event loop's thread: its ~260 small BLAS calls per batch would each hand the GIL
    #: to a busy loop thread and wait for it back (BatchConfig.inline). A batch waits until
    #: calls stop coming for 4 ms (at most 20 ms): the loop takes calls only between batches,
    #: so a batch that left early would split the calls in flight and make half of them wait
    #: a whole extra batch. docs/grpc.md has what this trades at low load.
    batching: ClassVar[BatchConfig] = dataclasses.replace(
        PaymentModel.batching, max_queue_delay_ms=20.0, flush_idle_ms=4.0, inline=True
    )
    warm_item: ClassVar[Any] = {
        "payment": WARM_PAYMENT,
        "history": {"amount": [12.0], "merchant_category": ["grocery"], "minutes_ago": [1440]},
    }

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__(weights)
        self.meta: dict[str, Any] = {}
        self._params: dict[str, Any] = {}
        self._step_mean: Any = None
        self._step_std: Any = None

    @classmethod
    def examples(cls, n: int) -> list[Any]:
        """``n`` varied, valid ``{"payment", "history"}`` inputs with full histories, the same
        on every call: :func:`~tandem.models.history.example_inputs`."""
        return example_inputs(n)

    def load(self) -> None:
        """Reads the weights file and checks it matches this code's features and history
        length."""
        import numpy as np

        meta, arrays = read_weights(self.weights_bytes("risk_seq_v1.npz"), ())
        names = layer_names(int(meta["layers"]))
        self.adopt(meta["features"], arrays["mean"], arrays["std"], meta["thresholds"])
        if (
            tuple(meta["step_features"]) != STEP_FEATURES
            or meta["history_length"] != HISTORY_LENGTH
        ):
            raise ValueError(
                f"{self.name} weights read {meta['history_length']} steps of "
                f"{meta['step_features']} but this code prepares {HISTORY_LENGTH} of "
                f"{list(STEP_FEATURES)}: regenerate them with python -m tandem.models.train"
            )
        self.meta = meta
        self._params = {k: np.asarray(arrays[k], dtype=np.float32) for k in names}
        self._step_mean, self._step_std = arrays["step_mean"], arrays["step_std"]

    def prepare_items(self, items: list[Any], many: bool) -> Prepared:
        """Validates decoded ``{"payment", "history"}`` objects; errors name ``payment[i]`` and
        ``history[i]`` in a list."""
        import numpy as np

        rows = []
        histories = []
        for i, item in enumerate(items):
            at = f"[{i}]" if many else ""
            if not isinstance(item, Mapping) or "payment" not in item or "history" not in item:
                got = f"keys {sorted(item)}" if isinstance(item, Mapping) else type(item).__name__
                raise BadRequest(
                    f"{self.name} model: input{at} must be a JSON object like {_SHAPE} "
                    f"(with both keys), got {got}"
                )
            rows.append(prepare_payment(item["payment"], f"payment{at}", self.name))
            histories.append(prepare_history(item["history"], f"history{at}", self.name))
        return Prepared(rows, many, np.stack(histories))

    def scores(self, rows: Sequence[tuple[float, ...]], histories: Any) -> Any:
        """The fraud probabilities (float64, shape ``(n,)``) of prepared rows and their
        prepared histories (``(n, HISTORY_LENGTH, 6)``)."""
        import numpy as np

        if not self._params:
            raise RuntimeError("RiskSeqModel.load() was not called")
        steps = step_features(rows, histories)
        z = standardize_steps(steps, self._step_mean, self._step_std)
        payment = self.standardized(rows).astype(np.float32)
        logit = logits(self._params, z, payment).astype(np.float64)
        return sigmoid(logit)

    def results_of(self, items: Sequence[Prepared]) -> list[dict[str, Any]]:
        """Scores the payments of all the inputs in one pass through the network (the
        recurrence steps once for the whole batch)."""
        import numpy as np

        rows = [row for item in items for row in item.rows]
        histories = np.concatenate([item.extra for item in items])
        return [self.result(risk) for risk in self.scores(rows, histories).tolist()]
