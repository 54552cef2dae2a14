"""A synthetic ClinicalTrials.gov-sized corpus for `make bench`.

Rendering a page (pipeline.devtools.render) costs ~10 ms, far too much for 200,000 pages, so
the corpus is built in two steps:

1. A pool of *base* pages: each base record is one real record of `../shared/corpus/ctgov/`
   grown with the criteria, locations, conditions and description of two other records (so
   pages are ~60 KB and content varies: criteria mixes, nesting, site lists), its NCT ID
   and a title/org-id token replaced by placeholders.  Each base is rendered on both sites,
   in the markup variant `base % 3 + 1`, NCT ID shown or not by the fixtures' policy.
2. Trial `i` takes base `i % bases` and replaces the placeholders with its own NCT ID and
   token: every trial is distinct (NCT ID, title, org study id, URL), on both sites.

Deterministic: the same arguments give the same bytes.  Pages are written to a raw store
(`<root>/<source>/objects/..`, the crawler's layout) plus a manifest (Parquet: url, source,
content_sha256, fetched_at) standing in for the crawl log, or returned in memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.dedup.keys import registry_ids
from pipeline.ingest import raw_page_from_bytes
from pipeline.models import Criterion, Identifier, RawPage, TrialRecord
from pipeline.parse_batches import PageRef

NCT_PLACEHOLDER = "NCT08888888"
TOKEN_PLACEHOLDER = "4242424242"
SITES = ("veeva", "clinconnect")
BASE_FETCHED_AT = dt.datetime(2026, 1, 1)

MANIFEST_SCHEMA = pa.schema([
    ("url", pa.string()), ("source", pa.string()), ("content_sha256", pa.string()),
    ("fetched_at", pa.timestamp("us")),
])


@dataclass(frozen=True, slots=True)
class BasePage:
    site: str
    html: str
    url: str  # with placeholders


def nct_for(i: int) -> str:
    return f"NCT8{i:07d}"


def _renumber(criteria: Sequence[Criterion], offset: dict[str, int]) -> list[Criterion]:
    out = []
    for c in criteria:
        base = offset.get(c.criterion_type, 0)
        parent = c.parent_ordinal + base if c.parent_ordinal is not None else None
        out.append(dataclasses.replace(c, ordinal=c.ordinal + base, parent_ordinal=parent))
    return out


# Registry numbers shaped to hold a trial's 10-digit token (dedup.keys' patterns).
_TOKEN_REGISTRY_IDS = (
    f"ChiCTR{TOKEN_PLACEHOLDER}", f"jRCT{TOKEN_PLACEHOLDER}", f"LBCTR{TOKEN_PLACEHOLDER}",
    f"IRCT{TOKEN_PLACEHOLDER}N1", f"ACTRN1{TOKEN_PLACEHOLDER}001", f"PACTR10001{TOKEN_PLACEHOLDER}",
)


def _own_secondary_id(ident: Identifier, n: int) -> Identifier:
    """The base's secondary id made the generated trial's own.

    Every generated trial is a different trial, so none of its registry numbers may repeat
    on the base's other copies: shared ones made dedup merge (correctly, given the pages)
    the ~330 copies of a base that hide their NCT id into one trial.  Suffixing the id is
    not enough, since dedup reads the registry number inside it, so a registry number is
    replaced by another registry's number built around the trial's token; other ids
    (grant numbers and the like, never keys) just carry the token.
    """
    if registry_ids(ident.id_value):
        return Identifier(ident.id_type, _TOKEN_REGISTRY_IDS[n % len(_TOKEN_REGISTRY_IDS)])
    return Identifier(ident.id_type, f"{ident.id_value}-{TOKEN_PLACEHOLDER}")


def grow(a: TrialRecord, b: TrialRecord, c: TrialRecord, sites: TrialRecord | None = None) -> TrialRecord:
    """`a` with the criteria of `b` and `c` appended, their sites and more text."""
    offset: dict[str, int] = {}
    for crit in a.criteria:
        offset[crit.criterion_type] = max(offset.get(crit.criterion_type, 0), crit.ordinal)
    criteria = [*a.criteria]
    for extra in (b, c):
        added = _renumber(extra.criteria, offset)
        criteria += added
        for crit in added:
            offset[crit.criterion_type] = max(offset.get(crit.criterion_type, 0), crit.ordinal)
    criteria.sort(key=lambda x: (x.criterion_type != "inclusion", x.ordinal))
    locations = tuple(dict.fromkeys([*a.locations, *b.locations[:40], *c.locations[:40],
                                    *(sites.locations[:40] if sites else ())]))
    description = "\n\n".join(t for t in (a.detailed_description, b.detailed_description, c.detailed_description,
                                           b.brief_summary, c.brief_summary) if t)
    org = [Identifier("org_study_id", f"SYN-{TOKEN_PLACEHOLDER}")]
    others = tuple(_own_secondary_id(i, n) for n, i in enumerate(
        i for i in a.identifiers if i.id_type not in ("nct", "org_study_id")))
    return dataclasses.replace(
        a,
        nct_id=NCT_PLACEHOLDER,
        brief_title=f"Cohort {TOKEN_PLACEHOLDER} {a.brief_title or 'study'}",
        identifiers=(Identifier("nct", NCT_PLACEHOLDER), *org, *others),
        criteria=tuple(criteria),
        locations=locations,
        conditions=tuple(dict.fromkeys([*a.conditions, *b.conditions[:3]])),
        detailed_description=description or None,
    )


@cache
def base_pages(bases: int) -> tuple[tuple[BasePage, BasePage], ...]:
    """`bases` base records, each rendered on both sites (veeva, clinconnect)."""
    from pipeline.devtools.ctgov import load_records
    from pipeline.devtools.render import default_show_nct, render_page

    records = [r for r in load_records() if r.brief_title]
    # Donors: the records with the most criteria and text, so pages reach ~60 KB.
    rich = sorted(records, key=lambda r: (-len(r.criteria) - len(r.detailed_description or "") / 200,
                                          r.nct_id or ""))[:24]
    many_sites = sorted(records, key=lambda r: (-len(r.locations), r.nct_id or ""))[:8]
    n = len(records)
    out = []
    for k in range(bases):
        record = grow(records[k % n], rich[(k * 7 + 3) % len(rich)], rich[(k * 5 + 1) % len(rich)],
                      many_sites[k % len(many_sites)])
        variant = k % 3 + 1
        pair = []
        for site in SITES:
            page = render_page(record, site, variant, rng_seed=k,
                               show_nct=default_show_nct(f"{k}", site, variant))
            pair.append(BasePage(site, page.html, page.plan.url))
        out.append((pair[0], pair[1]))
    return tuple(out)


def page_bytes(base: BasePage, i: int) -> tuple[str, bytes]:
    token = f"{i:010d}"
    nct = nct_for(i)
    html = base.html.replace(NCT_PLACEHOLDER, nct).replace(TOKEN_PLACEHOLDER, token)
    url = base.url.replace(NCT_PLACEHOLDER, nct).replace(TOKEN_PLACEHOLDER, token)
    if nct not in url and token not in url:  # a share link: unique per page
        url = f"{url}{i:08x}"
    return url, html.encode("utf-8")


def iter_pages(trials: int, *, bases: int = 300, start: int = 0) -> Iterator[RawPage]:
    """Pages of trials start..start+trials-1, both sites each, in a stable order."""
    pool = base_pages(bases)
    for i in range(start, start + trials):
        for base in pool[i % bases]:
            url, content = page_bytes(base, i)
            fetched = BASE_FETCHED_AT + dt.timedelta(seconds=i)
            yield raw_page_from_bytes(url, content, fetched, base.site)


def changed_page(raw: RawPage, round_: int = 1) -> RawPage:
    """The same page one crawl later: a new last-update wording, a later fetch time."""
    content = raw.content.replace(b"</body>", f"<p>Revision {round_}</p></body>".encode(), 1)
    return raw_page_from_bytes(raw.url, content, raw.fetched_at + dt.timedelta(days=round_),
                               raw.source_hint)


def _put_fast(root: Path, source: str, content: bytes) -> str:
    """The raw store's layout and bytes (gzip, mtime=0) without its per-object fsync:
    a benchmark corpus is disposable, and 200k fsyncs would measure the disk, not us."""
    sha = hashlib.sha256(content).hexdigest()
    path = root / source / "objects" / sha[:2] / f"{sha}.html.gz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(gzip.compress(content, compresslevel=6, mtime=0))
        os.replace(tmp, path)
    return sha


def write_corpus(root: str | os.PathLike[str], trials: int, *, bases: int = 300,
                 start: int = 0) -> tuple[PageRef, ...]:
    """Write the pages of `trials` trials into the raw store at `root`; their refs in order."""
    base = Path(root)
    refs = []
    for raw in iter_pages(trials, bases=bases, start=start):
        source = raw.source_hint or "unknown"
        sha = _put_fast(base, source, raw.content)
        refs.append(PageRef(raw.url, source, sha, raw.fetched_at))
    return tuple(refs)


def write_manifest(path: str | os.PathLike[str], refs: Sequence[PageRef]) -> None:
    table = pa.table({
        "url": [r.url for r in refs], "source": [r.source for r in refs],
        "content_sha256": [r.content_sha256 for r in refs], "fetched_at": [r.fetched_at for r in refs],
    }, schema=MANIFEST_SCHEMA)
    pq.write_table(table, path)


def read_manifest(path: str | os.PathLike[str]) -> tuple[PageRef, ...]:
    rows = pq.read_table(path).to_pylist()
    return tuple(PageRef(r["url"], r["source"], r["content_sha256"], r["fetched_at"]) for r in rows)
