"""Exact keys of a record: NCT IDs, registry ids, the sponsor's own id, site ids.

Only ids that name exactly one trial are keys.  Secondary ids that are not registry
numbers (grant numbers, IRB/FWA numbers, "IND 28299") are shared by many studies of a
sponsor, so they never link on their own.
"""

from __future__ import annotations

import re

from rapidfuzz.utils import default_process

from pipeline.extract.fields import find_nct_ids
from pipeline.models import TrialRecord

# Identifier types naming NCT IDs CT.gov retired into the record's own (nct_id_alias).
ALIAS_ID_TYPES = frozenset({"nct_alias", "nct_id_alias", "alias"})

# Registry numbers, matched on the upper-cased value: (registry, pattern); the key is
# registry + the match (separators dropped where registries print them inconsistently).
# One alternation, tried in this order at each position: an EU CT number starts like a
# EudraCT number, so it comes first.
_REGISTRIES: tuple[tuple[str, str], ...] = (
    ("euct", r"(?<![\d-])20\d{2}-5\d{5}-\d{2}-\d{2}(?!\d)"),
    ("eudract", r"(?<![\d-])(?:19|20)\d{2}-\d{6}-\d{2}(?!\d)"),
    ("idrcb", r"(?<![\d-])20\d{2}-A\d{5}-\d{2}(?!\d)"),
    ("chictr", r"CHICTR[-\s]?(?:[A-Z]{2,4}[-\s]?)?\d{6,}"),
    ("isrctn", r"ISRCTN\s?\d{8}"),
    ("actrn", r"ACTRN\s?\d{14}"),
    ("drks", r"DRKS\s?\d{8}"),
    ("ctri", r"CTRI/\d{4}/\d{2,3}/\d{5,6}"),
    ("jrct", r"JRCT[A-Z]?\d{9,10}"),
    ("japic", r"JAPICCTI-?\d{6}"),
    ("umin", r"UMIN\s?\d{9}"),
    ("irct", r"IRCT\d{6,}N\d{1,3}"),
    ("kct", r"KCT\d{7}"),
    ("pactr", r"PACTR\d{15}"),
    ("tctr", r"TCTR\d{11}"),
    ("slctr", r"SLCTR/\d{4}/\d{3}"),
    ("rbr", r"RBR-[0-9A-Z]{6,8}"),
    ("rpcec", r"RPCEC\d{8}"),
    ("lbctr", r"LBCTR\d{10}"),
    ("ntr", r"(?<![A-Z])NTR\d{3,5}(?!\d)"),
    ("utn", r"(?<![\dA-Z])U\d{4}-\d{4}-\d{4}(?!\d)"),
)
_REGISTRY = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _REGISTRIES))
_KEEP_SEPARATORS = frozenset({"eudract", "euct", "idrcb", "utn"})
_SEPARATORS = re.compile(r"[\s/-]+")
_CANONICAL_NCT = re.compile(r"NCT\d{8}")

# Legal-form and filler words dropped from sponsor names; abbreviations mirrors use.
_SPONSOR_DROP = frozenset(
    "the inc incorporated ltd limited llc co corp corporation company plc sa ag bv nv srl spa"
    " pty kk lp gmbh ab as oy sas".split()
)
_SPONSOR_ABBREV = {
    "univ": "university", "hosp": "hospital", "inst": "institute", "ctr": "center",
    "centre": "center", "natl": "national", "intl": "international", "dept": "department",
    "pharm": "pharmaceutical", "pharmaceuticals": "pharmaceutical", "labs": "laboratories",
    "med": "medical", "coll": "college", "res": "research", "fdn": "foundation", "and": "",
}


def process(text: str | None) -> str:
    """Lower case, punctuation -> space, whitespace collapsed."""
    if not text:
        return ""
    return " ".join(default_process(text).split())


def normalize_sponsor(text: str | None) -> str:
    """'Zhejiang Univ., Inc.' -> 'zhejiang university'."""
    out = []
    for word in process(text).split():
        if word in _SPONSOR_DROP:
            continue
        word = _SPONSOR_ABBREV.get(word, word)
        if word:
            out.append(word)
    return " ".join(out)


def normalize_local_id(text: str | None) -> str:
    """A sponsor's or site's id compared without case and separators: 'CD123-001' -> 'cd123001'."""
    return "".join(process(text).split())


def registry_ids(text: str | None) -> list[str]:
    """Registry numbers in `text` as keys: '2020-001234-56' -> 'eudract:2020-001234-56'."""
    if not text:
        return []
    out: list[str] = []
    for m in _REGISTRY.finditer(text.upper()):
        name = m.lastgroup or ""
        value = m.group(0) if name in _KEEP_SEPARATORS else _SEPARATORS.sub("", m.group(0))
        key = f"{name}:{value}"
        if key not in out:
            out.append(key)
    return out


def record_ncts(record: TrialRecord, url: str | None = None) -> tuple[str | None, tuple[str, ...]]:
    """(the record's NCT ID, its alias NCT IDs).

    The NCT ID comes from the nct_id field, else an identifier of type 'nct', else the page
    URL.  Aliases are NCT IDs CT.gov retired into this one (identifier types `nct_alias`...).
    """
    primary: str | None = None
    if record.nct_id:
        if _CANONICAL_NCT.fullmatch(record.nct_id):
            primary = record.nct_id  # the usual case, without the forgiving search
        else:
            found = find_nct_ids(record.nct_id)
            primary = found[0] if found else None
    aliases: list[str] = []
    for ident in record.identifiers:
        kind = ident.id_type.lower()
        if kind == "nct" and primary is None:
            found = find_nct_ids(ident.id_value)
            if found:
                primary = found[0]
        elif kind in ALIAS_ID_TYPES:
            aliases.extend(n for n in find_nct_ids(ident.id_value) if n not in aliases)
    if primary is None and url:
        found = find_nct_ids(url)
        if found:
            primary = found[0]
    return primary, tuple(a for a in aliases if a != primary)


def record_keys(record: TrialRecord, sponsor: str) -> list[tuple[str, str]]:
    """(method, key) pairs besides the NCT ID: registry ids, sponsor's ids, site ids."""
    out: list[tuple[str, str]] = []
    for ident in record.identifiers:
        kind = ident.id_type.lower()
        if kind == "nct" or kind in ALIAS_ID_TYPES:
            continue
        if kind in ("secondary", "org_study_id"):
            for reg in registry_ids(ident.id_value):
                out.append(("secondary_id", reg))
            if kind == "org_study_id" and sponsor:
                local = normalize_local_id(ident.id_value)
                if local:
                    out.append(("org_id", f"org:{sponsor}|{local}"))
            continue
        local = normalize_local_id(ident.id_value)
        if local:
            out.append(("url", f"site:{kind}:{local}"))
    seen: set[str] = set()
    unique = []
    for method, key in out:
        if key not in seen:
            seen.add(key)
            unique.append((method, key))
    return unique


def org_ids(record: TrialRecord) -> list[str]:
    return [
        normalize_local_id(i.id_value) for i in record.identifiers
        if i.id_type.lower() == "org_study_id" and normalize_local_id(i.id_value)
    ]
