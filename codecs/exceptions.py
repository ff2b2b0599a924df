"""Errors of the codecs package, all under `fseflow.exceptions.FseflowError`.

Messages carry a path (`file=X.b2 lot=002 record=1874 -> type 2 -> birth_date: ...`) so an
on-call engineer can find the byte, and never the personal value itself (NIR, name, IBAN).
"""
from __future__ import annotations

from fseflow.exceptions import FseflowError, InputError

__all__ = ["CodecError", "FieldDecodeError", "FieldEncodeError", "NotB2Error", "StructureError"]


class CodecError(FseflowError):
    """A file or an object model that a codec cannot read or write."""


class NotB2Error(InputError, CodecError):
    """The data cannot be a B2 file at all (empty, or no `000` header first).

    Nothing was acknowledged: check that the right file was routed to the B2 reader.
    """


class FieldDecodeError(CodecError):
    """A field that cannot be read; `path` locates it, `reason` says what is wrong."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class FieldEncodeError(CodecError):
    """A value of the object model that does not fit its field (`path` names the field)."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class StructureError(CodecError):
    """`parse` met a record where the grammar of b2-profile.md §2 does not allow it."""
