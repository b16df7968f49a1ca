"""Numbers in verdict messages, printed so that the comparison they state is visible.

A message such as "dbConnectionErrorsPerMinute 10 > 10" (a value of 10.0000001 rounded to
six digits) is worse than none: the reader cannot see why the rule failed. Every status
message and Event of the analysis prints its observed value with `against`, which uses
the fewest digits (at least two significant) that keep the value's order with its limit,
and prints limits with `exact`, the shortest text that reads back as the same float.
"""

from __future__ import annotations

import math


def exact(value: float) -> str:
    """The shortest text that reads back as `value` (0.05, 10, 2.5, 1e-07, inf)."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def against(value: float, limit: float) -> str:
    """`value` with the fewest digits (>= 2 significant) that keep its order with `limit`:
    10.0000001 against 10 prints 10.0000001, 0.0712 against 0.05 prints 0.071, 1500
    against 1000 prints 1500."""
    if not math.isfinite(value) or not math.isfinite(limit):
        return exact(value)
    order = (value > limit) - (value < limit)
    large = abs(value) >= 10
    for digits in range(0 if large else 2, 18):
        text = f"{value:.{digits}f}" if large else f"{value:.{digits}g}"
        printed = float(text)
        if (printed > limit) - (printed < limit) == order:
            return text
    return repr(value)
