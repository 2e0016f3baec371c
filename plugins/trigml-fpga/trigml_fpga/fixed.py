"""Fixed-point types as firmware writes them: ``ap_fixed<W,I,Q,O>``.

A :class:`FixedType` parses and prints the Xilinx ``ap_fixed``/``ap_ufixed`` notation,
fills in the quantisation and overflow modes that avoid silent wrap-around, and
quantises numbers with numpy for the few places where Python must know the firmware
grid (a working-point threshold compared in firmware).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np

from trigml.errors import ConfigError

__all__ = [
    "OVERFLOW_MODES",
    "QUANTISATION_MODES",
    "SAFE_OVERFLOW",
    "SAFE_QUANTISATION",
    "FixedType",
    "parse_fixed",
]

QUANTISATION_MODES = (
    "AP_RND",
    "AP_RND_ZERO",
    "AP_RND_MIN_INF",
    "AP_RND_INF",
    "AP_RND_CONV",
    "AP_TRN",
    "AP_TRN_ZERO",
)
OVERFLOW_MODES = ("AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM", "AP_WRAP", "AP_WRAP_SM")

#: Modes added to a type written without them: round to nearest and saturate, so
#: that a value beyond the range sticks to the edge instead of wrapping around.
SAFE_QUANTISATION = "AP_RND"
SAFE_OVERFLOW = "AP_SAT"

MAX_WIDTH = 64

_PATTERN = re.compile(
    r"^\s*(ap_u?fixed)\s*<\s*(-?\d+)\s*,\s*(-?\d+)\s*"
    r"(?:,\s*(AP_[A-Z_]+)\s*)?(?:,\s*(AP_[A-Z_]+)\s*)?(?:,\s*(\d+)\s*)?>\s*$"
)
_EXAMPLE = "write it as ap_fixed<16,6> or ap_fixed<16,6,AP_RND,AP_SAT>"


@dataclass(frozen=True)
class FixedType:
    """A fixed-point number format.

    Attributes
    ----------
    width : int
        Total number of bits W.
    integer : int
        Bits left of the binary point I, sign bit included for signed types.
    signed : bool
        ``ap_fixed`` (True) or ``ap_ufixed`` (False).
    quantisation, overflow : str or None
        Xilinx mode names; None keeps the library default (AP_TRN, AP_WRAP).
    """

    width: int
    integer: int
    signed: bool = True
    quantisation: str | None = None
    overflow: str | None = None

    @property
    def fractional(self) -> int:
        """Bits right of the binary point, W - I."""
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        """Value of the least significant bit, 2^-(W-I)."""
        return math.ldexp(1.0, -self.fractional)

    @property
    def max_value(self) -> float:
        """Largest representable value."""
        top = self.integer - 1 if self.signed else self.integer
        return math.ldexp(1.0, top) - self.lsb

    @property
    def min_value(self) -> float:
        """Smallest representable value."""
        return -math.ldexp(1.0, self.integer - 1) if self.signed else 0.0

    def cpp(self) -> str:
        """The C++ spelling, ``ap_fixed<16,6,AP_RND,AP_SAT>``."""
        kind = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.width), str(self.integer)]
        if self.quantisation or self.overflow:
            args.append(self.quantisation or "AP_TRN")
        if self.overflow:
            args.append(self.overflow)
        return f"{kind}<{','.join(args)}>"

    def __str__(self) -> str:
        return self.cpp()

    def short(self) -> str:
        """``<16,6>`` style label for plots and tables."""
        prefix = "" if self.signed else "u"
        return f"{prefix}<{self.width},{self.integer}>"

    def with_safe_modes(self) -> FixedType:
        """This type with AP_RND and AP_SAT where no mode was written."""
        return replace(
            self,
            quantisation=self.quantisation or SAFE_QUANTISATION,
            overflow=self.overflow or SAFE_OVERFLOW,
        )

    def resized(self, width: int, integer: int) -> FixedType:
        """The same kind and modes with another width and integer part."""
        return replace(self, width=width, integer=integer)

    def quantise(self, values: np.ndarray | float, *, ceil: bool = False) -> np.ndarray:
        """Values on this type's grid, saturated to its range.

        Parameters
        ----------
        values : array_like, float
        ceil : bool
            Round up to the next grid point instead of to the nearest one (used for
            thresholds: ``x >= t`` on the grid equals ``x >= ceil(t)``).
        """
        scaled = np.asarray(values, dtype=np.float64) / self.lsb
        steps = np.ceil(scaled) if ceil else np.floor(scaled + 0.5)
        return np.clip(steps * self.lsb, self.min_value, self.max_value)


def parse_fixed(text: str, *, key: str = "precision") -> FixedType:
    """Parse ``ap_fixed<W,I[,Q[,O[,N]]]>`` or ``ap_ufixed<...>``.

    Parameters
    ----------
    text : str
        The type as written in a config.
    key : str
        Dotted config key, for the error message.

    Raises
    ------
    ConfigError
        The text is not a fixed-point type, or its widths or modes are invalid.
    """
    match = _PATTERN.match(str(text))
    if not match:
        raise ConfigError(f"'{text}' is not a fixed-point type", key=key, hint=_EXAMPLE)
    kind, width, integer, mode_q, mode_o, _ = match.groups()
    fixed = FixedType(
        width=int(width),
        integer=int(integer),
        signed=kind == "ap_fixed",
        quantisation=mode_q,
        overflow=mode_o,
    )
    if not 2 <= fixed.width <= MAX_WIDTH:
        raise ConfigError(
            f"'{text}': width {fixed.width} outside 2..{MAX_WIDTH}", key=key
        )
    if not -fixed.width < fixed.integer <= fixed.width:
        raise ConfigError(
            f"'{text}': integer bits {fixed.integer} must lie in "
            f"{1 - fixed.width}..{fixed.width}",
            key=key,
        )
    if mode_q and mode_q not in QUANTISATION_MODES:
        raise ConfigError(
            f"'{text}': unknown quantisation mode {mode_q}",
            key=key,
            hint="one of " + ", ".join(QUANTISATION_MODES),
        )
    if mode_o and mode_o not in OVERFLOW_MODES:
        raise ConfigError(
            f"'{text}': unknown overflow mode {mode_o}",
            key=key,
            hint="one of " + ", ".join(OVERFLOW_MODES),
        )
    return fixed
