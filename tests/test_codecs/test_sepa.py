"""SEPA pain.001.001.09 codec of payments.md §3: transliteration, IBAN, writer, reader, XSD, files."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fseflow.codecs import sepa
from fseflow.codecs.sepa import (
    Debtor,
    InitiatingParty,
    PaymentFile,
    SepaError,
    Transfer,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

NS = {"p": sepa.NAMESPACE}
FR_IBAN = "FR7630001007941234567890185"  # payments.md / bank test IBAN
DE_IBAN = "DE89370400440532013000"
GB_IBAN = "GB82WEST12345698765432"


def _iban_for(country: str, bban: str) -> str:
    """A valid IBAN for `bban`: check digits = 98 - mod 97 of BBAN + country + '00'."""
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def worked_example() -> PaymentFile:
    """payments.md §2: budget AMO, cut-off 14 March 2025 20:00, 24.78 to PS 830004123."""
    return PaymentFile(
        msg_id="FSF-AMO-20250317-01",
        created=datetime(2025, 3, 14, 20, 0, 0),
        execution_date=date(2025, 3, 17),
        initiating=InitiatingParty(name="CNMSS", org_id="13000655300010"),
        debtor=Debtor(name="CNMSS ASSURANCE MALADIE", iban=FR_IBAN, bic="BDFEFRPPCCT"),
        transfers=(
            Transfer(
                end_to_end_id="AMO20250317P830004123001",
                amount_cents=2478,
                creditor_name="CENTRE DE SANTE DES ARMEES",
                creditor_iban=DE_IBAN,
                remittance="CNMSS REMB 17/03/2025 REF P01 PS 830004123 1 FACT",
            ),
        ),
    )


def _tree(data: bytes) -> etree._Element:
    return etree.fromstring(data)


def _cents(text: str) -> int:
    euros, _, dec = text.partition(".")
    assert len(dec) == 2
    return int(euros) * 100 + int(dec)


# --- epc_text ---------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("à â ä", "a a a"),
    ("ç", "c"),
    ("é è ê ë", "e e e e"),
    ("î ï ô ö", "i i o o"),
    ("ù û ü ÿ", "u u u y"),
    ("œuvre", "oeuvre"),
    ("Lætitia", "Laetitia"),
    ("ÀÂÄ Ç ÉÈÊË ÎÏ ÔÖ ÙÛÜ Ÿ", "AAA C EEEE II OO UUU Y"),
    ("Œ Æ", "OE AE"),
    ("Dupont & Fils", "Dupont + Fils"),
    ("Hôpital   Bégin", "Hopital Begin"),
    ("  centre\tde\nsanté  ", "centre de sante"),
    ("Peña_Straße", "Pe a Stra e"),  # not in the table -> space, per §3
    ("a€b", "a b"),
    ("O'Neil (SAS), 12/3 ? - ok: +.", "O'Neil (SAS), 12/3 ? - ok: +."),
    ("Me\u0301decin", "Medecin"),  # decomposed accent read as the composed one
    ("", ""),
])
def test_transliteration_examples(raw: str, expected: str) -> None:
    assert sepa.epc_text(raw, 140) == expected


def test_cut_after_transliteration() -> None:
    # œ becomes two characters first, then the cut applies
    assert sepa.epc_text("œœœ", 4) == "oeoe"
    assert sepa.epc_text("abc def", 4) == "abc"  # no trailing space after the cut
    assert sepa.epc_text("x" * 100, 70) == "x" * 70
    assert sepa.epc_text("abc", 0) == ""
    with pytest.raises(ValueError):
        sepa.epc_text("abc", -1)


@given(st.text(), st.integers(min_value=0, max_value=200))
def test_epc_text_properties(raw: str, max_len: int) -> None:
    out = sepa.epc_text(raw, max_len)
    assert set(out) <= sepa.EPC_CHARS
    assert len(out) <= max_len
    assert "  " not in out and out == out.strip()
    assert sepa.epc_text(out, max_len) == out  # idempotent


# --- IBAN -------------------------------------------------------------------------------

@pytest.mark.parametrize("iban", [FR_IBAN, DE_IBAN, GB_IBAN, "BE68539007547034", "NO9386011117947",
                                  "CH9300762011623852957", "MT84MALT011000012345MTLCAST001S"])
def test_valid_ibans(iban: str) -> None:
    assert sepa.iban_valid(iban)


@pytest.mark.parametrize("iban", [
    "FR7630001007941234567890186",  # last digit corrupted
    "FR7630001007941234567890815",  # two digits swapped
    "DE89370400440532013001",
    "DE8937040044053201300",  # one digit short for DE
    "FR76 3000 1007 9412 3456 7890 185",  # paper form: normalise first
    "fr7630001007941234567890185",
    "XX89370400440532013000",  # unknown country
    "US64SVBKUS6S3300958879",  # not in the SEPA table
    "FR7630001007941234567890185!",
    "",
])
def test_invalid_ibans(iban: str) -> None:
    assert not sepa.iban_valid(iban)


def test_normalise_iban() -> None:
    assert sepa.normalise_iban("fr76 3000 1007 9412 3456 7890 185") == FR_IBAN
    assert sepa.normalise_iban(" DE89\u00a03704 0044 0532 0130 00\t") == DE_IBAN
    assert sepa.iban_valid(sepa.normalise_iban("gb82 west 1234 5698 7654 32"))


def test_iban_table_covers_sepa() -> None:
    eu_eea = "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK IS LI NO"
    for cc in eu_eea.split() + ["CH", "GB", "GI", "MC", "SM", "VA", "AD"]:
        assert cc in sepa.IBAN_LENGTHS, cc
    assert sepa.IBAN_LENGTHS["FR"] == 27 and sepa.IBAN_LENGTHS["DE"] == 22


@st.composite
def valid_ibans(draw: st.DrawFn) -> str:
    country = draw(st.sampled_from(sorted(sepa.IBAN_LENGTHS)))
    n = sepa.IBAN_LENGTHS[country] - 4
    bban = draw(st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=n, max_size=n))
    return _iban_for(country, bban)


@given(valid_ibans(), st.data())
def test_mod97_catches_every_single_digit_error(iban: str, data: st.DataObject) -> None:
    assert sepa.iban_valid(iban)
    digit_positions = [i for i, c in enumerate(iban) if c.isdigit() and i >= 2]
    i = data.draw(st.sampled_from(digit_positions))
    new = data.draw(st.sampled_from([d for d in "0123456789" if d != iban[i]]))
    assert not sepa.iban_valid(iban[:i] + new + iban[i + 1:])


# --- The worked example -----------------------------------------------------------------

def test_worked_example_written_valid_and_read_back() -> None:
    pf = worked_example()
    data = sepa.write(pf)
    sepa.validate(data)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09">')
    doc = _tree(data)
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:MsgId", namespaces=NS) == "FSF-AMO-20250317-01"
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CreDtTm", namespaces=NS) == "2025-03-14T20:00:00"
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=NS) == "24.78"
    assert doc.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:NbOfTxs", namespaces=NS) == "1"
    pmt = doc.find("p:CstmrCdtTrfInitn/p:PmtInf", namespaces=NS)
    expected = {
        "p:PmtInfId": "FSF-AMO-20250317-01-1", "p:PmtMtd": "TRF", "p:BtchBookg": "true",
        "p:NbOfTxs": "1", "p:CtrlSum": "24.78", "p:PmtTpInf/p:SvcLvl/p:Cd": "SEPA",
        "p:ReqdExctnDt/p:Dt": "2025-03-17", "p:DbtrAgt/p:FinInstnId/p:BICFI": "BDFEFRPPCCT",
        "p:DbtrAcct/p:Id/p:IBAN": FR_IBAN, "p:ChrgBr": "SLEV",
        "p:CdtTrfTxInf/p:PmtId/p:EndToEndId": "AMO20250317P830004123001",
        "p:CdtTrfTxInf/p:Amt/p:InstdAmt": "24.78",
        "p:CdtTrfTxInf/p:CdtrAcct/p:Id/p:IBAN": DE_IBAN,
    }
    for path, text in expected.items():
        assert pmt.findtext(path, namespaces=NS) == text, path
    assert pmt.find("p:CdtTrfTxInf/p:Amt/p:InstdAmt", namespaces=NS).get("Ccy") == "EUR"
    assert b"PstlAdr" not in data  # no postal address in v1
    assert sepa.read(data) == pf


def test_determinism() -> None:
    a, b = sepa.write(worked_example()), sepa.write(worked_example())
    assert a == b
    # Same bytes across runs and versions: a cut-off re-run must not produce a different file.
    # Change this hash only for a deliberate change of the file format.
    assert hashlib.sha256(a).hexdigest() == "487a9ff307fa86ca80eaccd68bd67f1f85c56b250326004860567aa239ca9a01"
    assert a.endswith(b"</Document>\n") and b"\r" not in a


def test_text_fields_transliterated_and_cut() -> None:
    t = dataclasses.replace(worked_example().transfers[0], creditor_name="Hôpital d'instruction des armées Bégin & Cie " * 3,
                            remittance="Réf. " + "x" * 200)
    pf = dataclasses.replace(worked_example(), transfers=(t,))
    back = sepa.read(sepa.write(pf)).transfers[0]
    assert back.creditor_name.startswith("Hopital d'instruction des armees Begin + Cie")
    assert len(back.creditor_name) <= 70 and len(back.remittance or "") == 140


def test_remittance_optional() -> None:
    t = dataclasses.replace(worked_example().transfers[0], remittance=None)
    pf = dataclasses.replace(worked_example(), transfers=(t,), initiating=InitiatingParty("CNMSS"))
    data = sepa.write(pf)
    assert b"RmtInf" not in data and b"<Id>\n" not in data.split(b"</InitgPty>")[0]
    assert sepa.read(data) == pf
    blank = dataclasses.replace(t, remittance="€€")  # nothing left after transliteration: omitted
    assert b"RmtInf" not in sepa.write(dataclasses.replace(pf, transfers=(blank,)))


@pytest.mark.skipif(shutil.which("xmllint") is None, reason="xmllint not on PATH")
def test_xmllint_agrees(tmp_path: Path) -> None:
    f = tmp_path / "amo.xml"
    f.write_bytes(sepa.write(worked_example()))
    subprocess.run(["xmllint", "--noout", "--schema", str(sepa.xsd_path()), str(f)], check=True,
                   capture_output=True)


# --- Random files -----------------------------------------------------------------------

_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=90).filter(
    lambda s: sepa.epc_text(s, 70) != "")


@st.composite
def payment_files(draw: st.DrawFn) -> PaymentFile:
    n = draw(st.integers(min_value=1, max_value=25))
    amounts = draw(st.lists(st.integers(min_value=1, max_value=sepa.AMOUNT_MAX_CENTS), min_size=n, max_size=n))
    transfers = tuple(
        Transfer(
            end_to_end_id=f"AMO20250317{draw(st.sampled_from('PA'))}{i:09d}{draw(st.integers(0, 999)):03d}",
            amount_cents=amount,
            creditor_name=draw(_names),
            creditor_iban=draw(valid_ibans()),
            remittance=draw(st.none() | st.text(max_size=200)),
        )
        for i, amount in enumerate(amounts)
    )
    created = draw(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2099, 12, 31))).replace(microsecond=0)
    return PaymentFile(
        msg_id=f"FSF-{draw(st.sampled_from(['AMO', 'APIAS', 'SIG']))}-20250317-{draw(st.integers(1, 99)):02d}",
        created=created,
        execution_date=draw(st.dates(min_value=date(2020, 1, 1), max_value=date(2099, 12, 31))),
        initiating=InitiatingParty(name=draw(_names), org_id=draw(st.none() | st.just("13000655300010"))),
        debtor=Debtor(name=draw(_names), iban=draw(valid_ibans()), bic="BDFEFRPPCCT"),
        transfers=transfers,
    )


def _as_written(pf: PaymentFile) -> PaymentFile:
    """`pf` with its text fields as the writer puts them (EPC, cut), i.e. what `read` returns."""
    def ustrd(s: str | None) -> str | None:
        return None if s is None else (sepa.epc_text(s, 140) or None)
    return dataclasses.replace(
        pf,
        initiating=dataclasses.replace(pf.initiating, name=sepa.epc_text(pf.initiating.name, 70)),
        debtor=dataclasses.replace(pf.debtor, name=sepa.epc_text(pf.debtor.name, 70)),
        transfers=tuple(dataclasses.replace(t, creditor_name=sepa.epc_text(t.creditor_name, 70),
                                            remittance=ustrd(t.remittance)) for t in pf.transfers),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payment_files())
def test_random_files_valid_and_balanced(pf: PaymentFile) -> None:
    data = sepa.write(pf)
    sepa.validate(data)
    assert sepa.write(pf) == data
    doc = _tree(data)
    amounts = [_cents(a) for a in doc.xpath("//p:InstdAmt/text()", namespaces=NS)]
    total = sum(t.amount_cents for t in pf.transfers)
    assert sum(amounts) == total
    for path in ("p:CstmrCdtTrfInitn/p:GrpHdr", "p:CstmrCdtTrfInitn/p:PmtInf"):
        assert _cents(doc.findtext(f"{path}/p:CtrlSum", namespaces=NS)) == total
        assert doc.findtext(f"{path}/p:NbOfTxs", namespaces=NS) == str(len(pf.transfers))
    assert len(doc.findall(".//p:CdtTrfTxInf", namespaces=NS)) == len(pf.transfers)
    assert sepa.read(data) == _as_written(pf)


@given(st.integers(min_value=1, max_value=sepa.AMOUNT_MAX_CENTS))
def test_amount_format_is_exact(cents: int) -> None:
    t = dataclasses.replace(worked_example().transfers[0], amount_cents=cents)
    data = sepa.write(dataclasses.replace(worked_example(), transfers=(t,)))
    text = _tree(data).findtext(".//p:InstdAmt", namespaces=NS)
    assert text == f"{cents // 100}.{cents % 100:02d}" and _cents(text) == cents
    assert sepa.read(data).transfers[0].amount_cents == cents


# --- Errors -----------------------------------------------------------------------------

def _with_transfer(**changes: object) -> PaymentFile:
    pf = worked_example()
    return dataclasses.replace(pf, transfers=(dataclasses.replace(pf.transfers[0], **changes),))


@pytest.mark.parametrize(("changes", "field"), [
    ({"creditor_iban": "FR7630001007941234567890186"}, "CdtrAcct/Id/IBAN"),
    ({"creditor_iban": "FR76 3000 1007 9412 3456 7890 185"}, "CdtrAcct/Id/IBAN"),
    ({"amount_cents": 0}, "InstdAmt"),
    ({"amount_cents": -100}, "InstdAmt"),
    ({"amount_cents": sepa.AMOUNT_MAX_CENTS + 1}, "InstdAmt"),
    ({"amount_cents": 24.78}, "InstdAmt"),
    ({"amount_cents": True}, "InstdAmt"),
    ({"creditor_name": "€ ß"}, "Cdtr/Nm"),
])
def test_transfer_errors_name_field_and_id_never_iban(changes: dict[str, object], field: str) -> None:
    pf = _with_transfer(**changes)
    with pytest.raises(SepaError) as info:
        sepa.write(pf)
    msg = str(info.value)
    assert field in msg and "AMO20250317P830004123001" in msg
    for iban in (FR_IBAN, DE_IBAN, pf.transfers[0].creditor_iban):
        assert iban not in msg and iban.replace(" ", "") not in msg.replace(" ", "")
    assert isinstance(info.value, ValueError)


def test_not_normalised_iban_hint() -> None:
    with pytest.raises(SepaError, match="normalise_iban"):
        sepa.write(_with_transfer(creditor_iban="fr7630001007941234567890185"))


@pytest.mark.parametrize("bad", ["", "A" * 36, "AMO//2025", "/AMO2025", "AMO2025/", "AMO_2025", "AMO2025é", " AMO"])
def test_bad_end_to_end_id(bad: str) -> None:
    with pytest.raises(SepaError, match="EndToEndId") as info:
        sepa.write(_with_transfer(end_to_end_id=bad))
    assert DE_IBAN not in str(info.value)


@pytest.mark.parametrize("bad", ["", "F" * 34, "FSF//AMO", "/FSF", "FSF&AMO"])
def test_bad_msg_id(bad: str) -> None:  # "F" * 34 -> PmtInfId of 36 characters
    with pytest.raises(SepaError, match="MsgId|PmtInfId"):
        sepa.write(dataclasses.replace(worked_example(), msg_id=bad))


def test_file_level_errors() -> None:
    pf = worked_example()
    with pytest.raises(SepaError, match="CdtTrfTxInf.*nothing") as info:
        sepa.write(dataclasses.replace(pf, transfers=()))
    assert "FSF-AMO-20250317-01" in str(info.value)
    with pytest.raises(SepaError, match="DbtrAcct/Id/IBAN") as info:
        sepa.write(dataclasses.replace(pf, debtor=dataclasses.replace(pf.debtor, iban="FR7630001007941234567890186")))
    assert "FR763000100794123456789018" not in str(info.value)
    with pytest.raises(SepaError, match="BICFI"):
        sepa.write(dataclasses.replace(pf, debtor=dataclasses.replace(pf.debtor, bic="bdfefrpp")))
    with pytest.raises(SepaError, match="duplicate"):
        sepa.write(dataclasses.replace(pf, transfers=pf.transfers * 2))
    with pytest.raises(SepaError, match="CreDtTm"):
        sepa.write(dataclasses.replace(pf, created=datetime(2025, 3, 14, 20, tzinfo=UTC)))
    with pytest.raises(SepaError, match="CreDtTm"):
        sepa.write(dataclasses.replace(pf, created=datetime(2025, 3, 14, 20, 0, 0, 5)))
    with pytest.raises(SepaError, match="ReqdExctnDt"):
        sepa.write(dataclasses.replace(pf, execution_date=datetime(2025, 3, 17, 9)))
    with pytest.raises(SepaError, match="OrgId"):
        sepa.write(dataclasses.replace(pf, initiating=InitiatingParty("CNMSS", "x" * 36)))


# --- validate and read on foreign or tampered bytes --------------------------------------

def test_validate_reports_schema_lines_without_values() -> None:
    data = sepa.write(worked_example())
    bad_iban = "fr7630001007941234567890185"
    tampered = data.replace(b"<CtrlSum>24.78</CtrlSum>", b"<CtrlSum>abc</CtrlSum>", 1).replace(
        DE_IBAN.encode(), bad_iban.encode())
    with pytest.raises(SepaError, match="XSD") as info:
        sepa.validate(tampered)
    msg = str(info.value)
    assert "line " in msg and "CtrlSum" in msg and "IBAN" in msg
    assert bad_iban not in msg and "abc" not in msg
    with pytest.raises(SepaError, match="well-formed"):
        sepa.validate(b"<Document>")
    with pytest.raises(SepaError):
        sepa.validate(data.replace(b"pain.001.001.09", b"pain.001.001.03"))


def test_read_checks_control_totals() -> None:
    data = sepa.write(worked_example())
    with pytest.raises(SepaError, match="CtrlSum"):
        sepa.read(data.replace(b"<CtrlSum>24.78</CtrlSum>", b"<CtrlSum>24.79</CtrlSum>", 1))
    with pytest.raises(SepaError, match="NbOfTxs"):
        sepa.read(data.replace(b"<NbOfTxs>1</NbOfTxs>", b"<NbOfTxs>2</NbOfTxs>", 1))
    with pytest.raises(SepaError, match="InstdAmt"):
        sepa.read(data.replace(b'Ccy="EUR">24.78<', b'Ccy="EUR">24.781<'))
    with pytest.raises(SepaError, match="Ccy"):
        sepa.read(data.replace(b'Ccy="EUR"', b'Ccy="USD"'))
    with pytest.raises(SepaError, match="pain.001.001.09"):
        sepa.read(data.replace(b"pain.001.001.09", b"pain.001.001.03"))
    with pytest.raises(SepaError, match="well-formed"):
        sepa.read(b"not xml")
    # One decimal is still read exactly, by string parsing.
    one_dec = data.replace(b">24.78<", b">24.70<").replace(b'Ccy="EUR">24.70<', b'Ccy="EUR">24.7<')
    assert sepa.read(one_dec).transfers[0].amount_cents == 2470


# --- write_atomic -----------------------------------------------------------------------

def test_write_atomic_and_manifest(tmp_path: Path) -> None:
    data = sepa.write(worked_example())
    h = sepa.write_atomic(tmp_path, "AMO-20250317.xml", data)
    assert h == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "AMO-20250317.xml").read_bytes() == data
    assert (tmp_path / "SHA256SUMS").read_text() == f"{h}  AMO-20250317.xml\n"

    # Identical bytes: a no-op, same hash, file not replaced.
    inode = (tmp_path / "AMO-20250317.xml").stat().st_ino
    assert sepa.write_atomic(tmp_path, "AMO-20250317.xml", data) == h
    assert (tmp_path / "AMO-20250317.xml").stat().st_ino == inode

    # Different bytes under the same name: refused, the file is unchanged.
    with pytest.raises(SepaError, match="different bytes"):
        sepa.write_atomic(tmp_path, "AMO-20250317.xml", data + b" ")
    assert (tmp_path / "AMO-20250317.xml").read_bytes() == data

    # A second file: manifest sorted by name, each line "<sha256>  <name>".
    h2 = sepa.write_atomic(tmp_path, "AAA.xml", b"other")
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert lines == [f"{h2}  AAA.xml", f"{h}  AMO-20250317.xml"]
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=tmp_path, check=True)

    # No temporary file left behind.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [
        "AAA.xml", "AMO-20250317.xml", "SHA256SUMS"]


def test_write_atomic_remembers_removed_files(tmp_path: Path) -> None:
    sepa.write_atomic(tmp_path, "SIG.xml", b"first")
    os.unlink(tmp_path / "SIG.xml")  # e.g. moved to the bank's outbox
    with pytest.raises(SepaError, match="manifest"):
        sepa.write_atomic(tmp_path, "SIG.xml", b"second")
    assert sepa.write_atomic(tmp_path, "SIG.xml", b"first") == hashlib.sha256(b"first").hexdigest()


def test_write_atomic_adds_existing_file_to_manifest(tmp_path: Path) -> None:
    (tmp_path / "APIAS.xml").write_bytes(b"x")
    h = sepa.write_atomic(tmp_path, "APIAS.xml", b"x")
    assert (tmp_path / "SHA256SUMS").read_text() == f"{h}  APIAS.xml\n"


@pytest.mark.parametrize("name", ["", "SHA256SUMS", "../x.xml", "a/b.xml", ".hidden", "a b.xml", "a\nb"])
def test_write_atomic_rejects_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(SepaError, match="file name"):
        sepa.write_atomic(tmp_path, name, b"x")
