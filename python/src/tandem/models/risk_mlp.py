"""A payment risk model whose compute matters: a numpy MLP over the engineered features.

Same inputs, features and validation as :class:`~tandem.models.RiskModel` (both subclass
:class:`~tandem.models.payments.PaymentModel`), scored by a multi-layer perceptron: the 16
standardised features → 1024 → 1024 (ReLU) → 1 (sigmoid), float32. ``python -m
tandem.models.train`` trains it on the project's synthetic transactions (fixed seed, Adam,
binary cross-entropy) and writes ``data/risk_mlp_v1.npz``: float16 weights (about 2 MiB),
the standardisation, the thresholds and the hold-out metrics.

Its results are ``{"risk", "decision", "confidence", "model", "version"}``: RiskModel's
shape without ``top_factors`` (a per-payment attribution would cost a backward pass, as much
compute again as the prediction; the logistic model gives those factors).

Why it is here: about 1.07 M multiply-adds per payment, so the model, not the RPC, is most of
a call's CPU, and a batch of 64 shares one pass over the weights (a matrix product instead of
64 matrix-vector products). See docs/grpc.md for what batching gains with it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from ._model import BatchConfig
from .payments import FEATURES, PaymentModel

__all__ = ["PARAMS", "RiskMlpModel", "forward", "read_weights"]

#: The weight arrays of the weights file, input layer first.
PARAMS: tuple[str, ...] = ("w1", "b1", "w2", "b2", "w3", "b3")


def forward(params: Mapping[str, Any], z: Any) -> Any:
    """The logits (float32, shape ``(n,)``) of standardised features ``z`` (``(n, 16)``)."""
    import numpy as np

    h = z.astype(np.float32, copy=False) @ params["w1"]
    h += params["b1"]
    np.maximum(h, 0.0, out=h)
    h2 = h @ params["w2"]
    h2 += params["b2"]
    np.maximum(h2, 0.0, out=h2)
    return h2 @ params["w3"] + params["b3"]


def read_weights(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reads a weights file's bytes: ``(meta, arrays)``, the weights as float32."""
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
    for key in PARAMS:
        arrays[key] = np.ascontiguousarray(arrays[key], dtype=np.float32)
    return meta, arrays


class RiskMlpModel(PaymentModel):
    """Scores payments for fraud risk with a 2-hidden-layer MLP (numpy, float32).

    :param weights: a weights file written by ``python -m tandem.models.train``; default the
        bundled ``data/risk_mlp_v1.npz``.
    """

    name: ClassVar[str] = "risk_mlp"
    version: ClassVar[str] = "1"
    batching: ClassVar[BatchConfig] = BatchConfig(
        max_batch_size=64, max_queue_delay_ms=2.0, max_queue_size=2048
    )

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__()
        self._path = weights
        self.meta: dict[str, Any] = {}
        self._params: dict[str, Any] = {}
        self._mean: Any = None
        self._std: Any = None

    def load(self) -> None:
        """Reads the weights file and checks it matches this code's feature list."""
        if self._path is None:
            data = (resources.files("tandem.models") / "data" / "risk_mlp_v1.npz").read_bytes()
        else:
            data = Path(self._path).read_bytes()
        meta, arrays = read_weights(data)
        if tuple(meta["features"]) != FEATURES:
            raise ValueError(
                f"risk_mlp weights list features {meta['features']} but this code computes "
                f"{list(FEATURES)}: regenerate them with python -m tandem.models.train"
            )
        self.meta = meta
        self._params = {k: arrays[k] for k in PARAMS}
        self._mean = arrays["mean"]
        self._std = arrays["std"]
        self._review = float(meta["thresholds"]["review"])
        self._decline = float(meta["thresholds"]["decline"])

    def scores(self, rows: Sequence[tuple[float, ...]]) -> Any:
        """The fraud probabilities (float64, shape ``(n,)``) of prepared rows."""
        import numpy as np

        z = (self.features(rows) - self._mean) / self._std
        logits = forward(self._params, z).astype(np.float64)
        return 1.0 / (1.0 + np.exp(-logits))

    def results(self, rows: Sequence[tuple[float, ...]]) -> list[dict[str, Any]]:
        """Scores the payments in one pass through the network (one matrix product per
        layer for the whole batch)."""
        return [self.result(risk) for risk in self.scores(rows).tolist()]
