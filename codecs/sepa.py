"""SEPA credit-transfer files, pain.001.001.09 (payments.md §3): writer, reader, validation.

One file per budget and day, one `PmtInf` block, one `CdtTrfTxInf` per payee. Amounts are
integer cents end to end: they are formatted with `divmod` on write and parsed back from the
string on read, never through a float (payments.md §6 P9).

Library choice: the XML is written with `xml.etree.ElementTree`. The `sepaxml` package cannot
produce the bytes the profile needs: it stamps `CreDtTm` with `datetime.now()` and makes a
random `PmtInfId`, so a cut-off re-run would not give the same bytes (payments.md §3). It is used
only for the official `pain.001.001.09.xsd` it ships, which `validate` loads with lxml.

Error messages name the field and a pseudonymous id (MsgId, EndToEndId, transfer index) and
never an IBAN or a name: they end up in logs.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import importlib.resources
import os
import re
import tempfile
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from fseflow.codecs.exceptions import CodecError
from fseflow.durable import fsync_dir, replace_atomic

__all__ = [
    "AMOUNT_MAX_CENTS",
    "AMOUNT_MIN_CENTS",
    "IBAN_LENGTHS",
    "MANIFEST",
    "NAMESPACE",
    "Debtor",
    "InitiatingParty",
    "PaymentFile",
    "SepaError",
    "Transfer",
    "epc_text",
    "iban_valid",
    "normalise_iban",
    "read",
    "validate",
    "write",
    "write_atomic",
    "write_many",
]

NAMESPACE = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"
MANIFEST = "SHA256SUMS"

AMOUNT_MIN_CENTS = 1  # 0.01 EUR
AMOUNT_MAX_CENTS = 99_999_999_999  # 999999999.99 EUR

NAME_MAX = 70  # Cdtr/Nm, Dbtr/Nm, InitgPty/Nm
USTRD_MAX = 140  # RmtInf/Ustrd
ID_MAX = 35  # MsgId, PmtInfId, EndToEndId, OrgId/Othr/Id


class SepaError(CodecError, ValueError):
    """A payment file that cannot be written, read or validated; the message names the field."""


# --- EPC character set and transliteration (payments.md §3) ------------------------------

#: The only characters a SEPA text field may hold (EPC Latin subset).
EPC_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")

#: Transliteration table of payments.md §3, lower-case forms; the upper-case forms are derived
#: below so the table cannot drift out of step with them.
_TRANSLITERATION: tuple[tuple[str, str], ...] = (
    ("àâä", "a"),
    ("ç", "c"),
    ("éèêë", "e"),
    ("îï", "i"),
    ("ôö", "o"),
    ("ùûü", "u"),
    ("ÿ", "y"),
    ("œ", "oe"),
    ("æ", "ae"),
)
_SYMBOLS: tuple[tuple[str, str], ...] = (("&", "+"),)


def _build_map() -> dict[str, str]:
    out: dict[str, str] = {}
    for chars, repl in _TRANSLITERATION:
        for c in chars:
            out[c] = repl
            out[c.upper()] = repl.upper()  # À -> A, Œ -> OE, Ÿ -> Y
    for c, repl in _SYMBOLS:
        out[c] = repl
    return out


_EPC_MAP = _build_map()
_SPACES = re.compile(" {2,}")


def epc_text(s: str, max_len: int) -> str:
    """`s` transliterated to the EPC Latin subset, spaces collapsed, stripped, cut to `max_len`.

    Any character outside the table and the EPC set becomes a space (payments.md §3).
    """
    if max_len < 0:
        raise ValueError("max_len must be >= 0")
    # NFC first: a decomposed 'e' + combining acute must read like 'é', not like 'e '.
    s = unicodedata.normalize("NFC", s)
    out = "".join(_EPC_MAP.get(c, c if c in EPC_CHARS else " ") for c in s)
    out = _SPACES.sub(" ", out).strip()
    # rstrip after the cut: a cut just after a word would otherwise leave a trailing space.
    return out[:max_len].rstrip()


_ID_RE = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]{1,35}")


def _check_id(value: object, field: str, where: str) -> str:
    """An identifier of §3: 1..35 EPC characters, no leading/trailing '/' or space, no '//'."""
    if not isinstance(value, str):
        raise SepaError(f"{where}: {field}: must be a string")
    if not _ID_RE.fullmatch(value):
        raise SepaError(f"{where}: {field}: must be 1 to {ID_MAX} characters of the EPC set")
    if value.startswith("/") or value.endswith("/") or "//" in value:
        raise SepaError(f"{where}: {field}: must not start or end with '/' nor contain '//'")
    # A bank may trim spaces; the id it returns would then not match ours at reconciliation.
    if value != value.strip():
        raise SepaError(f"{where}: {field}: must not start or end with a space")
    return value


# --- IBAN -------------------------------------------------------------------------------

#: IBAN length by country: every country of the SEPA scheme (EU/EEA, CH, GB, GI, MC, SM, VA, AD,
#: and AL, MD, ME, MK, RS admitted in 2024-2025). Source: SWIFT IBAN registry.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AL": 28, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24,
    "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GI": 23,
    "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "RS": 22, "SE": 24, "SI": 19, "SK": 24,
    "SM": 27, "VA": 22,
}

_IBAN_RE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]+")


def normalise_iban(iban: str) -> str:
    """The electronic form of an IBAN: whitespace removed (paper form groups by 4), upper case."""
    return "".join(iban.split()).upper()


def iban_valid(iban: str) -> bool:
    """True for an IBAN in electronic form with its country's length and mod 97 == 1.

    Strict: spaces or lower case make it invalid; call `normalise_iban` first on typed input.
    """
    if not isinstance(iban, str) or not _IBAN_RE.fullmatch(iban):
        return False
    if IBAN_LENGTHS.get(iban[:2]) != len(iban):
        return False
    rearranged = iban[4:] + iban[:4]
    # int(c, 36) maps 0-9 to themselves and A-Z to 10-35, as ISO 13616 requires.
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _check_iban(iban: object, field: str, where: str) -> str:
    if not isinstance(iban, str) or not iban_valid(iban):
        hint = ""
        if isinstance(iban, str) and iban != normalise_iban(iban) and iban_valid(normalise_iban(iban)):
            hint = " (not in electronic form: use normalise_iban)"
        # Never the IBAN itself in the message: it is personal data.
        raise SepaError(f"{where}: {field}: invalid IBAN{hint}")
    return iban


_BIC_RE = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?")  # the XSD's BICFI pattern


# --- Data model -------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Debtor:
    """The account of one budget (AMO, APIAS, SIG): configuration, three different accounts."""

    name: str
    iban: str
    bic: str


@dataclass(frozen=True, slots=True)
class InitiatingParty:
    """`GrpHdr/InitgPty`; `org_id` goes to `Id/OrgId/Othr/Id` when the bank requires one."""

    name: str
    org_id: str | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    """One `CdtTrfTxInf`: the whole balance of one payee, in integer cents."""

    end_to_end_id: str
    amount_cents: int
    creditor_name: str
    creditor_iban: str
    remittance: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentFile:
    """One pain.001.001.09 file: one budget, one day, one `PmtInf` block (`<msg_id>-1`)."""

    msg_id: str
    created: datetime  # the cut-off, naive local time
    execution_date: date
    initiating: InitiatingParty
    debtor: Debtor
    transfers: tuple[Transfer, ...]

    @property
    def pmt_inf_id(self) -> str:
        return f"{self.msg_id}-1"

    @property
    def ctrl_sum_cents(self) -> int:
        return sum(t.amount_cents for t in self.transfers)


# --- Amounts ----------------------------------------------------------------------------

def _fmt_cents(cents: int) -> str:
    euros, rest = divmod(cents, 100)
    return f"{euros}.{rest:02d}"


_AMOUNT_RE = re.compile(r"([0-9]{1,18})(?:\.([0-9]{1,2}))?")


def _parse_cents(text: str | None, field: str, where: str) -> int:
    """'24.78' -> 2478 by string parsing (never float: 0.1 + 0.2 must stay exact)."""
    m = _AMOUNT_RE.fullmatch((text or "").strip())
    if not m:
        raise SepaError(f"{where}: {field}: not an amount with at most 2 decimals")
    return int(m.group(1)) * 100 + int((m.group(2) or "0").ljust(2, "0"))


# --- Writer -----------------------------------------------------------------------------

def _name(value: object, field: str, where: str, max_len: int = NAME_MAX) -> str:
    if not isinstance(value, str):
        raise SepaError(f"{where}: {field}: must be a string")
    out = epc_text(value, max_len)
    if not out:
        raise SepaError(f"{where}: {field}: empty after EPC transliteration")
    return out


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    el = ET.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def _check_file(pf: PaymentFile) -> None:
    """Everything the writer refuses, checked before any XML is built."""
    if not isinstance(pf, PaymentFile):
        raise SepaError("write: expected a PaymentFile")
    _check_id(pf.msg_id, "GrpHdr/MsgId", "file")
    where = f"file {pf.msg_id}"
    _check_id(pf.pmt_inf_id, "PmtInf/PmtInfId", where)
    if not isinstance(pf.created, datetime):
        raise SepaError(f"{where}: GrpHdr/CreDtTm: must be a datetime")
    if pf.created.tzinfo is not None:
        raise SepaError(f"{where}: GrpHdr/CreDtTm: must be naive local time (the cut-off)")
    if pf.created.microsecond:
        # Written to the second; a fraction would be lost and break read(write(pf)) == pf.
        raise SepaError(f"{where}: GrpHdr/CreDtTm: must be a whole second")
    # datetime is a subclass of date: refuse it, its time part would be silently dropped.
    if not isinstance(pf.execution_date, date) or isinstance(pf.execution_date, datetime):
        raise SepaError(f"{where}: PmtInf/ReqdExctnDt/Dt: must be a date")
    if pf.initiating.org_id is not None:
        _check_id(pf.initiating.org_id, "GrpHdr/InitgPty/Id/OrgId/Othr/Id", where)
    _check_iban(pf.debtor.iban, "PmtInf/DbtrAcct/Id/IBAN", where)
    if not isinstance(pf.debtor.bic, str) or not _BIC_RE.fullmatch(pf.debtor.bic):
        raise SepaError(f"{where}: PmtInf/DbtrAgt/FinInstnId/BICFI: invalid BIC")
    if not pf.transfers:
        # No file when nothing is to be paid (payments.md §2).
        raise SepaError(f"{where}: PmtInf/CdtTrfTxInf: no transfer (no file when nothing is to be paid)")
    seen: set[str] = set()
    for i, t in enumerate(pf.transfers):
        _check_id(t.end_to_end_id, "CdtTrfTxInf/PmtId/EndToEndId", f"{where} transfer #{i}")
        tw = f"{where} EndToEndId {t.end_to_end_id}"
        if t.end_to_end_id in seen:
            raise SepaError(f"{tw}: CdtTrfTxInf/PmtId/EndToEndId: duplicate in the file")
        seen.add(t.end_to_end_id)
        # type() and not isinstance: bool is an int, and a float must never reach an amount.
        if type(t.amount_cents) is not int:
            raise SepaError(f"{tw}: CdtTrfTxInf/Amt/InstdAmt: amount_cents must be an int")
        if not AMOUNT_MIN_CENTS <= t.amount_cents <= AMOUNT_MAX_CENTS:
            raise SepaError(f"{tw}: CdtTrfTxInf/Amt/InstdAmt: must be 0.01 to 999999999.99 EUR")
        _check_iban(t.creditor_iban, "CdtTrfTxInf/CdtrAcct/Id/IBAN", tw)
        _name(t.creditor_name, "CdtTrfTxInf/Cdtr/Nm", tw)
        if t.remittance is not None and not isinstance(t.remittance, str):
            raise SepaError(f"{tw}: CdtTrfTxInf/RmtInf/Ustrd: must be a string or None")


def write(pf: PaymentFile) -> bytes:
    """The pain.001.001.09 bytes of `pf`: same input, same bytes; XSD-valid or `SepaError`."""
    _check_file(pf)
    where = f"file {pf.msg_id}"
    n = str(len(pf.transfers))
    total = _fmt_cents(pf.ctrl_sum_cents)

    # Default namespace as a plain attribute: no ET.register_namespace (process-wide state).
    doc = ET.Element("Document", {"xmlns": NAMESPACE})
    root = _sub(doc, "CstmrCdtTrfInitn")

    hdr = _sub(root, "GrpHdr")
    _sub(hdr, "MsgId", pf.msg_id)
    _sub(hdr, "CreDtTm", pf.created.strftime("%Y-%m-%dT%H:%M:%S"))
    _sub(hdr, "NbOfTxs", n)
    _sub(hdr, "CtrlSum", total)
    initg = _sub(hdr, "InitgPty")
    _sub(initg, "Nm", _name(pf.initiating.name, "GrpHdr/InitgPty/Nm", where))
    if pf.initiating.org_id is not None:
        _sub(_sub(_sub(_sub(initg, "Id"), "OrgId"), "Othr"), "Id", pf.initiating.org_id)

    pmt = _sub(root, "PmtInf")
    _sub(pmt, "PmtInfId", pf.pmt_inf_id)
    _sub(pmt, "PmtMtd", "TRF")
    _sub(pmt, "BtchBookg", "true")  # one debit per block (profile choice)
    _sub(pmt, "NbOfTxs", n)
    _sub(pmt, "CtrlSum", total)
    _sub(_sub(_sub(pmt, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
    _sub(_sub(pmt, "ReqdExctnDt"), "Dt", pf.execution_date.isoformat())
    _sub(_sub(pmt, "Dbtr"), "Nm", _name(pf.debtor.name, "PmtInf/Dbtr/Nm", where))
    _sub(_sub(_sub(pmt, "DbtrAcct"), "Id"), "IBAN", pf.debtor.iban)
    _sub(_sub(_sub(pmt, "DbtrAgt"), "FinInstnId"), "BICFI", pf.debtor.bic)
    _sub(pmt, "ChrgBr", "SLEV")

    for t in pf.transfers:
        tw = f"{where} EndToEndId {t.end_to_end_id}"
        tx = _sub(pmt, "CdtTrfTxInf")
        _sub(_sub(tx, "PmtId"), "EndToEndId", t.end_to_end_id)
        _sub(_sub(tx, "Amt"), "InstdAmt", _fmt_cents(t.amount_cents), Ccy="EUR")
        _sub(_sub(tx, "Cdtr"), "Nm", _name(t.creditor_name, "CdtTrfTxInf/Cdtr/Nm", tw))
        _sub(_sub(_sub(tx, "CdtrAcct"), "Id"), "IBAN", t.creditor_iban)
        if t.remittance is not None:
            ustrd = epc_text(t.remittance, USTRD_MAX)
            if ustrd:  # Ustrd is 0..1 and at least 1 character: omit rather than write it empty
                _sub(_sub(tx, "RmtInf"), "Ustrd", ustrd)

    ET.indent(doc, space="  ")
    data = (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(doc, encoding="unicode") + "\n"
    ).encode("utf-8")
    # Belt and braces: a file that fails the official XSD is never handed to the caller.
    validate(data)
    return data


# --- Reader -----------------------------------------------------------------------------

_NS = {"p": NAMESPACE}


def _text(el: ET.Element, path: str, where: str) -> str:
    node = el.find(path, _NS)
    if node is None or node.text is None:
        raise SepaError(f"{where}: {path.replace('p:', '')}: missing")
    return node.text.strip()


def _opt_text(el: ET.Element, path: str) -> str | None:
    node = el.find(path, _NS)
    return None if node is None or node.text is None else node.text.strip()


def read(data: bytes) -> PaymentFile:
    """The `PaymentFile` of pain.001.001.09 bytes written by `write` (reconciliation).

    Checks payments.md §6 P5 on the way: both NbOfTxs and both CtrlSum match the transactions.
    """
    try:
        doc = ET.fromstring(data)
    except ET.ParseError as exc:
        raise SepaError(f"not well-formed XML: {exc}") from None
    if doc.tag != f"{{{NAMESPACE}}}Document":
        raise SepaError("Document: not a pain.001.001.09 document (root or namespace)")
    root = doc.find("p:CstmrCdtTrfInitn", _NS)
    if root is None:
        raise SepaError("Document/CstmrCdtTrfInitn: missing")
    msg_id = _text(root, "p:GrpHdr/p:MsgId", "file")
    where = f"file {msg_id}"
    pmts = root.findall("p:PmtInf", _NS)
    if len(pmts) != 1:
        raise SepaError(f"{where}: PmtInf: expected exactly one block, found {len(pmts)}")
    pmt = pmts[0]
    try:
        created = datetime.strptime(_text(root, "p:GrpHdr/p:CreDtTm", where), "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        raise SepaError(f"{where}: GrpHdr/CreDtTm: not YYYY-MM-DDTHH:MM:SS") from None
    try:
        execution = date.fromisoformat(_text(pmt, "p:ReqdExctnDt/p:Dt", where))
    except ValueError:
        raise SepaError(f"{where}: PmtInf/ReqdExctnDt/Dt: not an ISO date") from None

    transfers = []
    for i, tx in enumerate(pmt.findall("p:CdtTrfTxInf", _NS)):
        e2e = _text(tx, "p:PmtId/p:EndToEndId", f"{where} transfer #{i}")
        tw = f"{where} EndToEndId {e2e}"
        amt = tx.find("p:Amt/p:InstdAmt", _NS)
        if amt is None:
            raise SepaError(f"{tw}: CdtTrfTxInf/Amt/InstdAmt: missing")
        if amt.get("Ccy") != "EUR":
            raise SepaError(f"{tw}: CdtTrfTxInf/Amt/InstdAmt@Ccy: must be EUR")
        transfers.append(Transfer(
            end_to_end_id=e2e,
            amount_cents=_parse_cents(amt.text, "CdtTrfTxInf/Amt/InstdAmt", tw),
            creditor_name=_text(tx, "p:Cdtr/p:Nm", tw),
            creditor_iban=_text(tx, "p:CdtrAcct/p:Id/p:IBAN", tw),
            remittance=_opt_text(tx, "p:RmtInf/p:Ustrd"),
        ))

    # P5: a file whose control totals disagree with its transactions is not a file we wrote.
    cents = sum(t.amount_cents for t in transfers)
    for block, prefix in ((root.find("p:GrpHdr", _NS), "GrpHdr"), (pmt, "PmtInf")):
        assert block is not None
        if _text(block, "p:NbOfTxs", where) != str(len(transfers)):
            raise SepaError(f"{where}: {prefix}/NbOfTxs: differs from the number of CdtTrfTxInf")
        ctrl = _opt_text(block, "p:CtrlSum")
        if ctrl is not None and _parse_cents(ctrl, f"{prefix}/CtrlSum", where) != cents:
            raise SepaError(f"{where}: {prefix}/CtrlSum: differs from the sum of InstdAmt")

    return PaymentFile(
        msg_id=msg_id,
        created=created,
        execution_date=execution,
        initiating=InitiatingParty(
            name=_text(root, "p:GrpHdr/p:InitgPty/p:Nm", where),
            org_id=_opt_text(root, "p:GrpHdr/p:InitgPty/p:Id/p:OrgId/p:Othr/p:Id"),
        ),
        debtor=Debtor(
            name=_text(pmt, "p:Dbtr/p:Nm", where),
            iban=_text(pmt, "p:DbtrAcct/p:Id/p:IBAN", where),
            bic=_text(pmt, "p:DbtrAgt/p:FinInstnId/p:BICFI", where),
        ),
        transfers=tuple(transfers),
    )


# --- XSD validation ---------------------------------------------------------------------

def xsd_path() -> Path:
    """The official pain.001.001.09 XSD, as shipped by the `sepaxml` package."""
    return Path(str(importlib.resources.files("sepaxml") / "schemas" / "pain.001.001.09.xsd"))


@functools.lru_cache(maxsize=1)
def _schema():  # type: ignore[no-untyped-def]
    from lxml import etree  # local: only validation needs lxml

    return etree.XMLSchema(etree.parse(str(xsd_path())))


# libxml2 quotes the offending value ("The value 'FR76...' is not accepted by the pattern"):
# it may be an IBAN or a name, so it is redacted before it reaches an exception message.
_VALUE_RE = re.compile(r"(The value |: )'.*?'(?= is not| has a length)")


def _redact(message: str) -> str:
    return _VALUE_RE.sub(r"\1'<redacted>'", message)


def validate(data: bytes) -> None:
    """Raise `SepaError` (one line per schema error) unless `data` is valid pain.001.001.09."""
    from lxml import etree

    # No entities, no network: the input is a file, never a reason to fetch anything.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        doc = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise SepaError(f"not well-formed XML: {exc}") from None
    schema = _schema()
    if not schema.validate(doc):
        lines = [f"line {e.line}: {_redact(e.message)}" for e in schema.error_log]
        raise SepaError("pain.001.001.09 XSD validation failed:\n" + "\n".join(lines))


# --- Atomic write with a SHA-256 manifest -----------------------------------------------

_FILE_NAME_RE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9._\-]*")


_HEX = frozenset("0123456789abcdef")


def _read_manifest(folder: Path) -> dict[str, str]:
    path = folder / MANIFEST
    if not path.exists():
        return {}
    out: dict[str, str] = {}
    for n, line in enumerate(path.read_text("ascii").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not set(digest) <= _HEX or not name:
            raise SepaError(f"{MANIFEST} line {n}: not '<sha256>  <name>'")
        out[name] = digest
    return out


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    # Two writers in one folder would lose manifest lines or race past the "never changed"
    # check; an advisory lock serialises them (os.replace alone cannot refuse an overwrite).
    with open(folder / f".{MANIFEST}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_atomic(folder: Path, name: str, data: bytes) -> str:
    """Write `folder/name` atomically, record it in `folder/SHA256SUMS`, return its sha256 hex.

    Same bytes again: no-op, same hash. Different bytes under a name already written (on disk or
    in the manifest): `SepaError`, because a file once written may already have been sent.
    """
    return write_many(folder, {name: data})[name]


def write_many(folder: Path, files: dict[str, bytes]) -> dict[str, str]:
    """`write_atomic` for many files at once (a day's returns are thousands of small files):
    one lock, one manifest rewrite and one sync instead of two fsyncs and a manifest per file.

    Every file is checked before anything is written; the new files' bytes reach the disk
    (os.sync) before any of them is renamed into place, then the manifest is replaced."""
    folder = Path(folder)
    digests: dict[str, str] = {}
    for name, data in files.items():
        if not _FILE_NAME_RE.fullmatch(name) or name == MANIFEST:
            raise SepaError(f"write_atomic: invalid file name {name!r}")
        if not isinstance(data, bytes):
            raise SepaError(f"write_atomic: {name}: data must be bytes")
        digests[name] = hashlib.sha256(data).hexdigest()
    with _folder_lock(folder):
        manifest = _read_manifest(folder)
        todo = []
        for name, digest in digests.items():
            target = folder / name
            if target.exists():
                if hashlib.sha256(target.read_bytes()).hexdigest() != digest:
                    raise SepaError(f"write_atomic: {name}: already written with different bytes")
                if manifest.get(name, digest) != digest:
                    raise SepaError(f"write_atomic: {name}: on disk but the manifest records different bytes")
            elif manifest.get(name, digest) != digest:
                raise SepaError(f"write_atomic: {name}: the manifest records different bytes")
            else:
                todo.append(name)
        temps: list[tuple[str, str]] = []
        try:
            for name in todo:
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
                temps.append((tmp, name))
                with os.fdopen(fd, "wb") as f:
                    f.write(files[name])
            if temps:
                os.sync()
            while temps:
                tmp, name = temps[-1]
                os.replace(tmp, folder / name)
                temps.pop()
        finally:
            for tmp, _ in temps:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        if any(manifest.get(n) != d for n, d in digests.items()):
            manifest.update(digests)
            body = "".join(f"{manifest[k]}  {k}\n" for k in sorted(manifest))
            replace_atomic(folder / MANIFEST, body.encode("ascii"))  # fsyncs the folder: the renames too
        elif todo:
            fsync_dir(folder)
    return digests