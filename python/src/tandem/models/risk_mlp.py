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
from pathlib import Path
from typing import Any, ClassVar

from .payments import PaymentModel, sigmoid

__all__ = ["PARAMS", "RiskMlpModel", "forward", "read_weights"]

#: The weight arrays of the weights file, input layer first.
PARAMS: tuple[str, ...] = ("w1", "b1", "w2", "b2", "w3", "b3")


def forward(params: Mapping[str, Any], z: Any) -> Any:
    """The logits (float32, shape ``(n,)``) of standardised features ``z`` (``(n, 16)``),
    with the weights as stored (``w1`` is ``(16, H)``, ``w2`` is ``(H, H)``)."""
    import numpy as np

    h = z.astype(np.float32, copy=False) @ params["w1"]
    h += params["b1"]
    np.maximum(h, 0.0, out=h)
    h2 = h @ params["w2"]
    h2 += params["b2"]
    np.maximum(h2, 0.0, out=h2)
    return h2 @ params["w3"] + params["b3"]


class _Network:
    """The MLP laid out for serving: transposed weights, so a batch of n payments is
    ``W2.T (H x H) @ h (H x n)``; OpenBLAS (numpy's wheels) runs that 15-35 % faster than
    ``h (n x H) @ W2`` for n from 2 to 64. Batches of 2 or 3 go one payment at a time: its
    small-n matrix product costs more than that many matrix-vector products."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        import numpy as np

        self.w1t = np.ascontiguousarray(params["w1"].T)
        self.b1 = np.ascontiguousarray(params["b1"][:, None])
        self.w2t = np.ascontiguousarray(params["w2"].T)
        self.b2 = np.ascontiguousarray(params["b2"][:, None])
        self.w3 = params["w3"]
        self.b3 = params["b3"]

    def logits(self, z: Any) -> Any:
        """Like :func:`forward` (same logits to float32 rounding)."""
        import numpy as np

        z = z.astype(np.float32)
        if 1 < len(z) < 4:
            return np.concatenate([self._columns(z[i : i + 1]) for i in range(len(z))])
        return self._columns(z)

    def _columns(self, z: Any) -> Any:
        import numpy as np

        h = self.w1t @ z.T
        h += self.b1
        np.maximum(h, 0.0, out=h)
        h2 = self.w2t @ h
        h2 += self.b2
        np.maximum(h2, 0.0, out=h2)
        return self.w3 @ h2 + self.b3


def read_weights(
    data: bytes, params: Sequence[str] = PARAMS
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Reads a weights file's bytes (an ``.npz`` from ``train.write_npz``): ``(meta,
    arrays)``, the arrays named in ``params`` as float32."""
    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
        arrays = {k: npz[k] for k in npz.files if k != "meta"}
    for key in params:
        arrays[key] = np.ascontiguousarray(arrays[key], dtype=np.float32)
    return meta, arrays


class RiskMlpModel(PaymentModel):
    """Scores payments for fraud risk with a 2-hidden-layer MLP (numpy, float32).

    :param weights: a weights file written by ``python -m tandem.models.train``; default the
        bundled ``data/risk_mlp_v1.npz``.
    """

    name: ClassVar[str] = "risk_mlp"
    version: ClassVar[str] = "1"

    def __init__(self, weights: str | Path | None = None) -> None:
        super().__init__(weights)
        self.meta: dict[str, Any] = {}
        self._net: _Network | None = None

    def load(self) -> None:
        """Reads the weights file and checks it matches this code's feature list."""
        meta, arrays = read_weights(self.weights_bytes("risk_mlp_v1.npz"))
        self.adopt(meta["features"], arrays["mean"], arrays["std"], meta["thresholds"])
        self.meta = meta
        self._net = _Network(arrays)

    def scores(self, rows: Sequence[tuple[float, ...]]) -> Any:
        """The fraud probabilities (float64, shape ``(n,)``) of prepared rows."""
        import numpy as np

        if self._net is None:
            raise RuntimeError("RiskMlpModel.load() was not called")
        logits = self._net.logits(self.standardized(rows)).astype(np.float64)
        return sigmoid(logits)

    def results(self, rows: Sequence[tuple[float, ...]]) -> list[dict[str, Any]]:
        """Scores the payments in one pass through the network (one matrix product per
        layer for the whole batch)."""
        return [self.result(risk) for risk in self.scores(rows).tolist()]
