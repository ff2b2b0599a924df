"""NOEMIE-style returns (returns.md §2): the §2.5 worked example byte for byte, round trips
on random trees, totals checked on decode, text sanitised, overflows named."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fseflow.codecs import returns as R
from fseflow.codecs.returns import (
    BudgetBlock,
    Insured,
    Invoice,
    Line,
    Lot,
    Movement,
    Patient,
    Reject,
    ReturnFile,
    ReturnsError,
)

# returns.md §2.5, one entity per line as printed there (the file has no line breaks). Every
# line ends with '@', so the spaces inside entities survive editors that trim line ends.
EXAMPLE_TEXT = """\
000010875601000000083000412325031422000000001                P01NP01@
04001830004123      PAMO  FR7630001007941234567890185       @
07001250317@
0800225031400100042AS@
10003250000101P3525031425031401000000030000000000300000000002100000000002000000000210000000000200@
11004185048313704229                                                                   @
120048504121                                        1               @
15004AS00AMO  @
21005001250310G    01000100000000030000000000300007000000002100000000002000000000000000000002100PAMO  @
2500302+00000000200                                   250314AMO  @
990031000000000300000000003000000000021000000000210000000000200000001@
10003250000102P3525031425031401000000006300000000063000000000378000000001000000000037800000000100@
11004149038313700964                                                                   @
120045211071                                        2252111305511865@
15004AS00AMO  @
21005001250312AMI  01000200000000006300000000063006000000000378000000000000000000010000000000378PAMO  @
2500302+00000000100                                   250314AMO  @
990031000000000063000000000630000000003780000000037800000000100000001@
990020800000000363000000003630000000024780000000247800000000300000002@
2500101+00000002478AMO20250317P830004123001           250317AMO  @
990010400000000363000000003630000000024780000000247800000000300000001@
99900000220000000247800002@
"""
EXAMPLE = EXAMPLE_TEXT.replace("\n", "").encode("ascii")
D = dt.date


def _example() -> ReturnFile:
    """The §2.5 return, built from the values readable in it (totals are computed, not given)."""
    day, paid_on = D(2025, 3, 14), D(2025, 3, 17)

    def invoice(number: int, amounts: tuple[int, ...], nir: str, patient: Patient, line: Line, debt: int) -> Invoice:
        billed, base, amo, pf_franchise, paid = amounts
        return Invoice(number, "P", 35, day, day, 1, billed, base, amo, pf_franchise, paid, debt,
                       Insured(nir), patient, "AS", 0, "AMO", lines=[line],
                       movements=[Movement(3, 2, "+", debt, "", day, "AMO")])

    inv1 = invoice(250000101, (3000, 3000, 2100, 200, 2100), "185048313704229",
                   Patient(D(1985, 4, 12), 1, "", "", 1),
                   Line(1, D(2025, 3, 10), "G", 1, 100, 3000, 3000, 70, 2100, 200, 0, 2100, "P", "AMO"), 200)
    inv2 = invoice(250000102, (630, 630, 378, 100, 378), "149038313700964",
                   Patient(D(1952, 11, 7), 1, "", "", 2, "2521113055118", "65"),
                   Line(1, D(2025, 3, 12), "AMI", 1, 200, 630, 630, 60, 378, 0, 100, 378, "P", "AMO"), 100)
    lot = Lot(D(2025, 3, 14), 1, 42, "AS", [inv1, inv2])
    block = BudgetBlock("AMO", "FR7630001007941234567890185", paid_on, [lot],
                        Movement(1, 1, "+", 2478, "AMO20250317P830004123001", paid_on, "AMO"))
    return ReturnFile(830004123, dt.datetime(2025, 3, 14, 22, 0, 0), 1, [block])


def test_worked_example_byte_for_byte() -> None:
    data = R.encode(_example())
    assert b"\n" not in data and data.count(b"@") == 22
    # compare entity by entity first: a failure then names the entity
    assert data.split(b"@") == EXAMPLE.split(b"@")
    assert data == EXAMPLE


def test_worked_example_decodes() -> None:
    assert R.decode(EXAMPLE) == _example()
    # CR/LF between entities are ignored
    assert R.decode(EXAMPLE_TEXT.replace("\n", "\r\n").encode("ascii")) == _example()


def test_embedded_example_matches_the_spec() -> None:
    """Guard against drift of the copy above, when the shared spec is checked out next to the repo."""
    spec = Path(__file__).resolve().parents[3] / "shared" / "domain" / "returns.md"
    if not spec.is_file():
        pytest.skip("shared/domain/returns.md not available")
    block = spec.read_text(encoding="utf-8").split("### 2.5 Example")[1].split("```")[1]
    assert block.strip("\n") == EXAMPLE_TEXT.strip("\n")


def test_layout_offsets_follow_the_spec_table() -> None:
    # spot checks of the 0-based offsets of §2.3 (the table itself is checked for gaps at import)
    lay = R.ENTITIES
    assert (lay["000"]["reference"].start - 1, lay["110"]["first_name"].start - 1) == (61, 72)
    assert (lay["210"]["budget"].start - 1, lay["290"]["label"].start - 1, lay["999"]["invoices"].start - 1) == (97, 50, 21)
    assert {c: x.width for c, x in lay.items()} == {
        "000": 68, "040": 60, "070": 11, "080": 21, "100": 97, "110": 87, "120": 68, "150": 14,
        "210": 102, "250": 65, "290": 110, "990": 69, "999": 26}


@pytest.mark.parametrize(("ordinal", "byte", "total"), [
    (11, 40, "paid"),  # first 990(03), last digit of paid (offset 30, 11 digits)
    (19, 18, "billed"),  # 990(02)
    (21, 68, "children"),  # 990(01), last digit of children (offset 63, 6 digits)
])
def test_tampered_990_is_named(ordinal: int, byte: int, total: str) -> None:
    ents = EXAMPLE.split(b"@")
    e = bytearray(ents[ordinal - 1])
    assert e[:3] == b"990"
    e[byte] = ord("9") if e[byte] != ord("9") else ord("8")
    ents[ordinal - 1] = bytes(e)
    with pytest.raises(ReturnsError, match=rf"entity #{ordinal} \(990 level \d\d\): total {total} does not hold"):
        R.decode(b"@".join(ents))


@pytest.mark.parametrize(("offset", "total"), [(9, "entity_count"), (20, "paid"), (25, "invoices")])
def test_tampered_999_is_named(offset: int, total: str) -> None:
    data = bytearray(EXAMPLE)
    start = len(EXAMPLE) - 27  # the 999 and its '@'
    assert data[start:start + 3] == b"999"
    data[start + offset] = ord("7")
    with pytest.raises(ReturnsError, match=rf"entity #22 \(999\): total {total} does not hold"):
        R.decode(bytes(data))


def test_tampered_line_amount_breaks_its_invoice_total() -> None:
    ents = EXAMPLE.split(b"@")
    e = bytearray(ents[8])  # the first 210
    e[27 + 10] = ord("1")  # billed 3000 → 3001
    ents[8] = bytes(e)
    with pytest.raises(ReturnsError, match=r"entity #11 \(990 level 03\): total billed does not hold"):
        R.decode(b"@".join(ents))


def test_grammar_errors_are_named() -> None:
    ents = EXAMPLE.split(b"@")
    with pytest.raises(ReturnsError, match=r"entity #6 \(120\): 110 level 04 expected"):
        R.decode(b"@".join(ents[:5] + ents[6:]))
    with pytest.raises(ReturnsError, match=r"end of file: 999 expected"):
        R.decode(b"@".join(ents[:-2]))
    with pytest.raises(ReturnsError, match=r"entity #3: unknown entity code"):
        R.decode(EXAMPLE.replace(b"@070", b"@071"))
    with pytest.raises(ReturnsError, match=r"entity #2 \(040\): 59 bytes, not 60"):
        R.decode(EXAMPLE.replace(b"       @070", b"      @070"))


def test_at_sign_and_accents_are_sanitised() -> None:
    rf = _example()
    blk = rf.blocks[0]
    inv = blk.lots[0].invoices[0]
    dirty = Invoice(**{**inv.__dict__, "insured": Insured(inv.insured.nir15, "Lefèvre@Œuvray", "Zoé"),
                       "patient": Patient(D(1985, 4, 12), 1, "Müller", "Ça’va", 1)})
    rf2 = ReturnFile(rf.ps_number, rf.created, rf.sequence,
                     [BudgetBlock(blk.budget, blk.iban, blk.payment_date,
                                  [Lot(**{**blk.lots[0].__dict__, "invoices": [dirty, *blk.lots[0].invoices[1:]]})],
                                  blk.transfer)])
    data = R.encode(rf2)
    assert all(0x20 <= b <= 0x7E for b in data) and data.count(b"@") == 22
    back = R.decode(data).blocks[0].lots[0].invoices[0]
    assert (back.insured.last_name, back.insured.first_name) == ("Lefevre OEuvray", "Zoe")
    assert (back.patient.last_name, back.patient.first_name) == ("Muller", "Ca'va")
    assert R.sanitize("a@b\té") == "a b e"


def test_overflow_names_entity_and_field_not_the_value() -> None:
    rf = _example()
    blk = rf.blocks[0]
    inv = blk.lots[0].invoices[0]

    def with_invoice(new: Invoice) -> ReturnFile:
        lot = Lot(**{**blk.lots[0].__dict__, "invoices": [new]})
        return ReturnFile(rf.ps_number, rf.created, rf.sequence, [BudgetBlock(blk.budget, blk.iban, blk.payment_date, [lot])])

    with pytest.raises(ReturnsError, match=r"entity #5 \(100\) -> billed: does not fit in 11 digits"):
        R.encode(with_invoice(Invoice(**{**inv.__dict__, "billed": 10**11})))
    name = "Bartholomew-Montgomery-Smythe"  # 29 characters, the field holds 25
    with pytest.raises(ReturnsError, match=r"entity #6 \(110\) -> last_name: .*at most 25") as err:
        R.encode(with_invoice(Invoice(**{**inv.__dict__, "insured": Insured(inv.insured.nir15, name)})))
    assert name not in str(err.value) and inv.insured.nir15 not in str(err.value)
    # a computed total that overflows is named too
    big = Line(**{**inv.lines[0].__dict__, "billed": 10**11 - 1})
    with pytest.raises(ReturnsError, match=r"\(990\) -> billed: does not fit"):
        R.encode(with_invoice(Invoice(**{**inv.__dict__, "lines": [big, big]})))
    with pytest.raises(ReturnsError, match=r"\(100\) -> status: not one of"):
        R.encode(with_invoice(Invoice(**{**inv.__dict__, "status": "X"})))
    with pytest.raises(ReturnsError, match=r"\(120\) -> birth_date: year outside"):
        R.encode(with_invoice(Invoice(**{**inv.__dict__, "patient": Patient(D(1825, 1, 1), 1, "", "", 1)})))
    assert issubclass(ReturnsError, ValueError)


def test_transfer_and_movement_rules() -> None:
    rf = _example()
    blk = rf.blocks[0]
    for bad in (Movement(1, 1, "+", 0, "E2E", blk.payment_date, "AMO"), Movement(3, 1, "+", 5, "E2E", blk.payment_date, "AMO")):
        with pytest.raises(ReturnsError, match=r"\(250\)"):
            R.encode(ReturnFile(rf.ps_number, rf.created, 1, [BudgetBlock("AMO", None, blk.payment_date, blk.lots, bad)]))
    # a held payment: no IBAN (spaces), no transfer; 999.paid is then 0
    held = ReturnFile(rf.ps_number, rf.created, 2, [BudgetBlock("AMO", None, blk.payment_date, blk.lots)])
    data = R.encode(held)
    assert data.endswith(b"99900000210000000000000002@") and R.decode(data) == held


# --- round trips on random trees ----------------------------------------------------------

def _text(n: int) -> st.SearchStrategy[str]:
    # printable ASCII without '@' and without trailing spaces: what survives a round trip as is
    return st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters="@"),
                   max_size=n).map(str.rstrip)


def _cents(hi: int = 10**8) -> st.SearchStrategy[int]:
    return st.integers(0, hi)


_dates = st.dates(D(2000, 1, 1), D(2099, 12, 31))
_budgets = st.sampled_from(["AMO", "APIAS", "SIG"])
_rejects = st.builds(Reject, _text(8), st.sampled_from("RS"), st.integers(0, 999), st.integers(0, 999), _text(30), _text(60))
_lines = st.builds(Line, st.integers(0, 999), _dates, _text(5), st.integers(0, 99), st.integers(0, 999999),
                   _cents(), _cents(), st.integers(0, 999), _cents(), _cents(), _cents(), _cents(),
                   st.sampled_from("PR"), _budgets, st.lists(_rejects, max_size=2))
_invoice_movements = st.one_of(
    st.builds(Movement, st.just(3), st.just(2), st.sampled_from("+-"), _cents(), st.just(""), _dates, _budgets),
    st.builds(Movement, st.just(3), st.just(3), st.sampled_from("+-"), _cents(), _text(35), _dates, _budgets))


@st.composite
def _return_files(draw: st.DrawFn) -> ReturnFile:
    created = draw(st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31, 23, 59, 59))).replace(microsecond=0)
    # birth dates within the 99 years before the file (the century rule of AAMMJJ)
    births = st.dates(D(max(created.year - 99, 1901), 1, 1), created.date())
    nir = st.one_of(st.none(), st.text("0123456789AB", min_size=13, max_size=13))
    patients = st.builds(Patient, births, st.integers(1, 9), _text(25), _text(15), st.integers(1, 4),
                         nir, st.one_of(st.none(), st.text("0123456789", min_size=2, max_size=2)))
    invoices = st.builds(
        Invoice, st.integers(0, 10**9 - 1), st.sampled_from("PSR"), st.sampled_from([10, 35, 36]), _dates, _dates,
        st.integers(0, 99), _cents(), _cents(), _cents(), _cents(), _cents(), _cents(),
        st.builds(Insured, _text(15), _text(25), _text(15)), patients, _text(2), st.integers(0, 99), _budgets,
        lines=st.lists(_lines, max_size=3), rejects=st.lists(_rejects, max_size=2),
        movements=st.lists(_invoice_movements, max_size=2))
    lots = st.builds(Lot, _dates, st.integers(0, 999), st.integers(0, 99999), st.sampled_from(["AS", "MA", "AT", "SG"]),
                     st.lists(invoices, max_size=3))
    transfers = st.one_of(st.none(), st.builds(Movement, st.just(1), st.just(1), st.just("+"), st.integers(1, 10**9),
                                               _text(35), _dates, _budgets))
    iban = st.one_of(st.none(), _text(34).filter(bool))
    blocks = st.builds(BudgetBlock, _budgets, iban, _dates, st.lists(lots, max_size=2), transfers)
    return ReturnFile(draw(st.integers(0, 999999999)), created, draw(st.integers(0, 99999)),
                      draw(st.lists(blocks, max_size=3)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(_return_files())
def test_round_trip(rf: ReturnFile) -> None:
    data = R.encode(rf)
    assert all(0x20 <= b <= 0x7E for b in data) and b"\n" not in data
    assert R.decode(data) == rf
    # 999.entity_count counts every entity, 000 and 999 included
    assert int(data[-24:-17]) == data.count(b"@")
