"""The shared argument checks of fairlib._validation: what passes, and the message otherwise."""

import math
import re

import numpy as np
import pytest

from fairlib._validation import (
    check_finite_positive,
    check_fraction,
    check_nonnegative,
    check_positive_int,
)


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.int32(1), np.uint8(2)])
def test_check_positive_int_accepts_python_and_numpy_ints(value):
    got = check_positive_int("n", value)
    assert got == int(value) and type(got) is int


@pytest.mark.parametrize("value", [0, -2, True, False, np.bool_(True), 2.0, 2.5, "3", None, math.inf])
def test_check_positive_int_refuses(value):
    msg = f"Expected `n` to be a positive integer, but got {value!r}."
    with pytest.raises(ValueError, match=re.escape(msg)):
        check_positive_int("n", value)


def test_check_positive_int_allow_none():
    assert check_positive_int("meta_batch_size", None, allow_none=True) is None
    with pytest.raises(ValueError, match=re.escape(
            "Expected `meta_batch_size` to be a positive integer or None, but got 0.")):
        check_positive_int("meta_batch_size", 0, allow_none=True)


@pytest.mark.parametrize("value", [1e-9, 0.5, 3, np.float32(0.25), np.int64(2)])
def test_check_finite_positive_accepts(value):
    got = check_finite_positive("lr", value)
    assert got == float(value) and type(got) is float


@pytest.mark.parametrize("value", [0, 0.0, -1.0, math.inf, -math.inf, math.nan, np.nan, True, "1", None])
def test_check_finite_positive_refuses(value):
    with pytest.raises(ValueError, match=re.escape(
            f"Expected `lr` to be a finite positive number, but got {value!r}.")):
        check_finite_positive("lr", value)


def test_check_nonnegative():
    assert check_nonnegative("alpha", 0) == 0.0
    assert check_nonnegative("alpha", np.float64(2.5)) == 2.5
    for bad in (-1e-12, math.inf, math.nan, False, None):
        with pytest.raises(ValueError, match=re.escape(
                f"Expected `alpha` to be a finite non-negative number, but got {bad!r}.")):
            check_nonnegative("alpha", bad)


def test_check_fraction():
    assert [check_fraction("p", v) for v in (0, 1, 0.3, np.float32(0.5))] == [0.0, 1.0, 0.3, 0.5]
    for bad in (-0.1, 1.1, math.nan, math.inf, True, "0.5"):
        with pytest.raises(ValueError, match=re.escape(
                f"Expected `p` to be a fraction in [0, 1], but got {bad!r}.")):
            check_fraction("p", bad)
    with pytest.raises(ValueError, match=re.escape("Expected `p` to be a probability in [0, 1]")):
        check_fraction("p", 2, expected="a probability in [0, 1]")
