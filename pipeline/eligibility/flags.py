"""Exclusion flags: does this criterion keep out patients with X?

An exclusion item that names X excludes it ("Pregnant or breastfeeding women").  An
inclusion item excludes X only when it requires its absence ("Negative HIV test", "Not
pregnant", "No active infection in the lungs").  Mentions that merely time a prior exposure
("CAR-T therapy within 6 months") are washouts, not lifelong exclusions, so they do not
raise the prior-therapy flags.
"""

from __future__ import annotations

import re

from pipeline.eligibility._text import matches_at, occurrences, trie_pattern

_NEG_BEFORE = r"\b(?:no|not|non|negative|without|nor|free\s+of|refrain\s+from|absence\s+of)\b[\s\-]*(?:[\w,()/.\-]+\s+){0,14}?"

_FLAG_SPECS: tuple[tuple[str, tuple[str, ...], str, str | None, str | None], ...] = (
    # (flag, cheap keywords, mention regex,
    #  ignore if the text just before the mention matches, ignore if the text around it matches)
    ("pregnancy_or_breastfeeding", ("pregnan", "breast", "lactat", "nursing", "puerper", "hcg"),
     r"pregnan\w*|breast[\s-]?fe(?:e)?d\w*|lactat(?:ing|ion)\b|\bnursing\b(?!\s+(?:home|facilit|staff|care))|"
     r"puerper\w*|(?:β|beta)-?hcg",
     r"exposure[^;]{0,110}$|during\s+(?:the\s+|their\s+)?$|termination\s+of\s+$|trimester",
     r"^pregnant\s+(?:women|patients|participants)\s+(?:without|who\s+(?:do|did|are)\s+not)|^\w+\s+trimester"),
    ("hiv", ("hiv", "hlv", "h1v", "immunodeficiency"),
     r"\bh[il1]v\b|human\s+immuno-?deficiency\s+virus|hiv-aids",
     r"anti[\s-]?$", r"^[^;.]{0,30}?\b(?:status|transmission)\b"),
    ("active_hepatitis_b", ("hepatitis", "hbv", "hbs", "hbc"),
     r"hepatitis\s*b\b|\bhbv\b|\bhbs\s*ag\b|\bhbsag\b|\bhbcab\b|\bhbc\s*ab\b",
     None, r"vaccin"),
    ("active_hepatitis_c", ("hepatitis", "hcv"),
     r"hepatitis\s*(?:b\s*(?:\(\s*hbv\s*\)\s*)?(?:or|and|/|,)\s*(?:hepatitis\s*)?)?c\b|\bhcv\b|anti-?hcv|\bhcvab\b",
     None, None),
    ("active_cns_involvement", ("cns", "central nervous", "brain", "meningeal", "intracranial"),
     r"(?:\bcns\b|central\s+nervous\s+system)(?:\s*\(\s*cns\s*\))?\s+(?:involvement|invasion|infiltration|"
     r"leuka?emia|lymphoma|metasta\w*|relapse|disease\s+involvement|tumou?rs?|malignanc\w*)|"
     r"brain\s+metasta\w*|leptomeningeal|meningeal\s+(?:leuka?emia|metasta\w*|carcinomatosis)|"
     r"intracranial\s+metasta\w*|\bcns\s*(?:[23]\b|positive)",
     None, None),
    ("prior_allogeneic_transplant", ("transplant", "hsct", "allo", "sct", "bmt"),
     r"allo(?:geneic)?[\s-]*(?:hematopoietic\s+|haematopoietic\s+)?(?:stem\s+cell|bone\s+marrow|hsct|sct|bmt)|"
     r"allo(?:geneic)?[\s-]*transplant\w*|(?:stem\s+cell|hematopoietic|haematopoietic|bone\s+marrow)\s+"
     r"(?:cell\s+)?transplant\w*|\bhsct\b",
     r"autologous[\s\w-]{0,20}$|organ\s+$", None),
    ("prior_car_t_or_gene_modified_cell_therapy", ("car", "chimeric", "genetically", "gene", "tcr"),
     r"\bcar[\s-]?(?:t|nk)\b|chimeric\s+antigen\s+receptor|genetically[\s-]+(?:modified|engineered)|"
     r"gene[\s-]+(?:modified|engineered)|\btcr[\s-]?t\b",
     r"(?:prior\s+to|before|after|following|receiving)\s+(?:the\s+|first\s+)?(?:\w+\s+){0,2}$", None),
    ("uncontrolled_infection", ("infection",),
     r"\b(?:active|uncontrolled|acute|severe|serious|ongoing|persistent|systemic|current)\b"
     r"(?:[\s,/]+(?:\w+)){0,6}?[\s,/]+infections?\b",
     None, None),
)
_PATHOGEN_RE = re.compile(r"hepatitis|\bhbv\b|\bhcv\b|\bh[il1]v\b|tubercul|\btb\b|sars|covid|coronavirus|"
                          r"respiratory\s+syndrome")
_INF_AFTER_RE = re.compile(r"^\s+(?:of|with|by|due\s+to)\s+(?:the\s+)?(?:hepatitis|hbv|hcv|hiv|sars|covid|tuberc)")
_COMPILED = tuple(
    (flag, kws, re.compile(pat), re.compile(ib) if ib else None, re.compile(ia) if ia else None)
    for flag, kws, pat, ib, ia in _FLAG_SPECS
)
# A prefix trie: the same keywords as a longest-first alternation, found faster.
_KW_RE = re.compile(trie_pattern(sorted({k for _, kws, _, _, _ in _FLAG_SPECS for k in kws}), literal_spaces=True))
_NEG_RES = {flag: re.compile(_NEG_BEFORE + r"(?:" + pat + r")") for flag, _, pat, _, _ in _FLAG_SPECS}
_DIRECT_NEG_RE = re.compile(r"(?:\bnot\s+(?:be\s+|a\s+)?|\bnon-?\s*)$")
_TEST_NEGATIVE_RE = re.compile(
    r"(?:pregnan\w*|h[il1]v|hepatitis\s*[bc]|hbv|hcv|hbsag|hbcab)[^.;]{0,60}?\b(?:are|is|be|was|were)\s+negative"
    r"|(?:pregnan\w*|h[il1]v)[\s\-]*(?:\w+[\s\-]+){0,2}(?:negative|seronegative)"
)
# Literals every match of a flag's mention regex starts with: the regex is tried only where
# they occur (`matches_at`; `str.find` costs a fraction of a regex scan per character).
_MENTION_STARTS: dict[str, tuple[str, ...]] = {
    "pregnancy_or_breastfeeding": ("pregnan", "breast", "lactat", "nursing", "puerper", "β", "beta"),
    "hiv": ("hiv", "hlv", "h1v", "human"),
    "active_hepatitis_b": ("hepatitis", "hbv", "hbs", "hbc"),
    "active_hepatitis_c": ("hepatitis", "hcv", "anti"),
    "active_cns_involvement": ("cns", "central", "brain", "leptomeningeal", "meningeal", "intracranial"),
    "prior_allogeneic_transplant": ("allo", "stem", "hematopoietic", "haematopoietic", "bone", "hsct"),
    "prior_car_t_or_gene_modified_cell_therapy": ("car", "chimeric", "gene", "tcr"),
    "uncontrolled_infection": ("active", "uncontrolled", "acute", "severe", "serious", "ongoing", "persistent",
                               "systemic", "current"),
}
assert set(_MENTION_STARTS) == {flag for flag, *_ in _FLAG_SPECS}
# keywords present -> the flags to test, with their start literals (few combinations repeat)
_Step = tuple[str, re.Pattern[str], re.Pattern[str] | None, re.Pattern[str] | None, tuple[str, ...]]
_PLANS: dict[frozenset[str], tuple[_Step, ...]] = {}


def _plan(present: frozenset[str]) -> tuple[_Step, ...]:
    plan = tuple((flag, rx, ib, ia, _MENTION_STARTS[flag]) for flag, kws, rx, ib, ia in _COMPILED
                 if not present.isdisjoint(kws))
    if len(_PLANS) >= 10_000:
        _PLANS.clear()
    _PLANS[present] = plan
    return plan


_TIMED_RE = re.compile(r"\bwithin\s+(?:the\s+)?(?:(?:last|past|previous)\s+)?\d|\bin\s+the\s+(?:last|past)\s+\d")


def item_flags(criterion_type: str, text: str) -> tuple[str, ...]:
    """Flags raised by one criterion item (lower-cased/normalized text expected)."""
    out: list[str] = []
    present = frozenset(_KW_RE.findall(text))
    if not present:
        return ()
    plan = _PLANS.get(present)
    if plan is None:
        plan = _plan(present)
    for flag, rx, ign_before, ign_around, starts in plan:
        positions = occurrences(text, starts)
        if not positions:
            continue  # no match can start anywhere
        hit = False
        for m in matches_at(rx, text, positions):  # (every match starts with a start literal)
            before = text[max(0, m.start() - 120):m.start()]
            after = text[m.end():m.end() + 40]
            if ign_before is not None and ign_before.search(before):
                continue
            if ign_around is not None and ign_around.search(text[m.start():m.end() + 25]):
                continue
            if flag == "uncontrolled_infection" and (_PATHOGEN_RE.search(m.group()) or _INF_AFTER_RE.match(after)):
                continue
            if flag in ("prior_car_t_or_gene_modified_cell_therapy", "prior_allogeneic_transplant") \
                    and _TIMED_RE.search(text[m.end():m.end() + 120]):
                continue  # time-limited: a washout, not a lifelong exclusion
            if criterion_type == "exclusion":
                if _DIRECT_NEG_RE.search(before):
                    continue  # "Not pregnant" listed as an exclusion excludes the opposite
                hit = True
                break
            # inclusion: only a required absence counts
            window = text[max(0, m.start() - 120):m.end()]
            if _NEG_RES[flag].search(window) or _TEST_NEGATIVE_RE.search(text[m.start():m.end() + 80]):
                hit = True
                break
        if hit:
            out.append(flag)
    return tuple(out)
