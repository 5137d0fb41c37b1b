"""A card's recent transactions, the input of the sequence model ``risk_seq``.

A history is a JSON object of columns, one value per past transaction, oldest first::

    {"amount": [12.5, 3.0, 1.0], "merchant_category": ["grocery", "gaming", "gaming"],
     "minutes_ago": [2880, 14, 9], "country_mismatch": [false, false, true],
     "card_present": [true, false, false]}

``amount``, ``merchant_category`` and ``minutes_ago`` (minutes before the current payment, so
it never increases along a history) are required; ``country_mismatch`` and ``card_present``
default to false. Each column holds at most :data:`HISTORY_LENGTH` values, and all hold the same
number; a shorter history (a new card) is left-padded, and the model sees the padding as such.
:func:`prepare_history` validates one with whole-column numpy operations (no Python loop over
the transactions) and returns its padded ``(HISTORY_LENGTH, len(HISTORY_COLUMNS))`` array;
:func:`step_features` turns a batch of them, with the current payments appended as the last
step, into the per-step features the GRU reads.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from typing import Any

from ..errors import BadRequest
from .payments import CATEGORIES, RAW_FIELDS, example_payments

__all__ = [
    "HISTORY_COLUMNS",
    "HISTORY_FIELDS",
    "HISTORY_LENGTH",
    "PADDING",
    "STEP_FEATURES",
    "example_inputs",
    "prepare_history",
    "standardize_steps",
    "step_features",
]

#: Past transactions the model reads (the most recent ones; fewer are left-padded).
HISTORY_LENGTH = 64

#: The history's JSON columns and whether each is required.
HISTORY_FIELDS: tuple[tuple[str, bool], ...] = (
    ("amount", True),
    ("merchant_category", True),
    ("minutes_ago", True),
    ("country_mismatch", False),
    ("card_present", False),
)

#: The columns of a prepared history: the fields (the category as its index in CATEGORIES),
#: then ``real``: 1 for a transaction, 0 for left padding.
HISTORY_COLUMNS: tuple[str, ...] = (*(f for f, _ in HISTORY_FIELDS), "real")

#: The features of each step (the history's transactions, then the current payment).
STEP_FEATURES: tuple[str, ...] = (
    "log_amount",
    "log_minutes_ago",
    "log_gap",
    "night",
    "country_mismatch",
    "card_present",
    "new_category",
    "padding",
    *(f"category_{c}" for c in CATEGORIES[1:]),
)

#: Where ``padding`` is in STEP_FEATURES (the one feature a padded step sets).
PADDING = STEP_FEATURES.index("padding")

_NAMES = frozenset(f for f, _ in HISTORY_FIELDS)
_EXAMPLE = (
    '{"amount": [12.5, 3.0], "merchant_category": ["grocery", "gaming"], "minutes_ago": [2880, 9]}'
)


@functools.cache
def _category_lookup() -> tuple[Any, Any]:
    """CATEGORIES sorted (for searchsorted) and each sorted one's index in CATEGORIES."""
    import numpy as np

    names = sorted(CATEGORIES)
    return np.asarray(names), np.asarray([CATEGORIES.index(c) for c in names])


def _first_not(values: list[Any], types: frozenset[type]) -> tuple[int, Any]:
    """The index and value of the first item of another type (error path only)."""
    return next((i, v) for i, v in enumerate(values) if type(v) not in types)


_NUMBER = frozenset({int, float})
_BOOLEAN = frozenset({bool, int, float})
_NAME = frozenset({str})


def _typed(values: list[Any], types: frozenset[type], where: str, what: str) -> None:
    """Checks every item's type at C speed (``set(map(type, ...))``, no Python loop)."""
    if not set(map(type, values)) <= types:
        i, v = _first_not(values, types)
        raise BadRequest(f"{where} must be a list of {what}, got {v!r} at [{i}]")


def _numbers(values: list[Any], where: str, boolean: bool) -> Any:
    """A column of numbers (or of booleans when ``boolean``) as a float array."""
    import numpy as np

    _typed(values, _BOOLEAN if boolean else _NUMBER, where, "booleans" if boolean else "numbers")
    try:
        arr = np.asarray(values, dtype=np.float64)
    except OverflowError:  # an integer past float64
        i, v = next((i, v) for i, v in enumerate(values) if abs(v) > sys.float_info.max)
        raise BadRequest(
            f"{where}[{i}] must be finite, got a {len(str(v))}-digit integer"
        ) from None
    finite = np.isfinite(arr)
    if not finite.all():
        i = int(np.argmin(finite))
        raise BadRequest(f"{where}[{i}] must be finite, got {values[i]!r}")
    if boolean:
        return (arr != 0).astype(np.float64)
    if (arr < 0).any():
        i = int(np.argmax(arr < 0))
        raise BadRequest(f"{where}[{i}] must be >= 0, got {values[i]!r}")
    return arr


def _categories(values: list[Any], where: str) -> Any:
    """A column of category names as their indices in CATEGORIES (float)."""
    import numpy as np

    _typed(values, _NAME, where, "category names")
    names, index = _category_lookup()
    arr = np.asarray(values)
    pos = np.minimum(np.searchsorted(names, arr), len(names) - 1)
    known = names[pos] == arr
    if not known.all():
        i = int(np.argmin(known))
        raise BadRequest(f"{where}[{i}] {values[i]!r} is unknown (known: {', '.join(CATEGORIES)})")
    return index[pos].astype(np.float64)


def _column(key: str, values: Any, where: str) -> Any:
    """One history column, validated, as a float array."""
    import numpy as np

    if not isinstance(values, list):
        raise BadRequest(f"{where}.{key} must be a list, got {type(values).__name__}")
    if not values:
        return np.zeros(0)
    if key == "merchant_category":
        return _categories(values, f"{where}.{key}")
    boolean = key in ("country_mismatch", "card_present")
    arr = _numbers(values, f"{where}.{key}", boolean)
    if key == "minutes_ago" and len(arr) > 1 and (arr[1:] > arr[:-1]).any():
        i = int(np.argmax(arr[1:] > arr[:-1])) + 1
        raise BadRequest(
            f"{where}.minutes_ago[{i}] is {values[i]!r}, more than the {values[i - 1]!r} before "
            "it: list the transactions oldest first (minutes_ago never increases)"
        )
    return arr


def prepare_history(
    history: Any, where: str = "history", model: str = "risk_seq", length: int = HISTORY_LENGTH
) -> Any:
    """Validates one history and returns it left-padded: a ``(length, len(HISTORY_COLUMNS))``
    float array.

    :param where: how error messages name the history (``history[3]`` in a list).
    :param model: the model name error messages start with.
    :raises BadRequest: naming the column (and the transaction), what was given and what is
        accepted.
    """
    import numpy as np

    if not isinstance(history, Mapping):
        raise BadRequest(
            f"{model} model: {where} must be a JSON object of columns like {_EXAMPLE}, "
            f"got {type(history).__name__}"
        )
    unknown = history.keys() - _NAMES
    if unknown:
        raise BadRequest(
            f"{model} model: {where} has unknown field {sorted(unknown)[0]!r} "
            f"(known: {', '.join(f for f, _ in HISTORY_FIELDS)})"
        )
    out = np.zeros((length, len(HISTORY_COLUMNS)))
    first = ""
    n = 0
    for col, (key, required) in enumerate(HISTORY_FIELDS):
        values = history.get(key)
        if values is None:
            if required:
                raise BadRequest(
                    f"{model} model: {where} is missing required field {key!r} (a list with "
                    f"one value per past transaction, oldest first, like {_EXAMPLE})"
                )
            continue
        try:
            arr = _column(key, values, where)
        except BadRequest as exc:
            raise BadRequest(f"{model} model: {exc}") from None
        if not first:
            first, n = key, len(arr)
            if n > length:
                raise BadRequest(
                    f"{model} model: {where}.{key} has {n} transactions; at most {length} "
                    "are read: send the most recent ones"
                )
        elif len(arr) != n:
            raise BadRequest(
                f"{model} model: {where}.{key} has {len(arr)} values but {where}.{first} has "
                f"{n}: every column lists the same transactions"
            )
        out[length - n :, col] = arr
    out[length - n :, -1] = 1.0
    return out


_PAY = {key: i for i, (key, _) in enumerate(RAW_FIELDS)}


def step_features(payments: Any, histories: Any) -> Any:
    """The ``(n, length + 1, len(STEP_FEATURES))`` step features of prepared payments (an
    ``(n, 7)`` array in RAW_FIELDS order) and their prepared histories (``(n, length, 6)``):
    each history's transactions, then the payment itself as the last step.

    A step's hour is the payment's ``hour`` less its ``minutes_ago``; ``log_gap`` is the log of
    the minutes since the step before (0 for the oldest); ``new_category``: no earlier step of
    the window has its category. Padded steps are all zeros but ``padding``. Vectorized: one
    pass of numpy operations over the whole batch, in float32 (as the network).
    """
    import numpy as np

    pay = np.asarray(payments, dtype=np.float32)
    past = np.asarray(histories, dtype=np.float32)
    n = len(pay)

    def steps(column: str, now: Any) -> Any:
        return np.concatenate([past[:, :, HISTORY_COLUMNS.index(column)], now], axis=1)

    def current(key: str) -> Any:
        return pay[:, _PAY[key], None]

    amount = steps("amount", current("amount"))
    category = steps("merchant_category", current("merchant_category"))
    minutes = steps("minutes_ago", np.zeros((n, 1), dtype=np.float32))
    real = steps("real", np.ones((n, 1), dtype=np.float32))
    gap = np.zeros_like(minutes)
    gap[:, 1:] = (minutes[:, :-1] - minutes[:, 1:]) * real[:, :-1]
    hour = np.mod(current("hour") - minutes / 60.0, 24.0)
    kinds = np.arange(len(CATEGORIES), dtype=np.float32)
    onehot = (category[:, :, None] == kinds) * real[:, :, None]
    earlier = np.cumsum(onehot, axis=1) - onehot
    cols = [
        np.log1p(amount),
        np.log1p(minutes),
        np.log1p(gap),
        (hour < 6) * real,
        steps("country_mismatch", current("country_mismatch")),
        steps("card_present", current("card_present")),
        ((earlier * onehot).sum(axis=2) == 0) * real,
        1.0 - real,
    ]
    return np.concatenate([np.stack(cols, axis=2), onehot[:, :, 1:]], axis=2)


def standardize_steps(features: Any, mean: Any, std: Any) -> Any:
    """Step features standardized as in training, float32; padded steps stay zero but
    ``padding`` (1)."""
    import numpy as np

    z = np.array(features, dtype=np.float32)
    padding = z[:, :, PADDING].copy()
    z -= np.asarray(mean, dtype=np.float32)
    z /= np.asarray(std, dtype=np.float32)
    z *= (1.0 - padding)[:, :, None]
    z[:, :, PADDING] = padding
    return z


def example_inputs(n: int, length: int = HISTORY_LENGTH) -> list[dict[str, Any]]:
    """``n`` varied, valid ``{"payment", "history"}`` inputs with full ``length``-transaction
    histories, the same on every call (for benchmarks and tests). Every fifth ends in a burst
    of tiny amounts minutes apart, as card testing does."""
    cats = ["grocery", "fuel", "restaurant", "grocery", "travel", "electronics", "gaming"]
    out = []
    for i, payment in enumerate(example_payments(n)):
        testing = range(length - 5, length) if i % 5 == 0 else range(0)
        spacing = 600 + 97 * (i % 11)
        out.append(
            {
                "payment": payment,
                "history": {
                    "amount": [
                        1.0 + t % 3 if t in testing else 4.0 + (7 * i + 13 * t) % 90
                        for t in range(length)
                    ],
                    "merchant_category": [
                        "gaming" if t in testing else cats[(i + t) % len(cats)]
                        for t in range(length)
                    ],
                    "minutes_ago": [
                        3 * (length - t) if t in testing else spacing * (length - t) + 15
                        for t in range(length)
                    ],
                    "country_mismatch": [(i + t) % 13 == 0 for t in range(length)],
                    "card_present": [t % 3 == 0 and t not in testing for t in range(length)],
                },
            }
        )
    return out
