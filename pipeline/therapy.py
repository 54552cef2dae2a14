"""Cell-therapy profile of a trial: what product, aimed at what, made how, dosed how.

Pure text analysis over what a trial page shows: intervention names and descriptions first,
then title, brief summary and detailed description as context.  One `TherapyProfile` per
intervention (modality "other" for lymphodepletion drugs and the like); a page that lists no
intervention but is plainly about a cell therapy gets one profile built from its title and
summary.

Dose numbers lose their superscripts on rendered pages: "1×107 cells/kg" means 1×10^7.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pipeline.eligibility.antigens import ANTIGEN_RE, canonical_antigen
from pipeline.models import Intervention

PROFILER_VERSION = "1"  # bump when profiles change, so stored rows can be traced to the code
MODALITIES: tuple[str, ...] = ("CAR-T", "CAR-NK", "NK", "TCR-T", "TIL", "other")
ESCALATION_DESIGNS: tuple[str, ...] = ("3+3", "accelerated_titration", "BOIN", "mTPI", "i3+3", "CRM")


@dataclass(frozen=True, slots=True)
class DoseLevel:
    level: int  # 1 = lowest dose
    value: float  # cells (per kg when per_kg)
    unit: str  # "cells/kg", "cells/m2" or "cells"
    per_kg: bool
    description: str  # the original text of the first mention


@dataclass(frozen=True, slots=True)
class TherapyProfile:
    intervention_type: str | None  # API v2 code as listed (DRUG, BIOLOGICAL...), None if synthesized
    intervention_name: str | None  # None when no intervention was listed
    modality: str  # one of MODALITIES
    targets: tuple[str, ...]  # canonical antigens, e.g. ("CD123",), ("CLEC12A", "CD33")
    cell_source: tuple[str, ...]  # autologous, allogeneic, cord blood, iPSC, peripheral blood, NK-92
    engineering: tuple[str, ...]  # 4-1BB, CD28, CD3zeta, IL-15, safety switch, gene editing, ...
    dose_levels: tuple[DoseLevel, ...]
    infusion_schedule: tuple[str, ...]  # ("D0", "D7")
    escalation_design: tuple[str, ...]  # subset of ESCALATION_DESIGNS in order of mention


# ---------------------------------------------------------------- modality
# Each modality's pattern as its branches, each with what a match needs: `words`, substrings
# every match contains, and `start`/`back`: if the branch matches anywhere, it matches
# starting at most `back` characters before an occurrence of `start` ("ccar", "car";
# "axicabtagene" also from the "i" before "cabtagene").  None: the branch starts with its own
# literal, which re finds quickly.
# A pattern that starts with \b is tried at every position of the text, and `\w+cabtagene`
# backtracks through every word: over a trial's summary and description (which are read
# when it lists no intervention) that cost more than the rest of the profile.  Testing the
# words with `in` and matching only where a start word occurs finds a match exactly when
# the whole pattern does (tests/test_therapy_gates.py); `_MODALITY_RES` keeps the patterns.
_Branch = tuple[tuple[str, ...], str | None, int, re.Pattern[str]]


def _branch(words: tuple[str, ...], start: str | None, back: int, pattern: str) -> _Branch:
    return words, start, back, re.compile(pattern)


_MODALITY_BRANCHES: tuple[tuple[str, tuple[_Branch, ...]], ...] = (
    ("CAR-NK", (
        _branch(("car", "nk"), "car", 1, r"\bc?car[\s-]*(?:engineered\s+|modified\s+|transduced\s+|expressing\s+)?nk\b"),
        _branch(("car", "nk"), "nk", 0, r"\bnk[\s-]*car\b"),
        _branch(("car", "nk"), "car", 1, r"\bc?car[\s-]*nk-?92"),
        _branch(("chimeric",), None, 0, r"chimeric\s+antigen\s+receptor[\s\S]{0,40}?(?:natural\s+killer|\bnk\b)"),
    )),
    ("CAR-T", (
        _branch(("car",), "car", 1, r"\bc?car[\s-]*t\b"),
        _branch(("car",), "car", 1, r"\bc?car[\s-]*(?:engineered\s+|modified\s+|transduced\s+)?t[\s-]*cells?"),
        _branch(("cart",), "cart", 1, r"\bu?cart\d*\b"),
        _branch(("chimeric",), None, 0, r"chimeric\s+antigen\s+receptor[\s\S]{0,40}?\bt[\s-]*(?:cell|lymphocyte)"),
        _branch(("cabtagene",), "cabtagene", 1, r"\w+cabtagene\b"),
    )),
    ("TCR-T", (
        _branch(("tcr",), "tcr", 0, r"\btcr[\s-]*t\b"),
        _branch(("tcr",), "tcr", 0, r"\btcr[\s-]*(?:engineered|modified|transduced|redirected)"),
        _branch(("receptor",), None, 0, r"t[\s-]*cell\s+receptor[\s-]*(?:engineered|modified|transduced|t\b)"),
    )),
    ("TIL", (
        _branch(("til",), "til", 0, r"\btils?\b"),
        _branch(("infiltrating",), None, 0, r"tumou?r[\s-]*infiltrating\s+lymphocytes?"),
        _branch(("lifileucel",), None, 0, r"lifileucel"),
    )),
    ("NK", (
        _branch(("nk",), "nk", 0, r"\bnk\b"),
        _branch(("natural",), None, 0, r"natural\s+killer"),
    )),
)
_MODALITY_RES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile("|".join(b[3].pattern for b in branches))) for name, branches in _MODALITY_BRANCHES)
# Words that make an NK mention a product rather than, say, "NK cell subtypes were observed".
_NK_PRODUCT_RE = re.compile(r"\bnk(?:\s+cells?)?\s+(?:therapy|infusion|injection|product)|natural\s+killer[\s\S]{0,30}?"
                            r"(?:therapy|infusion|injection|cells?\b)|\bnk-?92\b")


def _found(text: str, branch: _Branch) -> bool:
    """Whether `branch`'s pattern matches somewhere in `text` (see _MODALITY_BRANCHES)."""
    words, start, back, rx = branch
    if not all(w in text for w in words):
        return False
    if start is None:
        return rx.search(text) is not None
    i = text.find(start)
    while i >= 0:
        for pos in range(max(0, i - back), i + 1):
            if rx.match(text, pos) is not None:  # (match at pos still sees the text before it, for \b)
                return True
        i = text.find(start, i + 1)
    return False


def _modality(text: str, *, context: bool = False) -> str:
    """Modality named in `text`; in page context (not an intervention) an NK mention must read
    as a product ("NK cell therapy"), not as biology ("NK cell subtypes were observed")."""
    for name, branches in _MODALITY_BRANCHES:
        if any(_found(text, b) for b in branches):
            if name == "NK" and context and not _NK_PRODUCT_RE.search(text):
                continue
            return name
    return "other"


# Approved and late-stage products are often listed by name alone (all are autologous).
_PRODUCTS: tuple[tuple[re.Pattern[str], str, tuple[str, ...], tuple[str, ...]], ...] = tuple(
    (re.compile(pat), mod, targets, eng) for pat, mod, targets, eng in (
        (r"tisagenlecleucel|kymriah", "CAR-T", ("CD19",), ("4-1BB",)),
        (r"axicabtagene|yescarta", "CAR-T", ("CD19",), ("CD28",)),
        (r"brexucabtagene|tecartus", "CAR-T", ("CD19",), ("CD28",)),
        (r"lisocabtagene|breyanzi", "CAR-T", ("CD19",), ("4-1BB",)),
        (r"obecabtagene|aucatzyl", "CAR-T", ("CD19",), ("4-1BB",)),
        (r"relmacabtagene|inaticabtagene", "CAR-T", ("CD19",), ("4-1BB",)),
        (r"idecabtagene|abecma", "CAR-T", ("BCMA",), ("4-1BB",)),
        (r"ciltacabtagene|carvykti", "CAR-T", ("BCMA",), ("4-1BB",)),
        (r"equecabtagene|zevorcabtagene", "CAR-T", ("BCMA",), ("4-1BB",)),
        (r"lifileucel|amtagvi", "TIL", (), ()),
        (r"afamitresgene|tecelra", "TCR-T", ("MAGE-A4",), ()),
    )
)


# ---------------------------------------------------------------- targets
_LIGAND_TARGETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ligand-based CARs are named after the ligand, not the antigen they bind
    (re.compile(r"\bil-?3\b(?:\s*(?:ligand|zetakine))?"), "CD123"),
    (re.compile(r"\bnkg2d\b(?!\s*(?:ligands?|l)\b)"), "NKG2DL"),
    (re.compile(r"\bapril\b"), "BCMA"),
    (re.compile(r"\bil-?13\s*(?:mutein|zetakine)"), "IL13RA2"),
)
_TARGET_CONTEXT_RE = re.compile(
    r"(?:anti-?\s*(?:human\s+)?|targeting\s+|targeted\s+(?:at|to)\s+|directed\s+(?:against|at)\s+|specific\s+(?:for|to)\s+)"
    r"(?P<a>(?:[\w.\-]+)(?:\s*(?:,|or|and|/)\s*[\w.\-]+)*)"
    r"|(?P<b>[\w.\-]+)(?:\s*/\s*[\w.\-]+)?[\s-]*(?:targeted|targeting|directed|specific|redirected)?[\s-]*"
    r"(?:c?car\b|c?car[\s-]*(?:t|nk)|chimeric)"
    r"|\bu?c?car[\s-]*(?:t|nk)?[\s-]*(?:cells?[\s-]*)?(?P<c>[\w.\-]+)"
)


def _antigens(text: str) -> list[str]:
    out: list[str] = []
    for m in ANTIGEN_RE.finditer(text):
        a = canonical_antigen(m.group())
        if a not in out:
            out.append(a)
    return out


def _targets(text: str) -> list[str]:
    """Antigens written as what the product is aimed at ("anti-CD123 CAR", "CAR-NK-CD19", "IL3 CAR")."""
    found: list[tuple[int, str]] = []
    for m in _TARGET_CONTEXT_RE.finditer(text):
        g = next(k for k in ("a", "b", "c") if m.group(k))
        chunk = m.group(g)
        for am in ANTIGEN_RE.finditer(chunk):
            found.append((m.start(g) + am.start(), canonical_antigen(am.group())))
        for rx, target in _LIGAND_TARGETS:
            lm = rx.search(chunk)
            if lm:
                found.append((m.start(g) + lm.start(), target))
    out: list[str] = []
    for _, a in sorted(found):
        if a not in out:
            out.append(a)
    return out


# ---------------------------------------------------------------- source and engineering
# A page also talks about the patient's history ("prior allogeneic transplantation") and about
# biology ("NK cell subtypes in peripheral blood"); only product wording counts as a source.
_TRANSPLANT_AFTER = r"(?![\s-]+(?:hematopoietic\s+|haematopoietic\s+)?(?:stem\s+cells?|bone\s+marrow|hsct|sct|transplant))"
_SOURCES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("autologous", re.compile(r"\bautologous\b" + _TRANSPLANT_AFTER + r"|patient[\s-]derived")),
    ("allogeneic", re.compile(r"\ballogeneic\b" + _TRANSPLANT_AFTER + r"|\bhaplo-?identical\b|off[\s-]the[\s-]shelf|"
                              r"\buniversal\s+car|\bucart|healthy\s+donors?|donor[\s-]derived|third[\s-]party")),
    ("cord blood", re.compile(r"cord[\s-]*blood|\bucb\b|umbilical")),
    ("iPSC", re.compile(r"\bipsc|induced\s+pluripotent")),
    ("peripheral blood", re.compile(
        r"peripheral[\s-]*blood(?:[\s-]+derived)?[\s-]+(?:mononuclear\s+cells|nk|natural\s+killer|t[\s-]*cells|"
        r"lymphocytes)|\bpbmcs?\b|\bpb[\s-]?nk\b|(?:derived|isolated|collected|expanded|obtained)\s+from\s+(?:the\s+)?"
        r"(?:patients?'?s?\s+|donors?'?s?\s+)?peripheral\s+blood")),
    ("NK-92", re.compile(r"\bnk-?92")),
)
_ENGINEERING: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("4-1BB", re.compile(r"4-?1bb|\bcd137\b")),
    ("CD28", re.compile(r"\bcd28\b")),
    ("CD3zeta", re.compile(r"cd3\s*(?:ζ|zeta|z\b)")),
    ("OX40", re.compile(r"\box40\b|\bcd134\b")),
    ("ICOS", re.compile(r"\bicos\b")),
    ("DAP10", re.compile(r"\bdap-?10\b")),
    ("DAP12", re.compile(r"\bdap-?12\b")),
    ("2B4", re.compile(r"\b2b4\b|\bcd244\b")),
    ("IL-15", re.compile(r"\bil-?15\b|interleukin[\s-]*15\b")),
    ("IL-12", re.compile(r"\bil-?12\b|interleukin[\s-]*12\b")),
    ("IL-18", re.compile(r"\bil-?18\b")),
    ("IL-7/CCL19", re.compile(r"\bil-?7\b.{0,20}ccl-?19|\bccl-?19\b")),
    ("safety switch", re.compile(r"icasp(?:ase)?-?9|inducible\s+caspase|suicide\s+(?:gene|switch)|\begfrt\b|"
                                 r"truncated\s+egfr|safety\s+switch")),
    ("gene editing", re.compile(r"crispr|\btalen|gene[\s-]*edit|knock[\s-]*out|\bko\b")),
    ("bispecific", re.compile(r"bispecific|bi-specific|tandem\s+car|dual[\s-]*target")),
)


# ---------------------------------------------------------------- doses
_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻", "0123456789+-")
_SCI_RE = re.compile(
    r"(?P<m>\d+(?:\.\d+)?)\s*(?:x|×|\*|✕)\s*10\s*(?:\^|e|\*\*)?\s*(?P<e>\d{1,2})(?!\d)"
    r"|(?P<m2>\d+(?:\.\d+)?)\s*e\+?(?P<e2>\d{1,2})\b"
    r"|(?P<m3>\d+(?:\.\d+)?)\s*(?P<w>million|billion)\b",
    re.IGNORECASE,
)
# What may stand between a number and "cells": "CAR-positive", "CAR+ NK", "viable", ...
_CELL_UNIT_RE = re.compile(
    r"\s*(?:(?:car|car-?positive|car\+|positive|car-?t|car-?nk|nk|t|viable|transduced|total|nucleated|"
    r"cd3\+|engineered|modified|[a-z]*-?cd\d+)[\s-]*){0,4}"
    r"cells?\b(?P<per>\s*(?:/|per)\s*(?:kg|kilogram|m2|m\^2|m²)\b)?",
    re.IGNORECASE,
)
_LIST_GLUE_RE = re.compile(r"\s*(?:,\s*(?:and|or)?|and|or|to|-)\s*", re.IGNORECASE)


def _sci_value(m: re.Match[str]) -> float:
    if m.group("m") is not None:
        return float(m.group("m")) * 10 ** int(m.group("e"))
    if m.group("m2") is not None:
        return float(m.group("m2")) * 10 ** int(m.group("e2"))
    return float(m.group("m3")) * (1e6 if m.group("w").lower() == "million" else 1e9)


def dose_levels(text: str | None) -> tuple[DoseLevel, ...]:
    """Distinct cell doses named in `text`, lowest first ("1×107 CAR-positive cells/kg" = 1e7 cells/kg)."""
    if not text:
        return ()
    text = text.translate(_SUPERSCRIPT)
    matches = list(_SCI_RE.finditer(text))
    # A number without its own unit takes the unit of the next number in the same list:
    # "2.0 × 107 and 3.0 × 107 CAR positive NK cells/kg".
    units: list[tuple[str, bool, int] | None] = [None] * len(matches)
    for i in range(len(matches) - 1, -1, -1):
        um = _CELL_UNIT_RE.match(text, matches[i].end())
        if um:
            per = (um.group("per") or "").lower()
            unit = "cells/kg" if "k" in per else ("cells/m2" if "m" in per else "cells")
            units[i] = (unit, unit == "cells/kg", um.end())
        elif i + 1 < len(matches) and units[i + 1] is not None \
                and _LIST_GLUE_RE.fullmatch(text, matches[i].end(), matches[i + 1].start()):
            units[i] = (units[i + 1][0], units[i + 1][1], matches[i].end())
    seen: dict[tuple[float, str], DoseLevel] = {}
    for m, u in zip(matches, units):
        if u is None:
            continue
        value = _sci_value(m)
        if not 1e3 <= value <= 1e12:
            continue
        key = (round(value, 6), u[0])
        if key not in seen:
            seen[key] = DoseLevel(0, value, u[0], u[1], " ".join(text[m.start():u[2]].split()))
    ordered = sorted(seen.values(), key=lambda d: (d.unit, d.value))
    return tuple(DoseLevel(i + 1, d.value, d.unit, d.per_kg, d.description) for i, d in enumerate(ordered))


# ---------------------------------------------------------------- schedule and design
_SENTENCE_RE = re.compile(r"[^.;]*(?:[.;]|$)")
_INFUSION_WORDS_RE = re.compile(r"infus|administ|dosing|\bdoses?\b|injection|receive", re.IGNORECASE)
_DCODE_RE = re.compile(r"(?<![A-Za-z])D(\d{1,3})\b")
_DAYS_RE = re.compile(r"\bdays?\s*(\d{1,3}(?:\s*(?:,|and|&|or)\s*\d{1,3})*)", re.IGNORECASE)


def infusion_schedule(text: str | None) -> tuple[str, ...]:
    """Infusion days ("D0", "D7") named in sentences about infusing or dosing; lymphodepletion
    days (negative) are not infusions."""
    if not text:
        return ()
    days: list[int] = []
    for sm in _SENTENCE_RE.finditer(text):
        sentence = sm.group()
        if not _INFUSION_WORDS_RE.search(sentence):
            continue
        for m in _DCODE_RE.finditer(sentence):
            days.append(int(m.group(1)))
        for m in _DAYS_RE.finditer(sentence):
            before = sentence[max(0, m.start() - 2):m.start()]
            if "-" in before or "~" in sentence[m.end():m.end() + 2]:
                continue  # "(-10~-5 days)", "1-720 days": ranges, not infusion days
            if re.match(r"\s*(?:-|~|to)\s*\d", sentence[m.end():]):
                continue
            days.extend(int(d) for d in re.findall(r"\d+", m.group(1)))
    return tuple(f"D{d}" for d in sorted(set(days)))


_DESIGN_RES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("i3+3", re.compile(r"\bi3\s*\+\s*3\b", re.IGNORECASE)),
    ("3+3", re.compile(r"(?<![i\d])\b3\s*\+\s*3\b|three[\s-]+plus[\s-]+three|traditional\s+3\s*\+\s*3", re.IGNORECASE)),
    ("accelerated_titration", re.compile(r"accelerated[\s-]+titration", re.IGNORECASE)),
    ("BOIN", re.compile(r"\bboin\b|bayesian\s+optimal\s+interval", re.IGNORECASE)),
    ("mTPI", re.compile(r"\bmtpi(?:-?2)?\b|modified\s+toxicity\s+probability\s+interval", re.IGNORECASE)),
    ("CRM", re.compile(r"\bcrm\b|continual\s+reassessment", re.IGNORECASE)),
)


def escalation_design(text: str | None) -> tuple[str, ...]:
    """Dose-escalation designs named in `text`, in order of first mention."""
    if not text:
        return ()
    hits = []
    for name, rx in _DESIGN_RES:
        m = rx.search(text)
        if m:
            hits.append((m.start(), name))
    return tuple(name for _, name in sorted(hits))


# ---------------------------------------------------------------- profiles
InterventionLike = Intervention | tuple[str | None, str, str | None]


def _unpack(iv: InterventionLike) -> tuple[str | None, str, str | None]:
    if isinstance(iv, Intervention):
        return iv.intervention_type, iv.name, iv.description
    t, name, *rest = iv
    return t, name, (rest[0] if rest else None)


def _join(*parts: str | None) -> str:
    return " \n ".join(p for p in parts if p)


def profile_interventions(
    interventions: Iterable[InterventionLike],
    title: str | None = None,
    summary: str | None = None,
    description: str | None = None,
) -> tuple[TherapyProfile, ...]:
    """One profile per intervention (or one synthesized from the text when none is listed)."""
    ivs: list[tuple[str | None, str | None, str | None]] = [_unpack(iv) for iv in interventions]
    context = _join(title, summary, description)
    context_low = context.lower()
    if not ivs:
        for text in (title, summary, description):
            if text and _modality(text.lower(), context=True) != "other":
                ivs = [(None, None, None)]
                break
    cell_idx = []
    modalities = []
    for t, name, desc in ivs:
        own = _join(name, desc).lower()
        mod = _modality(own) if own else "other"
        if mod == "other" and own:
            mod = next((p[1] for p in _PRODUCTS if p[0].search(own)), "other")
        if own == "":
            for text in (title, summary, description):
                if text and (mod := _modality(text.lower(), context=True)) != "other":
                    break
        modalities.append(mod)
        if mod != "other":
            cell_idx.append(len(modalities) - 1)
    trial_doses: tuple[DoseLevel, ...] = ()
    schedule: tuple[str, ...] = ()
    design: tuple[str, ...] = ()
    if cell_idx:  # the trial-wide readings only serve cell-therapy profiles: most trials have none
        trial_doses = dose_levels(context)
        schedule = infusion_schedule(context)
        design = escalation_design(context)
    out: list[TherapyProfile] = []
    for i, ((t, name, desc), mod) in enumerate(zip(ivs, modalities)):
        own = _join(name, desc).lower()
        if mod == "other":
            out.append(TherapyProfile(t, name, "other", tuple(_targets(own)) if own else (), (), (), (), (), ()))
            continue
        product = next((p for p in _PRODUCTS if own and p[0].search(own)), None)
        targets = _targets(own) if own else []
        if not targets and product:
            targets = list(product[2])
        if not targets:
            for text in (title, summary, description):
                if text and (targets := _targets(text.lower())):
                    break
        if not targets:
            targets = _antigens(own) or _antigens((title or "").lower())
        sources = [s for s, rx in _SOURCES if rx.search(own) or rx.search(context_low)]
        engineering = [e for e, rx in _ENGINEERING if rx.search(own) or rx.search(context_low)
                       or (product is not None and e in product[3])]
        if product is not None and "autologous" not in sources and "allogeneic" not in sources:
            sources.insert(0, "autologous")  # every listed product is made from the patient's own cells
        doses = dose_levels(desc)
        if not doses and (len(cell_idx) == 1 or i == cell_idx[0]):
            doses = trial_doses
        out.append(TherapyProfile(
            intervention_type=t, intervention_name=name, modality=mod, targets=tuple(targets),
            cell_source=tuple(sources), engineering=tuple(engineering), dose_levels=doses,
            infusion_schedule=infusion_schedule(desc) or schedule, escalation_design=escalation_design(desc) or design,
        ))
    return tuple(out)


def profile_record(record: object) -> tuple[TherapyProfile, ...]:
    """`profile_interventions` for a `TrialRecord` (title = brief title, else official title)."""
    ivs: Sequence[Intervention] = getattr(record, "interventions", ())
    return profile_interventions(
        ivs,
        getattr(record, "brief_title", None) or getattr(record, "official_title", None),
        getattr(record, "brief_summary", None),
        getattr(record, "detailed_description", None),
    )
