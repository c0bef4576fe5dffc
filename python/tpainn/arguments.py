"""Checks of the numbers a caller passes to a generator or a run: each returns the value as int/float or raises
ValueError naming the argument, so that a bad setting fails before anything runs."""

from __future__ import annotations

import math

import numpy as np


def integer(name: str, value, minimum: int) -> int:
    """`value` as an int ≥ minimum (bools and floats are refused, 2.0 included)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def number(name: str, value, allow_zero: bool = False) -> float:
    """`value` as a finite float > 0 (≥ 0 with allow_zero)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        converted = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a number, got {value!r}") from err
    if not math.isfinite(converted) or converted < 0 or (converted == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'} and finite, got {value!r}")
    return converted


def positive_numbers(name: str, values) -> list[float]:
    """A number or a sequence of them, as a non-empty list of distinct finite floats > 0."""
    if isinstance(values, (int, float, np.number)) and not isinstance(values, bool):
        values = [values]
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a sequence of positive numbers, got {values!r}") from err
    if not numbers:
        raise ValueError(f"{name} must not be empty")
    for v in numbers:
        number(name, v)
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"{name} must not repeat a value, got {numbers}")
    return numbers


def whole_steps(name: str, duration_fs: float, timestep_fs: float, minimum: int = 1) -> int:
    """duration / timestep, which must be a whole number ≥ minimum: a time is never rounded to the timestep."""
    steps = round(duration_fs / timestep_fs)
    if steps < minimum or abs(steps * timestep_fs - duration_fs) > 1e-9 * max(duration_fs, 1.0):
        at_least = f" (≥ {minimum})" if minimum else ""
        raise ValueError(f"{name} ({duration_fs:g} fs) must be a whole number{at_least} of timesteps of {timestep_fs:g} fs")
    return steps
