"""The network of the sequence risk model: stacked GRU layers over the steps, a linear head.

Parameters (a dict of arrays; ``H`` hidden units, gates in the order reset, update, new):
``w{l}`` ``(inputs, 3H)``, ``b{l}`` ``(3H,)`` and ``u{l}`` ``(H, 3H)`` for each layer ``l``,
then ``head_w`` ``(H + payment features,)`` and ``head_b`` ``()``. One step of a layer::

    r = sigmoid(x W_r + h U_r + b_r)      z = sigmoid(x W_z + h U_z + b_z)
    n = tanh(x W_n + b_n + r * (h U_n))   h' = (1 - z) * n + z * h      (* elementwise)

The logit is ``head_w · [h_last, payment] + head_b``: the top layer's state after the last
step (the current payment) beside the payment's own standardized features. The input
projection ``x W + b`` of a layer runs for all steps in one matrix product; the recurrence
then runs step by step. The same code serves (no ``keep``) and trains (:func:`loss_and_grads`:
the forward pass keeps each step's gates, then backpropagation through time), in the dtype of
its inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .payments import sigmoid

__all__ = ["layer_names", "logits", "loss_and_grads"]


def layer_names(layers: int) -> tuple[str, ...]:
    """The parameter names of a network with ``layers`` GRU layers, input layer first."""
    return (*(f"{k}{i}" for i in range(layers) for k in "wbu"), "head_w", "head_b")


def _sigmoid(a: Any) -> Any:
    """The logistic function (as 0.5 tanh(a / 2) + 0.5: no overflow)."""
    import numpy as np

    return 0.5 * np.tanh(0.5 * a) + 0.5


def _layer(x: Any, w: Any, b: Any, u: Any, keep: list[Any] | None) -> Any:
    """One GRU layer over time-major ``x`` ``(S, B, inputs)``: its states ``(S, B, H)``.
    ``keep`` (when given) gets each step's ``(r, z, n, h U_n)`` for the backward pass."""
    import numpy as np

    steps, batch, _ = x.shape
    hidden = u.shape[0]
    gx = x.reshape(steps * batch, -1) @ w
    gx += b  # in place: a second (S x B, 3H) temporary costs more than the add itself
    gx = gx.reshape(steps, batch, 3 * hidden)
    out = np.empty((steps, batch, hidden), dtype=gx.dtype)
    h = np.zeros((batch, hidden), dtype=gx.dtype)
    for t in range(steps):
        gh = h @ u
        # Whole-array operations on fresh arrays: in-place updates of the gate slices (strided
        # views) measured slower at a batch of 64.
        rz = _sigmoid(gx[t, :, : 2 * hidden] + gh[:, : 2 * hidden])
        r, z = rz[:, :hidden], rz[:, hidden:]
        n = np.tanh(gx[t, :, 2 * hidden :] + r * gh[:, 2 * hidden :])
        h = n + z * (h - n)
        out[t] = h
        if keep is not None:
            keep.append((r, z, n, gh[:, 2 * hidden :]))
    return out


def _layers(params: Mapping[str, Any]) -> int:
    return sum(1 for k in params if k.startswith("u"))


def _forward(
    params: Mapping[str, Any], steps: Any, payment: Any, keep: list[list[Any]] | None
) -> tuple[list[Any], Any, Any]:
    """Each layer's input and states (time-major), the head's input and the logits."""
    import numpy as np

    xs = [np.ascontiguousarray(steps.transpose(1, 0, 2))]
    for i in range(_layers(params)):
        kept: list[Any] | None = None if keep is None else []
        xs.append(_layer(xs[-1], params[f"w{i}"], params[f"b{i}"], params[f"u{i}"], kept))
        if keep is not None and kept is not None:
            keep.append(kept)
    head_in = np.concatenate([xs[-1][-1], payment], axis=1)
    return xs, head_in, head_in @ params["head_w"] + params["head_b"]


def logits(params: Mapping[str, Any], steps: Any, payment: Any) -> Any:
    """The logits ``(B,)`` of standardized step features ``steps`` ``(B, S, F)`` and payment
    features ``payment`` ``(B, P)``."""
    return _forward(params, steps, payment, None)[2]


def _layer_backward(
    x: Any, w: Any, u: Any, out: Any, kept: list[Any], dout: Any
) -> tuple[Any, Any, Any, Any]:
    """Backpropagates ``dout`` (the loss's gradient for each state, ``(S, B, H)``) through one
    layer: the gradients for its input, ``w``, ``b`` and ``u``."""
    import numpy as np

    steps, batch, hidden = out.shape
    dgx = np.empty((steps, batch, 3 * hidden), dtype=out.dtype)
    du = np.zeros_like(u)
    dh_next = np.zeros((batch, hidden), dtype=out.dtype)
    zero = np.zeros((batch, hidden), dtype=out.dtype)
    for t in reversed(range(steps)):
        r, z, n, ghn = kept[t]
        h_prev = out[t - 1] if t else zero
        dh = dout[t] + dh_next
        da_n = dh * (1.0 - z) * (1.0 - n * n)
        da_z = dh * (h_prev - n) * z * (1.0 - z)
        da_r = da_n * ghn * r * (1.0 - r)
        dgx[t] = np.concatenate([da_r, da_z, da_n], axis=1)
        dgh = np.concatenate([da_r, da_z, da_n * r], axis=1)
        du += h_prev.T @ dgh
        dh_next = dh * z + dgh @ u.T
    flat = dgx.reshape(steps * batch, 3 * hidden)
    dw = x.reshape(steps * batch, -1).T @ flat
    dx = (flat @ w.T).reshape(x.shape)
    return dx, dw, flat.sum(axis=0), du


def loss_and_grads(
    params: Mapping[str, Any], steps: Any, payment: Any, labels: Any
) -> tuple[float, dict[str, Any]]:
    """The mean binary cross-entropy of the network on a batch, and its gradient for every
    parameter (backpropagation through time)."""
    import numpy as np

    keep: list[list[Any]] = []
    xs, head_in, logit = _forward(params, steps, payment, keep)
    loss = float(np.mean(np.logaddexp(0.0, logit) - labels * logit))
    dlogit = (sigmoid(logit) - labels) / len(labels)
    grads = {"head_w": head_in.T @ dlogit, "head_b": np.asarray(dlogit.sum(), dtype=logit.dtype)}
    hidden = xs[-1].shape[2]
    dout = np.zeros_like(xs[-1])
    dout[-1] = np.outer(dlogit, params["head_w"][:hidden])
    for i in reversed(range(len(keep))):
        dout, grads[f"w{i}"], grads[f"b{i}"], grads[f"u{i}"] = _layer_backward(
            xs[i], params[f"w{i}"], params[f"u{i}"], xs[i + 1], keep[i], dout
        )
    return loss, grads
