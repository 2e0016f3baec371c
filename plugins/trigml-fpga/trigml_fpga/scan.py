"""Search for the narrowest fixed-point type that keeps the decisions.

Every trial compiles the firmware for one type and measures the decision agreement
with the float model on the held-out events, so trials are expensive (seconds) and
the search is a pair of bisections rather than a grid: first the integer bits at
generous fractional bits, then the fractional bits at the integer bits found.
Compiled trials stay in the cache, so repeating a scan costs little.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trigml_fpga.fixed import MAX_WIDTH, FixedType

__all__ = ["ScanResult", "ScanTrial", "scan_precision"]

log = logging.getLogger(__name__)

SCAN_MAX_WIDTH = 32


@dataclass(frozen=True)
class ScanTrial:
    """One type tried: its agreement and how long the trial took."""

    precision: FixedType
    agreement: float
    passed: bool
    seconds: float


@dataclass
class ScanResult:
    """Outcome of a precision scan.

    Attributes
    ----------
    best : FixedType or None
        Narrowest type reaching the target, None when no trial did.
    trials : list of ScanTrial
        Every type tried, in order.
    target : float
    exhausted : bool
        The trial budget ran out before the search finished.
    """

    best: FixedType | None
    trials: list[ScanTrial] = field(default_factory=list)
    target: float = 0.999
    exhausted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report."""
        best = next((t for t in self.trials if t.precision == self.best), None)
        return {
            "target_agreement": self.target,
            "best": self.best.cpp() if self.best else None,
            "best_agreement": best.agreement if best else None,
            "exhausted": self.exhausted,
            "trials": [
                {
                    "precision": t.precision.cpp(),
                    "width": t.precision.width,
                    "integer": t.precision.integer,
                    "agreement": t.agreement,
                    "passed": t.passed,
                    "seconds": round(t.seconds, 2),
                }
                for t in self.trials
            ],
        }


class _Budget(Exception):
    pass


def scan_precision(
    evaluate: Callable[[FixedType], float],
    start: FixedType,
    target: float,
    *,
    max_trials: int = 10,
    min_integer: int = 1,
) -> ScanResult:
    """Find the narrowest ``ap_fixed<W,I>`` with agreement ≥ ``target``.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(type) -> agreement``: compiles and runs the firmware with that
        type and returns the lowest decision agreement over the working points.
    start : FixedType
        The configured type; the search starts there and keeps its kind and modes.
    target : float
    max_trials : int
        Most types evaluated.
    min_integer : int
        Fewest integer bits to try.

    Returns
    -------
    ScanResult
    """
    result = ScanResult(best=None, target=target)
    seen: dict[tuple[int, int], bool] = {}

    def passes(integer: int, fractional: int) -> bool:
        key = (integer, fractional)
        if key in seen:
            return seen[key]
        if len(result.trials) >= max_trials:
            raise _Budget
        fixed = start.resized(integer + fractional, integer)
        began = time.perf_counter()
        agreement = float(evaluate(fixed))
        ok = agreement >= target
        result.trials.append(
            ScanTrial(fixed, agreement, ok, time.perf_counter() - began)
        )
        log.info("precision scan: %s agreement %.5f", fixed.cpp(), agreement)
        seen[key] = ok
        return ok

    integer, fractional = start.integer, start.fractional
    try:
        # Grow until a passing type is found (usually the start already passes).
        while not passes(integer, fractional):
            if integer + fractional + 3 > min(SCAN_MAX_WIDTH, MAX_WIDTH):
                return result
            integer, fractional = integer + 1, fractional + 2
        # Fewest integer bits at these fractional bits.
        low, high = min_integer, integer
        while low < high:
            mid = (low + high) // 2
            if passes(mid, fractional):
                high = mid
            else:
                low = mid + 1
        integer = high
        # Fewest fractional bits at those integer bits.
        low, high = max(0, 2 - integer), fractional
        while low < high:
            mid = (low + high) // 2
            if passes(integer, mid):
                high = mid
            else:
                low = mid + 1
    except _Budget:
        result.exhausted = True
    passing = [t for t in result.trials if t.passed]
    if passing:
        narrowest = min(passing, key=lambda t: (t.precision.width, t.precision.integer))
        result.best = narrowest.precision
    return result
