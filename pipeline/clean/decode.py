"""Bytes -> text, or a reason the bytes are not a readable page.

Encoding is decided in a fixed order: byte-order mark, then a charset the page
declares (meta tag or XML declaration), then UTF-8, then bs4's UnicodeDammit
(which tries chardet-like guesses and Windows-1252).  A page whose text comes
out mostly as replacement or control characters is rejected rather than stored
as garbage.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import ftfy
from bs4.dammit import UnicodeDammit

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_DECLARED = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_.:-]+)""",
    re.I,
)
_BINARY_MAGIC = (
    (b"%PDF-", "a PDF document"),
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
)
# Cheap pre-filter before asking ftfy: the lead bytes of UTF-8 read as Latin-1.
_MOJIBAKE = re.compile("[ÃÂâ][\u0080-\u00bf\u2018-\u203a\u20ac\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class UndecodablePage(ValueError):
    """Raised with a one-line reason when bytes are not a readable text page."""


@dataclass(frozen=True, slots=True)
class DecodedPage:
    text: str
    encoding: str
    problems: tuple[str, ...] = ()  # what had to be guessed or repaired


def decode_page(content: bytes, declared_charset: str | None = None) -> DecodedPage:
    if not content:
        raise UndecodablePage("empty page: 0 bytes")
    if content.isspace():  # (= not content.strip() for non-empty bytes, without copying the page)
        raise UndecodablePage("empty page: whitespace only")
    for magic, what in _BINARY_MAGIC:
        if content.startswith(magic):
            raise UndecodablePage(f"not a web page: content is {what}")

    text, encoding, guessed = _decode(content, declared_charset)
    if text is None:
        raise UndecodablePage("undecodable page: no character encoding fits the bytes")
    sample = text[:20000]
    bad = _controls(sample) + sample.count("\ufffd")
    if sample and bad / len(sample) > 0.02:
        raise UndecodablePage(
            f"binary or undecodable page: {bad} control/replacement characters in the first {len(sample)}"
        )
    if not text or text.isspace():
        raise UndecodablePage("empty page: whitespace only")
    problems: list[str] = []
    if guessed:
        problems.append(f"charset missing or wrong: decoded as {encoding} by guess")
    if _may_be_mojibake(sample) and _MOJIBAKE.search(sample) and ftfy.badness.is_bad(sample):
        text = ftfy.fix_text(text)  # UTF-8 read as Latin-1/Windows-1252 somewhere upstream
        problems.append("mojibake repaired (UTF-8 text that had been decoded as Latin-1)")
    return DecodedPage(text=text, encoding=encoding, problems=tuple(problems))


_CONTROL_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])


def _controls(sample: str) -> int:
    """How many characters of _CONTROL `sample` holds.  Counted on its UTF-8 bytes, where
    these characters are single bytes that no other character's encoding contains, with
    bytes.translate (C speed) instead of the regex (a Python-level scan of every match)."""
    raw = sample.encode("utf-8", "surrogatepass")
    return len(raw) - len(raw.translate(None, _CONTROL_BYTES))


def _may_be_mojibake(sample: str) -> bool:
    # The characters _MOJIBAKE starts with; `in` is a fast scan, the regex is not.
    return "Ã" in sample or "Â" in sample or "â" in sample


def _decode(content: bytes, declared: str | None) -> tuple[str | None, str, bool]:
    """(text, encoding, guessed): guessed when nothing declared the encoding and UTF-8 failed."""
    for bom, name in _BOMS:
        if content.startswith(bom):
            try:
                return content.decode(name), name, False
            except UnicodeDecodeError:
                break
    candidates: list[str] = []
    if declared:
        candidates.append(declared)
    m = _DECLARED.search(content[:4096])
    if m:
        candidates.append((m.group(1) or m.group(2)).decode("ascii", "replace"))
    candidates.append("utf-8")
    for name in candidates:
        try:
            return content.decode(name), codecs.lookup(name).name, False
        except (LookupError, UnicodeDecodeError):
            continue
    dammit = UnicodeDammit(content, is_html=True)
    if dammit.unicode_markup is None:
        return None, "", True
    return dammit.unicode_markup, dammit.original_encoding or "unknown", True
