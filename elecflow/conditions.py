"""Polygon.io US stock trade conditions: the vendor's id table as data, and condition bitmasks.

The table lives in ``elecflow/data/polygon_trade_conditions.csv`` (sources, disagreements and
the signing policy: ``docs/conditions.md``). It is read once, at import, into an immutable
:class:`ConditionTable`, :data:`TABLE`.

Why a bitmask: csp's Parquet reader cannot fill list fields of a ``csp.Struct``, so
:class:`elecflow.schema.EquityTrade` carries ``condition_mask: int`` with bit ``i`` set when
condition id ``i`` is present. A mask is a non-negative int64, so it holds ids 0..62 only
(:data:`MASK_BITS`). Polygon also lists financial-status indicators 63..71; they are rows of
the table (in ``by_id``) but not in ``known_ids``, and :func:`mask_from_ids` refuses them.

Scalar helpers work on Python ints; the vectorised helpers (:func:`iso_flags`,
:func:`sign_eligible`, :func:`unknown_mask`) work on integer numpy arrays of masks, of any
shape, and return arrays of the same shape.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType

import numpy as np

__all__ = [
    "COLUMNS",
    "FORM_T",
    "ISO",
    "MASK_BITS",
    "ODD_LOT",
    "TABLE",
    "Condition",
    "ConditionTable",
    "ids_from_mask",
    "is_sign_eligible",
    "iso_flags",
    "load_table",
    "mask_from_ids",
    "parse_condition_string",
    "parse_table_csv",
    "sign_eligible",
    "unknown_ids",
    "unknown_mask",
]

ISO = 14  # Intermarket Sweep
FORM_T = 12  # Form T / extended hours
ODD_LOT = 37  # Odd Lot Trade

#: Bits a condition mask can use: ids 0..62, so that every mask is a non-negative int64.
MASK_BITS = 63

DATA_FILE = "polygon_trade_conditions.csv"

COLUMNS = (
    "id",
    "name",
    "sip_cta",
    "sip_utp",
    "updates_high_low",
    "updates_last",
    "updates_volume",
    "is_iso",
    "is_extended_hours",
    "is_odd_lot",
    "is_correction_or_cancel",
    "excluded_from_signing",
    "kind",
    "source",
    "notes",
)
_BOOL_COLUMNS = (
    "updates_high_low",
    "updates_last",
    "updates_volume",
    "is_iso",
    "is_extended_hours",
    "is_odd_lot",
    "is_correction_or_cancel",
    "excluded_from_signing",
)
KINDS = frozenset(
    {"sale_condition", "trade_thru_exempt", "short_sale_restriction_indicator", "financial_status_indicator"}
)
SOURCES = frozenset({"v3", "v3-legacy", "v1", "glossary"})

_ID_TOKEN = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Condition:
    """One row of the condition table (see the CSV header for the meaning of each field)."""

    id: int
    name: str
    sip_cta: str  # CTA (Tape A/B) sale-condition letter, "" when none is known
    sip_utp: str  # UTP (Tape C) sale-condition letter, "" when none is known
    updates_high_low: bool  # consolidated processing rules
    updates_last: bool  # consolidated last / open-close
    updates_volume: bool
    is_iso: bool
    is_extended_hours: bool
    is_odd_lot: bool
    is_correction_or_cancel: bool
    excluded_from_signing: bool  # the print must not be trade-signed
    kind: str  # Polygon's condition type: sale_condition, trade_thru_exempt, ..._indicator
    source: str  # v3, v3-legacy, v1 or glossary: where the id is defined (docs/conditions.md)
    notes: str

    @property
    def maskable(self) -> bool:
        """Whether a condition mask can carry this id."""
        return self.id < MASK_BITS


def _bits(ids: Iterable[int]) -> int:
    mask = 0
    for i in ids:
        mask |= 1 << i
    return mask


@dataclass(frozen=True, eq=False)
class ConditionTable:
    """The condition table, immutable. Build it with :meth:`from_conditions`.

    ``by_id`` holds every row; ``known_ids`` the ids a mask can carry (table ids below
    :data:`MASK_BITS`); ``unmaskable_ids`` the table ids above that range. The ``*_mask``
    fields are the table's flags as bitmasks over ``known_ids``.
    """

    by_id: Mapping[int, Condition]
    known_ids: frozenset[int]
    unmaskable_ids: frozenset[int]
    known_mask: int
    iso_mask: int
    extended_hours_mask: int
    odd_lot_mask: int
    correction_mask: int
    excluded_mask: int

    @classmethod
    def from_conditions(cls, conditions: Iterable[Condition]) -> ConditionTable:
        rows: dict[int, Condition] = {}
        for c in conditions:
            if c.id in rows:
                raise ValueError(f"duplicate condition id {c.id} in the condition table")
            if c.id < 0:
                raise ValueError(f"negative condition id {c.id} in the condition table")
            rows[c.id] = c
        ordered = {i: rows[i] for i in sorted(rows)}
        maskable = [c for c in ordered.values() if c.maskable]
        return cls(
            by_id=MappingProxyType(ordered),
            known_ids=frozenset(c.id for c in maskable),
            unmaskable_ids=frozenset(i for i in ordered if i >= MASK_BITS),
            known_mask=_bits(c.id for c in maskable),
            iso_mask=_bits(c.id for c in maskable if c.is_iso),
            extended_hours_mask=_bits(c.id for c in maskable if c.is_extended_hours),
            odd_lot_mask=_bits(c.id for c in maskable if c.is_odd_lot),
            correction_mask=_bits(c.id for c in maskable if c.is_correction_or_cancel),
            excluded_mask=_bits(c.id for c in maskable if c.excluded_from_signing),
        )

    def __getitem__(self, condition_id: int) -> Condition:
        return self.by_id[condition_id]

    def __contains__(self, condition_id: object) -> bool:
        return condition_id in self.by_id

    def __iter__(self) -> Iterator[Condition]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def names(self, mask: int) -> tuple[str, ...]:
        """Names of the conditions in ``mask`` (``"unknown id N"`` for ids not in the table)."""
        return tuple(self.by_id[i].name if i in self.by_id else f"unknown id {i}" for i in ids_from_mask(mask))

    # scalar helpers -----------------------------------------------------------------------

    def is_iso(self, mask: int) -> bool:
        return bool(_check_mask(mask) & self.iso_mask)

    def is_sign_eligible(self, mask: int) -> bool:
        """True when no condition in ``mask`` excludes signing and every id is in the table.

        The trade's correction indicator (``EquityTrade.correction``) is separate and is not
        looked at here.
        """
        mask = _check_mask(mask)
        return not (mask & self.excluded_mask) and not (mask & ~self.known_mask)

    def unknown_ids(self, mask: int) -> tuple[int, ...]:
        return ids_from_mask(_check_mask(mask) & ~self.known_mask)

    # vectorised helpers -------------------------------------------------------------------

    def iso_flags(self, masks: object) -> np.ndarray:
        """Bool array: whether each mask holds the Intermarket Sweep condition (14)."""
        return (_mask_array(masks) & np.int64(self.iso_mask)) != 0

    def sign_eligible(self, masks: object) -> np.ndarray:
        """Bool array, elementwise :meth:`is_sign_eligible` (a negative int64 is ineligible)."""
        bad = np.int64(self.excluded_mask | ~self.known_mask)
        return (_mask_array(masks) & bad) == 0

    def unknown_mask(self, masks: object) -> np.ndarray:
        """int64 array: the bits of each mask whose ids are not in ``known_ids``.

        Bit 63 (a negative int64, or a uint64 mask above 2**63 - 1) counts as unknown.
        """
        return _mask_array(masks) & np.int64(~self.known_mask)


def _parse_bool(text: str, column: str, line: int) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise ValueError(f"condition table line {line}: {column} must be 'true' or 'false', got {text!r}")


def parse_table_csv(text: str) -> ConditionTable:
    """Parse the condition-table CSV text (the format of ``elecflow/data``) and validate it."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ValueError(f"condition table header must be {','.join(COLUMNS)}; got {header!r}")
    conditions = []
    previous = -1
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(COLUMNS):
            raise ValueError(f"condition table line {line}: {len(row)} fields, expected {len(COLUMNS)}")
        fields = dict(zip(COLUMNS, row))
        if not _ID_TOKEN.fullmatch(fields["id"]):
            raise ValueError(f"condition table line {line}: id must be a non-negative integer, got {fields['id']!r}")
        cid = int(fields["id"])
        if cid <= previous:
            raise ValueError(f"condition table line {line}: id {cid} is not above the previous id {previous}")
        previous = cid
        if not fields["name"].strip():
            raise ValueError(f"condition table line {line}: empty name for id {cid}")
        if fields["kind"] not in KINDS:
            raise ValueError(f"condition table line {line}: unknown kind {fields['kind']!r}")
        if fields["source"] not in SOURCES:
            raise ValueError(f"condition table line {line}: unknown source {fields['source']!r}")
        flags = {c: _parse_bool(fields[c], c, line) for c in _BOOL_COLUMNS}
        conditions.append(
            Condition(
                id=cid,
                name=fields["name"],
                sip_cta=fields["sip_cta"],
                sip_utp=fields["sip_utp"],
                kind=fields["kind"],
                source=fields["source"],
                notes=fields["notes"],
                **flags,
            )
        )
    return ConditionTable.from_conditions(conditions)


def load_table() -> ConditionTable:
    """Read the packaged table (``elecflow/data/polygon_trade_conditions.csv``)."""
    text = resources.files("elecflow").joinpath("data").joinpath(DATA_FILE).read_text(encoding="utf-8")
    return parse_table_csv(text)


TABLE: ConditionTable = load_table()


# masks ------------------------------------------------------------------------------------


def _check_mask(mask: object) -> int:
    if isinstance(mask, bool) or not isinstance(mask, (int, np.integer)):
        raise TypeError(f"a condition mask must be an int, got {type(mask).__name__}")
    mask = int(mask)
    if not 0 <= mask < 1 << MASK_BITS:
        raise ValueError(f"condition mask {mask} is outside 0..2**{MASK_BITS} - 1")
    return mask


def mask_from_ids(ids: Iterable[int]) -> int:
    """The bitmask of condition ids ``ids`` (duplicates allowed, order irrelevant).

    Raises ValueError naming the id when one is negative or at least :data:`MASK_BITS`.
    Ids are not checked against the table: use ``TABLE.known_ids`` for that.
    """
    if isinstance(ids, (str, bytes)):
        raise TypeError("mask_from_ids takes integer ids; parse text with parse_condition_string")
    mask = 0
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"condition id {i!r} is not an int")
        i = int(i)
        if not 0 <= i < MASK_BITS:
            raise ValueError(f"condition id {i} cannot be stored in a condition mask (ids 0..{MASK_BITS - 1} only)")
        mask |= 1 << i
    return mask


def ids_from_mask(mask: int) -> tuple[int, ...]:
    """The ids whose bits are set in ``mask``, ascending."""
    mask = _check_mask(mask)
    return tuple(i for i in range(MASK_BITS) if mask >> i & 1)


def _mask_array(masks: object) -> np.ndarray:
    arr = np.asarray(masks)
    if arr.dtype.kind == "i":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "u":
        # reinterpret the bits; a value above 2**63 - 1 becomes negative, i.e. bit 63 set
        return arr.astype(np.uint64, copy=False).view(np.int64)
    if arr.size == 0 and arr.dtype.kind == "f":  # np.asarray([]) is float64
        return arr.astype(np.int64)
    raise TypeError(f"condition masks must be an integer array, got dtype {arr.dtype}")


def is_sign_eligible(mask: int) -> bool:
    """Scalar :meth:`ConditionTable.is_sign_eligible` on :data:`TABLE`."""
    return TABLE.is_sign_eligible(mask)


def unknown_ids(mask: int) -> tuple[int, ...]:
    """Scalar: the ids in ``mask`` that are not in ``TABLE.known_ids``."""
    return TABLE.unknown_ids(mask)


def iso_flags(masks: object) -> np.ndarray:
    """Vectorised: whether each mask holds condition 14 (Intermarket Sweep)."""
    return TABLE.iso_flags(masks)


def sign_eligible(masks: object) -> np.ndarray:
    """Vectorised: whether each trade may be signed (no excluded and no unknown condition)."""
    return TABLE.sign_eligible(masks)


def unknown_mask(masks: object) -> np.ndarray:
    """Vectorised: the bits of each mask whose ids are not in the table."""
    return TABLE.unknown_mask(masks)


# text -------------------------------------------------------------------------------------


def parse_condition_string(text: str) -> tuple[int, ...]:
    """Condition ids from Polygon's text forms, in order: ``"14,41"``, ``"[14, 41]"``, ``""``.

    Spaces around ids and brackets are ignored; an empty string or ``"[]"`` is ``()``.
    Raises ValueError naming the bad token for anything that is not a decimal id (signs,
    decimals, empty items such as ``"14,,41"``, unbalanced brackets).
    """
    if not isinstance(text, str):
        raise TypeError(f"condition text must be a str, got {type(text).__name__}")
    body = text.strip()
    opened, closed = body.startswith("["), body.endswith("]")
    if opened != closed:
        raise ValueError(f"unbalanced brackets in condition list {text!r}")
    if opened:
        body = body[1:-1].strip()
    if not body:
        return ()
    ids = []
    for token in body.split(","):
        item = token.strip()
        if not _ID_TOKEN.fullmatch(item):
            raise ValueError(f"bad condition token {item!r} in {text!r}")
        ids.append(int(item))
    return tuple(ids)
