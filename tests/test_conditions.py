"""The Polygon trade-condition table (elecflow/data) and the condition-mask helpers."""

from __future__ import annotations

import csv
import dataclasses
import io
import itertools
from importlib import resources

import numpy as np
import pytest

from elecflow import conditions as cond
from elecflow.conditions import FORM_T, ISO, MASK_BITS, ODD_LOT, TABLE

# ids no source defines (docs/conditions.md, "Gaps")
DOCUMENTED_GAPS = {61}
SIGNED_DESPITE_NO_LAST_UPDATE = {FORM_T, ODD_LOT}  # the signing policy's two exceptions
EXCLUDED_DESPITE_LAST_UPDATE = {35, 38}  # stock option (policy), corrected close (not a trade)


def _csv_text() -> str:
    return resources.files("elecflow").joinpath("data").joinpath(cond.DATA_FILE).read_text(encoding="utf-8")


# the table ---------------------------------------------------------------------------------


def test_table_loads_with_the_documented_header():
    header = next(csv.reader(io.StringIO(_csv_text())))
    assert tuple(header) == cond.COLUMNS
    assert len(TABLE) == len(_csv_text().strip().splitlines()) - 1
    assert all(isinstance(c, cond.Condition) for c in TABLE)


def test_ids_unique_sorted_and_contiguous_except_documented_gaps():
    rows = list(csv.DictReader(io.StringIO(_csv_text())))
    ids = [int(r["id"]) for r in rows]
    assert len(ids) == len(set(ids))
    assert ids == sorted(ids)
    assert ids[0] == 0
    assert set(range(max(ids) + 1)) - set(ids) == DOCUMENTED_GAPS


def test_known_ids_are_the_maskable_rows():
    assert TABLE.known_ids == {i for i in TABLE.by_id if i < MASK_BITS}
    assert TABLE.unmaskable_ids == {i for i in TABLE.by_id if i >= MASK_BITS}
    # everything above the mask range is a financial-status indicator, never a sale condition
    assert TABLE.unmaskable_ids == set(range(63, 72))
    assert {TABLE[i].kind for i in TABLE.unmaskable_ids} == {"financial_status_indicator"}
    assert TABLE.known_mask == cond.mask_from_ids(TABLE.known_ids)


@pytest.mark.parametrize(
    ("cid", "name"),
    [
        (ISO, "Intermarket Sweep"),
        (FORM_T, "Form T/Extended Hours"),
        (ODD_LOT, "Odd Lot Trade"),
        (2, "Average Price Trade"),
        (10, "Derivatively Priced"),
        (32, "Sold (Out Of Sequence)"),
        (41, "Trade Thru Exempt"),
        (52, "Contingent Trade"),
        (53, "Qualified Contingent Trade"),
    ],
)
def test_key_names(cid, name):
    assert TABLE[cid].name == name


def test_key_constants():
    assert (ISO, FORM_T, ODD_LOT) == (14, 12, 37)


def test_flag_columns_mark_exactly_the_key_ids():
    assert {c.id for c in TABLE if c.is_iso} == {ISO}
    assert {c.id for c in TABLE if c.is_odd_lot} == {ODD_LOT}
    assert {c.id for c in TABLE if c.is_extended_hours} == {FORM_T, 13}
    assert {c.id for c in TABLE if c.is_correction_or_cancel} == {38, 44, 46, 48, 49, 54}


def test_key_rows_update_rules_and_signing():
    iso, form_t, odd = TABLE[ISO], TABLE[FORM_T], TABLE[ODD_LOT]
    assert (iso.updates_high_low, iso.updates_last, iso.updates_volume) == (True, True, True)
    for c in (form_t, odd):
        # SIP consolidated rules: volume only ...
        assert (c.updates_high_low, c.updates_last, c.updates_volume) == (False, False, True)
        # ... but signed by policy
        assert not c.excluded_from_signing
    assert not iso.excluded_from_signing
    assert (iso.sip_cta, iso.sip_utp) == ("F", "F")
    assert (form_t.sip_cta, form_t.sip_utp) == ("T", "T")
    assert (odd.sip_cta, odd.sip_utp) == ("I", "I")


def test_signing_exclusion_follows_the_last_update_rule_with_documented_exceptions():
    for c in TABLE:
        expected = (not c.updates_last and c.id not in SIGNED_DESPITE_NO_LAST_UPDATE) or (
            c.id in EXCLUDED_DESPITE_LAST_UPDATE
        )
        assert c.excluded_from_signing == expected, (c.id, c.name)


@pytest.mark.parametrize("cid", [2, 5, 7, 10, 13, 15, 16, 20, 21, 22, 29, 32, 33, 35, 38, 52, 53])
def test_non_current_prints_are_excluded_from_signing(cid):
    assert TABLE[cid].excluded_from_signing


@pytest.mark.parametrize("cid", [0, 1, 3, 8, 9, 12, 14, 25, 30, 37, 41, 60])
def test_current_prints_are_signed(cid):
    assert not TABLE[cid].excluded_from_signing


def test_rows_not_in_the_v3_listing_or_in_dispute_carry_notes():
    for c in TABLE:
        if c.source != "v3" or c.kind != "sale_condition":
            assert c.notes.strip(), c.id
    for disputed in (17, 29, 32, 33, 59):
        assert "disagree" in TABLE[disputed].notes


def test_table_is_immutable():
    with pytest.raises(TypeError):
        TABLE.by_id[99] = TABLE[0]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TABLE[ISO].excluded_from_signing = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        TABLE.iso_mask = 0  # type: ignore[misc]


def test_load_table_rereads_the_same_data():
    again = cond.load_table()
    assert again is not TABLE
    assert list(again.by_id.values()) == list(TABLE.by_id.values())


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("id,name", "ident,name", 1), "header"),
        (lambda t: t.replace("\n14,Intermarket Sweep,F,F,true", "\n14,Intermarket Sweep,F,F,yes", 1), "'yes'"),
        (lambda t: t.replace("\n15,", "\n14,", 1), "not above"),
        (lambda t: t.replace("sale_condition,v3,", "sale_condition,v9,", 1), "unknown source"),
    ],
)
def test_malformed_table_is_refused(edit, message):
    with pytest.raises(ValueError, match=message):
        cond.parse_table_csv(edit(_csv_text()))


# masks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ids",
    [(), (0,), (ISO,), (FORM_T, ISO, ODD_LOT), (62,), (41, 14, 12), (14, 14), tuple(range(MASK_BITS))],
)
def test_mask_round_trip(ids):
    mask = cond.mask_from_ids(ids)
    assert 0 <= mask < 1 << MASK_BITS
    assert cond.ids_from_mask(mask) == tuple(sorted(set(ids)))
    assert cond.mask_from_ids(cond.ids_from_mask(mask)) == mask


@pytest.mark.parametrize("mask", [0, 1, 1 << 14, (1 << 63) - 1, 0b1010_0000_0001_0000])
def test_ids_round_trip(mask):
    assert cond.mask_from_ids(cond.ids_from_mask(mask)) == mask


def test_mask_accepts_numpy_integers_and_generators():
    assert cond.mask_from_ids(np.array([12, 14], dtype=np.int32)) == (1 << 12) | (1 << 14)
    assert cond.mask_from_ids(i for i in (37,)) == 1 << 37


@pytest.mark.parametrize("bad", [63, 64, 71, -1, 1000])
def test_mask_from_ids_names_an_id_out_of_range(bad):
    with pytest.raises(ValueError, match=rf"condition id {bad}\b"):
        cond.mask_from_ids([14, bad])


@pytest.mark.parametrize("bad", ["14,41", [True], [1.0], [None]])
def test_mask_from_ids_refuses_non_integers(bad):
    with pytest.raises(TypeError):
        cond.mask_from_ids(bad)


@pytest.mark.parametrize("bad", [-1, 1 << 63, 1 << 64])
def test_ids_from_mask_refuses_out_of_range(bad):
    with pytest.raises(ValueError, match=str(bad)):
        cond.ids_from_mask(bad)


@pytest.mark.parametrize("bad", [True, 1.0, "1", None])
def test_ids_from_mask_refuses_non_integers(bad):
    with pytest.raises(TypeError):
        cond.ids_from_mask(bad)


# vectorised helpers ------------------------------------------------------------------------


def _sample_masks() -> np.ndarray:
    """Every single id, pairs of interesting ids, and seeded random combinations."""
    singles = [1 << i for i in range(MASK_BITS)]
    interesting = [0, 2, 12, 13, 14, 37, 38, 41, 52, 61, 62]
    pairs = [cond.mask_from_ids(p) for p in itertools.combinations(interesting, 2)]
    rng = np.random.default_rng(20241105)
    randoms = [
        cond.mask_from_ids(rng.choice(MASK_BITS, size=k, replace=False).tolist())
        for k in rng.integers(0, 6, size=300)
    ]
    return np.array([0, *singles, *pairs, *randoms], dtype=np.int64)


def _scalar_iso(mask: int) -> bool:
    return ISO in cond.ids_from_mask(mask)


def _scalar_eligible(mask: int) -> bool:
    ids = cond.ids_from_mask(mask)
    return all(i in TABLE.known_ids and not TABLE[i].excluded_from_signing for i in ids)


def _scalar_unknown(mask: int) -> int:
    return cond.mask_from_ids(i for i in cond.ids_from_mask(mask) if i not in TABLE.known_ids)


def test_vectorised_helpers_agree_with_scalar_ones():
    masks = _sample_masks()
    iso = cond.iso_flags(masks)
    eligible = cond.sign_eligible(masks)
    unknown = cond.unknown_mask(masks)
    assert iso.dtype == bool and eligible.dtype == bool and unknown.dtype == np.int64
    for m, i, e, u in zip(masks.tolist(), iso.tolist(), eligible.tolist(), unknown.tolist()):
        assert i == _scalar_iso(m) == TABLE.is_iso(m), m
        assert e == _scalar_eligible(m) == cond.is_sign_eligible(m), m
        assert u == _scalar_unknown(m) == cond.mask_from_ids(cond.unknown_ids(m)), m


def test_unknown_mask_flags_the_gap_id():
    assert cond.unknown_mask([1 << 61 | 1 << 14]).tolist() == [1 << 61]
    assert cond.unknown_ids(1 << 61 | 1 << 14) == (61,)
    assert not cond.is_sign_eligible(1 << 61)


def test_vectorised_helpers_keep_shape_and_accept_lists_and_other_int_dtypes():
    masks = np.array([[0, 1 << 14], [1 << 2, 1 << 37]], dtype=np.int64)
    assert cond.iso_flags(masks).tolist() == [[False, True], [False, False]]
    assert cond.sign_eligible(masks).tolist() == [[True, True], [False, True]]
    assert cond.iso_flags([1 << 14, 0]).tolist() == [True, False]
    assert cond.sign_eligible(np.array([0, 1 << 2], dtype=np.int32)).tolist() == [True, False]
    assert cond.iso_flags(np.array([1 << 14], dtype=np.uint64)).tolist() == [True]
    assert cond.iso_flags([]).shape == (0,)
    assert cond.sign_eligible(np.empty(0, dtype=np.int64)).shape == (0,)


def test_bit_63_is_unknown_and_never_eligible():
    negative = np.array([-1, np.iinfo(np.int64).min], dtype=np.int64)
    assert not cond.sign_eligible(negative).any()
    assert (cond.unknown_mask(negative) != 0).all()
    high = np.array([1 << 63], dtype=np.uint64)
    assert cond.unknown_mask(high).tolist() == [np.iinfo(np.int64).min]
    assert not cond.sign_eligible(high).any()


@pytest.mark.parametrize("bad", [np.array([1.0, 2.0]), np.array([True]), np.array(["14"])])
def test_vectorised_helpers_refuse_non_integer_arrays(bad):
    for helper in (cond.iso_flags, cond.sign_eligible, cond.unknown_mask):
        with pytest.raises(TypeError, match="integer array"):
            helper(bad)


# text ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("", ()),
        ("   ", ()),
        ("[]", ()),
        ("[ ]", ()),
        ("14", (14,)),
        ("14,41", (14, 41)),
        (" 14 , 41 ", (14, 41)),
        ("[14, 41]", (14, 41)),
        ("[14,41]", (14, 41)),
        (" [ 12, 37 ,14 ] ", (12, 37, 14)),
        ("0", (0,)),
        ("71", (71,)),
    ],
)
def test_parse_condition_string(text, ids):
    assert cond.parse_condition_string(text) == ids


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("14,x", "'x'"),
        ("14,,41", "''"),
        ("14,", "''"),
        ("-1", "'-1'"),
        ("+14", r"'\+14'"),
        ("1.5", r"'1\.5'"),
        ("0x1", "'0x1'"),
        ("14 41", "'14 41'"),
        ("[14;41]", "'14;41'"),
        ("[[14]]", r"'\[14\]'"),
    ],
)
def test_parse_condition_string_names_the_bad_token(text, token):
    with pytest.raises(ValueError, match=rf"bad condition token {token}"):
        cond.parse_condition_string(text)


@pytest.mark.parametrize("text", ["[14, 41", "14, 41]", "]"])
def test_parse_condition_string_refuses_unbalanced_brackets(text):
    with pytest.raises(ValueError, match="unbalanced brackets"):
        cond.parse_condition_string(text)


def test_parse_condition_string_refuses_non_text():
    with pytest.raises(TypeError):
        cond.parse_condition_string(None)  # type: ignore[arg-type]


def test_parsed_text_feeds_masks():
    ids = cond.parse_condition_string("[12, 14, 37]")
    mask = cond.mask_from_ids(ids)
    assert cond.iso_flags([mask]).tolist() == [True]
    assert cond.sign_eligible([mask]).tolist() == [True]
    with pytest.raises(ValueError, match="condition id 63"):
        cond.mask_from_ids(cond.parse_condition_string("14,63"))
