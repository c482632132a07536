"""Input conversion and validation shared by the public API.

Every message names the argument, what was expected and what came, in one shape:
``Expected `name` to be <constraint>, but got <value>.``  These checks read from the
host and therefore live in the user-facing layer only, never in the device core.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

ArrayLike = Any  # torch.Tensor | np.ndarray | pd.Series | pd.DataFrame | Sequence

MSG_LENGTH = "Found input variables with inconsistent numbers of samples: {sizes}."
MSG_EMPTY = "Expected `{name}` to be non-empty, but got 0 samples."
MSG_NDIM = "Expected `{name}` to be 1-dimensional, but got shape {shape}."
MSG_TYPE = "Expected `{name}` to be {expected}, but got {got}."
MSG_BINARY = (
    "Expected `{name}` to contain binary labels from {{0, 1}} or {{-1, 1}}, but got values "
    "{values}.{hint}"
)
MSG_FINITE = "Expected `{name}` to be finite, but got {what} at {count} position(s) (first at index {first})."
MSG_WEIGHT = "Expected `sample_weight` to be non-negative, but got {value} at index {index}."
MSG_MISSING = (
    "Expected `sensitive_features` to have no missing values, but {column} has {count} "
    "(first at row {first}). Remove or replace them before computing metrics."
)
MSG_CHOICE = "Expected `{name}` to be one of {choices}, but got {value!r}."


def msg_expected(name: str, expected: str, got: object) -> str:
    """The one message shape: ``Expected `name` to be <expected>, but got <got>.``"""
    return MSG_TYPE.format(name=name, expected=expected, got=got)


def check_choice(name: str, value: object, choices: Sequence[object]) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is one of the string ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(MSG_CHOICE.format(name=name, choices=", ".join(map(repr, choices)), value=value))


def _is_int(value: object) -> bool:
    # bool is an int subclass but never a count; numpy integers are.
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value: object, *, allow_none: bool = False) -> int | None:
    """Return ``value`` as an ``int`` after checking it is an integer >= 1.

    Python and numpy integers pass; ``bool``, floats and anything else raise
    ``ValueError`` naming ``name``. With ``allow_none``, ``None`` passes through.

    Examples
    --------
    >>> from fairlib._validation import check_positive_int
    >>> check_positive_int("n_bins", 10)
    10
    >>> check_positive_int("n_bins", True)
    Traceback (most recent call last):
    ...
    ValueError: Expected `n_bins` to be a positive integer, but got True.
    """
    if value is None and allow_none:
        return None
    if not _is_int(value) or value < 1:  # type: ignore[operator]
        expected = "a positive integer" + (" or None" if allow_none else "")
        raise ValueError(msg_expected(name, expected, repr(value)))
    return int(value)  # type: ignore[arg-type]


def check_finite_positive(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` after checking it is a finite real number > 0.

    NaN, infinity, ``bool`` and non-numbers raise ``ValueError`` naming ``name``.

    Examples
    --------
    >>> from fairlib._validation import check_finite_positive
    >>> check_finite_positive("lr", 0.1)
    0.1
    >>> check_finite_positive("lr", float("inf"))
    Traceback (most recent call last):
    ...
    ValueError: Expected `lr` to be a finite positive number, but got inf.
    """
    if not _is_real(value) or not math.isfinite(value) or not value > 0:  # type: ignore[arg-type,operator]
        raise ValueError(msg_expected(name, "a finite positive number", repr(value)))
    return float(value)  # type: ignore[arg-type]


def check_nonnegative(name: str, value: object) -> float:
    """Return ``value`` as a ``float`` after checking it is a finite real number >= 0.

    Examples
    --------
    >>> from fairlib._validation import check_nonnegative
    >>> check_nonnegative("alpha", 0)
    0.0
    >>> check_nonnegative("alpha", -1.0)
    Traceback (most recent call last):
    ...
    ValueError: Expected `alpha` to be a finite non-negative number, but got -1.0.
    """
    if not _is_real(value) or not math.isfinite(value) or value < 0:  # type: ignore[arg-type,operator]
        raise ValueError(msg_expected(name, "a finite non-negative number", repr(value)))
    return float(value)  # type: ignore[arg-type]


def check_fraction(name: str, value: object, *, expected: str = "a fraction in [0, 1]") -> float:
    """Return ``value`` as a ``float`` after checking it is a real number in [0, 1].

    ``expected`` words the constraint for the argument (``"a probability in [0, 1]"``).

    Examples
    --------
    >>> from fairlib._validation import check_fraction
    >>> check_fraction("meta", 0.2)
    0.2
    >>> check_fraction("meta", float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: Expected `meta` to be a fraction in [0, 1], but got nan.
    """
    if not _is_real(value) or not 0.0 <= value <= 1.0:  # type: ignore[operator]
        raise ValueError(msg_expected(name, expected, repr(value)))
    return float(value)  # type: ignore[arg-type]


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
    allow_inf: bool = False,
    expected: str | None = None,
) -> float:
    """Return ``value`` as a ``float`` after checking it is a real number within bounds.

    NaN, ``bool`` and non-numbers always fail; ``+inf`` passes only with ``allow_inf``
    (``-inf`` never). ``expected`` words the constraint; by default it is built from the
    bounds. Raises ``ValueError`` naming ``name``.

    Examples
    --------
    >>> from fairlib._validation import check_number
    >>> check_number("tau", 2, low=0.0, low_open=True)
    2.0
    >>> check_number("tau", float("nan"), low=0.0, expected="a positive temperature")
    Traceback (most recent call last):
    ...
    ValueError: Expected `tau` to be a positive temperature, but got nan.
    """
    if expected is None:
        parts = []
        if low is not None:
            parts.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            parts.append(f"<= {high:g}")
        expected = "a real number" + (" " + " and ".join(parts) if parts else "")
    ok = _is_real(value) and not math.isnan(value)  # type: ignore[arg-type]
    if ok:
        v = float(value)  # type: ignore[arg-type]
        if math.isinf(v) and not (allow_inf and v > 0):
            ok = False
        elif low is not None and (v < low or (low_open and v == low)):
            ok = False
        elif high is not None and v > high:
            ok = False
    if not ok:
        raise ValueError(msg_expected(name, expected, repr(value)))
    return float(value)  # type: ignore[arg-type]


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` after checking it is a ``bool`` (numpy's too); ``TypeError`` otherwise.

    Examples
    --------
    >>> from fairlib._validation import check_bool
    >>> check_bool("stratified", False)
    False
    >>> check_bool("stratified", "no")
    Traceback (most recent call last):
    ...
    TypeError: Expected `stratified` to be True or False, but got 'no'.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(msg_expected(name, "True or False", repr(value)))
    return bool(value)


#: The seeds ``torch.Generator.manual_seed`` accepts.
SEED_RANGE = (-(2**63), 2**64 - 1)


def check_seed(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer torch can seed with.

    Python and numpy integers in ``[-2**63, 2**64 - 1]`` pass; ``bool``, floats, strings
    and anything else raise ``ValueError`` naming ``name``.

    Examples
    --------
    >>> from fairlib._validation import check_seed
    >>> check_seed("seed", 7)
    7
    >>> check_seed("seed", "a")
    Traceback (most recent call last):
    ...
    ValueError: Expected `seed` to be an integer in [-2**63, 2**64 - 1], but got 'a'.
    """
    if not _is_int(value) or not SEED_RANGE[0] <= value <= SEED_RANGE[1]:  # type: ignore[operator]
        raise ValueError(msg_expected(name, "an integer in [-2**63, 2**64 - 1]", repr(value)))
    return int(value)  # type: ignore[arg-type]


def check_device(name: str, device: object) -> torch.device:
    """The ``torch.device`` for ``device``, checked to exist on this machine.

    ``"auto"`` is CUDA when available, else the CPU. A string or ``torch.device`` naming
    CUDA (or MPS) when it is not available, or a CUDA index beyond the devices present,
    raises ``ValueError`` naming ``name`` before any work; anything that is not a device
    raises ``TypeError``.

    Examples
    --------
    >>> from fairlib._validation import check_device
    >>> check_device("device", "cpu")
    device(type='cpu')
    >>> check_device("device", "gpu")
    Traceback (most recent call last):
    ...
    ValueError: Expected `device` to be a device such as 'auto', 'cpu' or 'cuda:0', but got 'gpu'.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)) and not _is_int(device):
        raise TypeError(msg_expected(name, "'auto', a device name such as 'cpu' or 'cuda:0', "
                                     "or a torch.device", _type_name(device)))
    try:
        dev = torch.device(device)  # type: ignore[arg-type]
    except (RuntimeError, ValueError, TypeError) as err:
        raise ValueError(msg_expected(name, "a device such as 'auto', 'cpu' or 'cuda:0'",
                                      repr(device))) from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(msg_expected(
                name, "a device available on this machine ('auto' or 'cpu')",
                f"{device!r}: CUDA is not available (torch.cuda.is_available() is False)"))
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(msg_expected(
                name, f"a CUDA device index below {count}",
                f"{device!r}: this machine has {count} CUDA device(s)"))
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(msg_expected(
            name, "a device available on this machine ('auto' or 'cpu')",
            f"{device!r}: MPS is not available (torch.backends.mps.is_available() is False)"))
    return dev


def check_model_device(model_device: torch.device, device: object,
                       name: str = "device") -> torch.device:
    """The device ``device`` names, checked to exist here and to hold the model's parameters.

    For functions that take a model and a device: ``device`` goes through
    :func:`check_device` (``"auto"`` resolves, a missing CUDA is refused), and a device
    other than ``model_device`` raises ``ValueError`` naming ``name`` rather than
    failing later inside the forward pass (the model is never moved behind the
    caller's back).

    Examples
    --------
    >>> import torch
    >>> from fairlib._validation import check_model_device
    >>> check_model_device(torch.device("cpu"), "cpu")
    device(type='cpu')
    >>> check_model_device(torch.device("cpu"), "meta")
    Traceback (most recent call last):
    ...
    ValueError: Expected `device` to be the device of the model's parameters (cpu), but got 'meta'; move the model with model.to('meta') first, or leave `device` out.
    """
    dev = check_device(name, device)
    if not _same_device(dev, model_device):
        raise ValueError(msg_expected(
            name, f"the device of the model's parameters ({model_device})",
            f"{device!r}; move the model with model.to({str(dev)!r}) first, "
            f"or leave `{name}` out"))
    return dev


def _same_device(a: torch.device, b: torch.device) -> bool:
    """Equal devices, counting ``cuda`` (no index) as the current CUDA device."""
    if a.type != b.type:
        return False
    if a.type == "cuda" and (a.index is None) != (b.index is None):
        current = torch.cuda.current_device()
        first = a.index if a.index is not None else current
        return first == (b.index if b.index is not None else current)
    return a.index == b.index


def check_group_codes(t: torch.Tensor, name: str) -> torch.Tensor:
    """Integer group codes ``t`` as int64, refusing NaN, infinity and non-integer floats.

    Booleans become 0/1; an integral float tensor (``0.0, 1.0``) is accepted and cast.
    Reads from the host once: call it at set-up time, not per step.

    Examples
    --------
    >>> import torch
    >>> from fairlib._validation import check_group_codes
    >>> check_group_codes(torch.tensor([0.0, 1.0, 1.0]), "groups")
    tensor([0, 1, 1])
    >>> check_group_codes(torch.tensor([0.2, 0.7]), "groups")
    Traceback (most recent call last):
    ...
    ValueError: Expected `groups` to be integer group codes, but got non-integer values at 2 position(s) (first at index 0: 0.2).
    """
    if t.dtype == torch.bool:
        return t.to(torch.int64)
    if t.is_floating_point():
        check_finite(t, name)
        bad = t != t.round()
        if bool(bad.any()):
            i = _first_index(bad)
            raise ValueError(msg_expected(
                name, "integer group codes",
                f"non-integer values at {int(bad.sum())} position(s) (first at index {i}: "
                f"{float(t[i]):g})"))
        return t.to(torch.int64)
    return t.to(torch.int64)


def _type_name(x: object) -> str:
    if isinstance(x, (np.ndarray, torch.Tensor, pd.Series)):
        return f"{type(x).__name__} of dtype {x.dtype}"
    return type(x).__name__


def to_tensor(x: ArrayLike, name: str, device: torch.device | None = None) -> torch.Tensor:
    """Convert array-like input to a 1-d tensor, keeping a tensor's own device.

    Numeric and boolean inputs only; other dtypes raise ``TypeError`` naming ``name``.
    """
    if x is None:
        raise TypeError(MSG_TYPE.format(name=name, expected="an array-like of numbers", got="None"))
    if isinstance(x, torch.Tensor):
        t = x
    else:
        if isinstance(x, (pd.Series, pd.DataFrame)):
            arr = x.to_numpy()
        else:
            try:
                arr = np.asarray(x)
            except (TypeError, ValueError) as err:
                raise TypeError(
                    MSG_TYPE.format(name=name, expected="an array-like of numbers", got=_type_name(x))
                ) from err
        if arr.dtype == object:
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError) as err:
                raise TypeError(
                    MSG_TYPE.format(name=name, expected="numeric or boolean values", got="object values")
                ) from err
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
            raise TypeError(
                MSG_TYPE.format(name=name, expected="numeric or boolean values", got=f"dtype {arr.dtype}")
            )
        if arr.ndim == 0:  # ascontiguousarray would make a scalar one sample
            raise TypeError(MSG_TYPE.format(name=name, got=f"the {type(x).__name__} {x!r}",
                                            expected="an array-like with one value per sample"))
        if not arr.flags.writeable:  # pandas' read-only views: torch.from_numpy warns on them
            arr = arr.copy()
        t = torch.from_numpy(np.ascontiguousarray(arr))
        if device is not None:
            t = t.to(device)
    if t.is_complex():
        raise TypeError(MSG_TYPE.format(name=name, expected="real values", got=f"dtype {t.dtype}"))
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1:
        raise ValueError(MSG_NDIM.format(name=name, shape=tuple(t.shape)))
    return t


def input_device(*xs: object) -> torch.device:
    """The device of the first tensor among ``xs``; CPU when none is a tensor."""
    for x in xs:
        if isinstance(x, torch.Tensor):
            return x.device
    return torch.device("cpu")


def check_lengths(**arrays: Any) -> int:
    """Check that all given arrays have the same, non-zero length; return it."""
    sizes = {k: len(v) for k, v in arrays.items() if v is not None}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"`{k}` has {n}" for k, n in sizes.items())
        raise ValueError(MSG_LENGTH.format(sizes=listed))
    n = next(iter(sizes.values()))
    if n == 0:
        raise ValueError(MSG_EMPTY.format(name=next(iter(sizes))))
    return n


def _first_index(mask: torch.Tensor) -> int:
    return int(torch.nonzero(mask)[0, 0])


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` if ``t`` holds NaN or infinity."""
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            what = "NaN" if bool(torch.isnan(t).any()) else "infinity"
            raise ValueError(
                MSG_FINITE.format(name=name, what=what, count=int(bad.sum()), first=_first_index(bad))
            )


def binary_labels(y_true: torch.Tensor, y_pred: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    """Check labels are binary and return them coded 0/1 (integer dtype, no copy if possible).

    As in fairlearn, the union of the values must be a subset of ``{0, 1}`` or of
    ``{-1, 1}``; 1 is the positive label.  The common case (integer or boolean 0/1)
    costs one min/max pass per array and a single read from the host.
    """
    named = [("y_true", y_true)] + ([("y_pred", y_pred)] if y_pred is not None else [])
    for name, t in named:
        check_finite(t, name)
    exact = [t for _, t in named if not t.is_floating_point() and t.dtype != torch.bool]
    bounds = torch.stack([v.to(torch.float64) for t in exact for v in torch.aminmax(t)]) if exact else None
    if bounds is not None and bool(((bounds >= 0) & (bounds <= 1)).all()):
        floats_ok = all(
            not bool(((t != 0) & (t != 1)).any()) for _, t in named if t.is_floating_point()
        )
        if floats_ok:
            return tuple(as_binary_code(t) for _, t in named)
    elif bounds is None and all(t.dtype == torch.bool for _, t in named):
        return tuple(as_binary_code(t) for _, t in named)
    return _binary_labels_slow(named)


def as_binary_code(t: torch.Tensor) -> torch.Tensor:
    """0/1 labels as an integer tensor without a copy where possible (no checks)."""
    if t.dtype == torch.bool:
        return t.view(torch.uint8)
    if t.is_floating_point():
        return (t == 1).to(torch.int64)
    return t


def _binary_labels_slow(named: list[tuple[str, torch.Tensor]]) -> tuple[torch.Tensor, ...]:
    seen: dict[str, set[float]] = {
        name: set(torch.unique(t.to(torch.float64)).tolist()) for name, t in named
    }
    union = set().union(*seen.values())
    if not (union <= {0.0, 1.0} or union <= {-1.0, 1.0}):
        hint = " Threshold scores first, for example `y_pred = scores >= 0.5`."
        for name, values in seen.items():
            if not values <= {-1.0, 0.0, 1.0}:
                raise ValueError(MSG_BINARY.format(
                    name=name, values=_fmt_values(sorted(values)[:10]),
                    hint=hint if name == "y_pred" else ""))
        raise ValueError(MSG_BINARY.format(
            name="y_true` and `y_pred", values=_fmt_values(sorted(union)), hint=""))
    return tuple((t == 1).to(torch.int64) for _, t in named)


def _fmt_values(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def check_scores(t: torch.Tensor, name: str = "y_score") -> torch.Tensor:
    """Check scores are finite and return them as float64."""
    check_finite(t, name)
    return t.to(torch.float64)


def as_weights(sample_weight: ArrayLike | None, n: int, device: torch.device) -> torch.Tensor | None:
    """Validate ``sample_weight`` (finite, non-negative) and return float64, or ``None``."""
    if sample_weight is None:
        return None
    w = to_tensor(sample_weight, "sample_weight", device).to(device)
    check_finite(w, "sample_weight")
    neg = w < 0
    if bool(neg.any()):
        i = _first_index(neg)
        raise ValueError(MSG_WEIGHT.format(value=float(w[i]), index=i))
    return w.to(torch.float64)
