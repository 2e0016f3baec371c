"""Packing of EMTF pT-assignment features into a lookup-table address.

Each feature of a mode is compressed into a small unsigned *code* of a fixed number of
bits; the codes are concatenated, first field in the most significant bits, into one
address of at most :data:`MAX_ADDRESS_BITS` bits. The model sees the *decoded* value of
each code (the lower edge of its interval), so evaluating it on every address gives a
table that reproduces it exactly. The table has one axis per field (``table[c0, c1,
…]``), and its C-order flat index is the address; the edges of every field are stored
with it, so a lookup is ``searchsorted(edges_i, x_i, side="right") - 1`` per field.

Compressions:

- ``dphi``: a magnitude in φ units, saturating, in four segments of equal numbers of
  codes with steps s, 2s, 4s and 8s, where s is the smallest integer step that lets
  the codes reach the field's range (full precision at small Δφ, that is at high pT,
  where it matters);
- ``linear``: ``lo + step·code`` (θ, Δθ and the CSC bend), saturating at both ends;
- ``flag``: one bit (a relative sign, the station-1 ring, front/rear, an RPC hit).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trigml.errors import ConfigError, DataError

__all__ = [
    "MAX_ADDRESS_BITS",
    "PT_BITS",
    "PT_LSB_GEV",
    "FieldPacking",
    "Packing",
    "build_lut",
    "dphi_edges",
    "fill_from_trees",
    "invpt_to_pt_code",
    "linear_edges",
    "lookup",
    "pt_code_to_invpt",
]

log = logging.getLogger(__name__)

#: Widest address accepted (the memory of the CMS endcap track finder).
MAX_ADDRESS_BITS = 30
#: Width of a table word: the hardware pT, in steps of :data:`PT_LSB_GEV`.
PT_BITS = 9
PT_LSB_GEV = 0.5


@dataclass(frozen=True)
class FieldPacking:
    """One field of an address.

    Attributes
    ----------
    name : str
        Feature name (``dphi_12``, ``theta`` …).
    bits : int
        Width of the code.
    kind : {"dphi", "linear", "flag"}
    edges : ndarray of float64, shape (2**bits,)
        Lower edge of each code's interval, in the feature's units; also the value
        the model sees for that code.
    unit : str
    description : str
    """

    name: str
    bits: int
    kind: str
    edges: np.ndarray = field(repr=False)
    unit: str = ""
    description: str = ""

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Codes (int64) of raw values; values outside the range saturate."""
        codes = np.searchsorted(self.edges, values, side="right") - 1
        return np.clip(codes, 0, len(self.edges) - 1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """The value the model sees for each code."""
        return self.edges[codes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "bits": self.bits,
            "kind": self.kind,
            "unit": self.unit,
            "min": float(self.edges[0]),
            "max_edge": float(self.edges[-1]),
        }


def dphi_edges(bits: int, full_range: float) -> np.ndarray:
    """Edges of the saturating four-segment Δφ compression.

    Parameters
    ----------
    bits : int
        Code width, at least 2.
    full_range : float
        Δφ (φ units) from which on the code saturates, approximately.
    """
    if bits < 2:
        raise ConfigError(f"a Δφ field needs at least 2 bits, got {bits}")
    per_segment = 1 << (bits - 2)
    base = max(1, math.ceil(full_range / (15 * per_segment)))
    steps = np.concatenate([np.full(per_segment, base << k) for k in range(4)])
    return np.concatenate([[0.0], np.cumsum(steps)[:-1]]).astype(np.float64)


def linear_edges(bits: int, lo: float, step: float) -> np.ndarray:
    """Edges ``lo + step·k`` for k = 0 … 2**bits − 1."""
    return lo + step * np.arange(1 << bits, dtype=np.float64)


@dataclass(frozen=True)
class Packing:
    """The ordered fields of an address; the first field is most significant."""

    fields: tuple[FieldPacking, ...]

    def __post_init__(self) -> None:
        if self.address_bits > MAX_ADDRESS_BITS:
            raise ConfigError(
                f"the address needs {self.address_bits} bits, more than the "
                f"{MAX_ADDRESS_BITS} the table memory has",
                hint="lower 'address_bits' or the bits of single fields ('field_bits')",
            )

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def address_bits(self) -> int:
        return sum(f.bits for f in self.fields)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(1 << f.bits for f in self.fields)

    @property
    def n_addresses(self) -> int:
        return 1 << self.address_bits

    def shifts(self) -> np.ndarray:
        """Bit offset of each field's code within the address."""
        widths = np.array([f.bits for f in self.fields], dtype=np.int64)
        return np.concatenate([np.cumsum(widths[::-1])[::-1][1:], [0]])

    def encode(self, values: np.ndarray) -> np.ndarray:
        """Codes (int64, shape (n, n_fields)) of raw feature rows (n, n_fields)."""
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != len(self.fields):
            raise DataError(
                f"cannot pack rows of shape {values.shape}: the address has "
                f"{len(self.fields)} fields ({', '.join(self.names)})"
            )
        return np.stack([f.encode(values[:, i]) for i, f in enumerate(self.fields)], 1)

    def decode_codes(self, codes: np.ndarray) -> np.ndarray:
        """Feature rows (float32) the model sees for code rows."""
        cols = [f.decode(codes[:, i]) for i, f in enumerate(self.fields)]
        return np.stack(cols, axis=1).astype(np.float32)

    def pack(self, codes: np.ndarray) -> np.ndarray:
        """Addresses (int64) of code rows."""
        return (np.asarray(codes, dtype=np.int64) << self.shifts()).sum(axis=1)

    def unpack(self, address: np.ndarray) -> np.ndarray:
        """Code rows of addresses (inverse of :meth:`pack`)."""
        masks = np.array([(1 << f.bits) - 1 for f in self.fields], dtype=np.int64)
        return (np.asarray(address, dtype=np.int64)[:, None] >> self.shifts()) & masks

    def quantise(self, values: np.ndarray) -> np.ndarray:
        """Raw feature rows → the decoded rows the model is trained and run on."""
        return self.decode_codes(self.encode(values))

    def table_bytes(self, word_bits: int = PT_BITS) -> int:
        """Bytes of a memory of ``2**address_bits`` words of ``word_bits`` bits."""
        return (self.n_addresses * word_bits + 7) // 8

    def edges_arrays(self) -> dict[str, np.ndarray]:
        """``edges_<i>`` arrays in field order, as stored next to a table."""
        return {
            f"edges_{i}": f.edges.astype(np.float32) for i, f in enumerate(self.fields)
        }

    def describe(self) -> list[dict[str, Any]]:
        """Field layout, most significant first, with bit ranges."""
        out = []
        for f, shift in zip(self.fields, self.shifts()):
            entry = f.to_dict()
            entry["bit_range"] = [int(shift), int(shift) + f.bits - 1]
            out.append(entry)
        return out


def invpt_to_pt_code(invpt: np.ndarray) -> np.ndarray:
    """Hardware pT code (9 bits, 0.5 GeV steps, saturating) of a 1/pT in 1/GeV."""
    inv = np.asarray(invpt, dtype=np.float64)
    with np.errstate(divide="ignore"):
        pt = np.where(inv > 0.0, 1.0 / np.maximum(inv, 1e-12), np.inf)
    top = (1 << PT_BITS) - 1
    return np.clip(np.floor(pt / PT_LSB_GEV + 0.5), 1, top).astype(np.uint16)


def pt_code_to_invpt(code: np.ndarray) -> np.ndarray:
    """1/pT (1/GeV, float32) of a hardware pT code."""
    return np.float32(1.0) / (
        np.asarray(code, dtype=np.float32) * np.float32(PT_LSB_GEV)
    )


def build_lut(
    predict_fn: Callable[[np.ndarray], np.ndarray],
    packing: Packing,
    *,
    chunk: int = 1 << 20,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fill a pT lookup table by evaluating a model on every address.

    Parameters
    ----------
    predict_fn : callable
        ``predict_fn(features) -> 1/pT`` for float32 rows (n, n_fields) of decoded
        feature values, in 1/GeV.
    packing : Packing
    chunk : int
        Addresses evaluated per call of ``predict_fn``.
    progress : callable, optional
        Called with (addresses done, total) after every chunk.

    Returns
    -------
    table : ndarray of uint16, shape ``packing.shape``
        The hardware pT code (:data:`PT_BITS` bits, :data:`PT_LSB_GEV` steps) of every
        address; its C-order flat index is the address.
    meta : dict
        ``address_bits``, ``n_addresses``, ``word_bits``, ``memory_bytes`` (the table in
        a memory of that address width and word size) and the field layout.
    """
    n = packing.n_addresses
    flat = np.empty(n, dtype=np.uint16)
    for start in range(0, n, chunk):
        address = np.arange(start, min(n, start + chunk), dtype=np.int64)
        features = packing.decode_codes(packing.unpack(address))
        invpt = np.asarray(predict_fn(features), dtype=np.float64).reshape(-1)
        if len(invpt) != len(address):
            raise DataError(
                f"the model gave {len(invpt)} values for {len(address)} addresses"
            )
        flat[address] = invpt_to_pt_code(invpt)
        if progress is not None:
            progress(int(address[-1]) + 1, n)
    meta = {
        "address_bits": packing.address_bits,
        "n_addresses": n,
        "word_bits": PT_BITS,
        "pt_lsb_gev": PT_LSB_GEV,
        "memory_bytes": packing.table_bytes(),
        "fields": packing.describe(),
        "method": "evaluate",
    }
    log.info(
        "filled a %d-bit table (%d addresses, %.1f MB as %d-bit words)",
        packing.address_bits,
        n,
        meta["memory_bytes"] / 1e6,
        PT_BITS,
    )
    return flat.reshape(packing.shape), meta


def lookup(
    table: np.ndarray, edges: Mapping[str, np.ndarray], x: np.ndarray
) -> np.ndarray:
    """Table values for feature rows, with the per-field edges of the table.

    Parameters
    ----------
    table : ndarray, one axis per field
    edges : mapping
        ``edges_<i>`` arrays, as written by :meth:`Packing.edges_arrays`.
    x : ndarray, shape (n, n_fields)
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != table.ndim:
        raise DataError(
            f"lookup of rows shaped {x.shape} in a table with {table.ndim} axes"
        )
    index = []
    for i in range(table.ndim):
        e = edges[f"edges_{i}"]
        index.append(
            np.clip(np.searchsorted(e, x[:, i], side="right") - 1, 0, len(e) - 1)
        )
    return table[tuple(index)]


#: Leaf sums this close (in pT words) to a rounding boundary are re-evaluated by the
#: model itself, so a tree-walked table rounds exactly as the model does.
_WORD_MARGIN = 1e-3


def fill_from_trees(
    trees: list[dict[str, Any]],
    base_score: float,
    packing: Packing,
    predict_fn: Callable[[np.ndarray], np.ndarray],
    *,
    feature_offset: np.ndarray | None = None,
    feature_scale: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Fill a pT table from the trees of a regression BDT, box by box.

    Each split of a tree cuts one field's codes in two (the codes are sorted by
    value), so every leaf covers a box of the address grid and adds its value there:
    a tree costs one pass over the table instead of one evaluation per address.
    Addresses whose sum lies within :data:`_WORD_MARGIN` of a rounding boundary of
    the pT word are evaluated again with ``predict_fn``.

    Parameters
    ----------
    trees : list of dict
        Trees in xgboost's JSON layout (``left_children``, ``right_children``,
        ``split_indices``, ``split_conditions``; a leaf has left child -1 and its
        value in ``split_conditions``); the model output is
        ``base_score + Σ leaves`` (identity link).
    base_score : float
    packing : Packing
    predict_fn : callable
        The model itself, ``predict_fn(features) -> 1/pT``, for the addresses near a
        boundary.
    feature_offset, feature_scale : ndarray, optional
        Standardisation the model applies before its trees (``(x - offset)/scale``).

    Returns
    -------
    table : ndarray of uint16, shape ``packing.shape``
    meta : dict
        As :func:`build_lut`, plus ``method`` and ``reevaluated`` (addresses sent to
        ``predict_fn``).
    """
    n_fields = len(packing.fields)
    offset = np.zeros(n_fields) if feature_offset is None else feature_offset
    scale = np.ones(n_fields) if feature_scale is None else feature_scale
    values = [
        ((f.edges - offset[i]) / scale[i]).astype(np.float32)
        for i, f in enumerate(packing.fields)
    ]
    acc = np.full(packing.shape, base_score, dtype=np.float32)
    for t, tree in enumerate(trees):
        left, right = tree["left_children"], tree["right_children"]
        feature, cond = tree["split_indices"], tree["split_conditions"]
        stack = [(0, tuple(slice(0, n) for n in packing.shape))]
        while stack:
            node, box = stack.pop()
            if left[node] == -1:
                acc[box] += np.float32(cond[node])
                continue
            f = int(feature[node])
            if not 0 <= f < n_fields:
                raise DataError(
                    f"tree {t} splits on feature {f}; the address has {n_fields} fields"
                )
            cut = int(np.searchsorted(values[f], np.float32(cond[node]), side="left"))
            lo, hi = box[f].start, box[f].stop
            if lo < min(hi, cut):
                stack.append((left[node], _with(box, f, lo, min(hi, cut))))
            if max(lo, cut) < hi:
                stack.append((right[node], _with(box, f, max(lo, cut), hi)))
    flat = acc.reshape(-1)
    words = np.empty(len(flat), dtype=np.uint16)
    n_near = 0
    for start in range(0, len(flat), 1 << 22):
        part = flat[start : start + (1 << 22)].astype(np.float64)
        words[start : start + len(part)] = invpt_to_pt_code(part)
        position = 1.0 / (np.maximum(part, 1e-12) * PT_LSB_GEV) + 0.5
        near = np.flatnonzero(np.abs(position - np.round(position)) < _WORD_MARGIN)
        if len(near):
            address = start + near.astype(np.int64)
            features = packing.decode_codes(packing.unpack(address))
            words[address] = invpt_to_pt_code(predict_fn(features))
            n_near += len(near)
    meta = {
        "address_bits": packing.address_bits,
        "n_addresses": packing.n_addresses,
        "word_bits": PT_BITS,
        "pt_lsb_gev": PT_LSB_GEV,
        "memory_bytes": packing.table_bytes(),
        "fields": packing.describe(),
        "method": "trees",
        "reevaluated": n_near,
    }
    return words.reshape(packing.shape), meta


def _with(box: tuple[slice, ...], axis: int, lo: int, hi: int) -> tuple[slice, ...]:
    return (*box[:axis], slice(lo, hi), *box[axis + 1 :])
