"""Trial history and presence, derived from the page versions the warehouse holds.

History semantics (docs/queries.md repeats them for analysts):

* A trial's state at time t is its golden record merged (with the linker's own merge
  rules) from the page versions fetched at or before t.  Replaying the trial's pages in
  fetch order gives one state per distinct `fetched_at`; every tracked field that differs
  between two consecutive states is one `trial_history` row, observed at the later
  fetched_at, naming the page version that showed the new value.
* The first observation of a trial writes no row: `trials.first_seen_at` records it, so
  `old_value IS NULL` in history always means "the field was empty before".
* History is recomputed from all of a trial's pages whenever the load touches the trial.
  It is therefore a pure function of the page versions (and their fetch times): the same
  pages give the same rows however they were batched into runs, a late-arriving older
  snapshot lands in its place in time, and a parser upgrade that re-reads old pages
  rewrites history as if the better parser had been used all along (the source did not
  change, our reading of it did) instead of reporting spurious changes.
* The last state is the golden record the load writes, so the latest history value of a
  field always equals the trial's current value.

Presence: `last_seen_at` is the latest time any of the trial's URLs was fetched or confirmed
unchanged; `removed_from_source` is set when every one of its URLs answered 404/410 at its
latest fetch (`fetches.outcome = 'gone'`; failed fetches prove nothing either way).
A URL that a *complete* sitemap discovery of its source no longer lists counts as gone too:
the crawler logs it as a `fetches` row with outcome 'gone', no request (`attempts` 0) and the
error 'absent from the sitemap' (`mark_unlisted`); listed again, it is fetched again and the
flag clears like after a 404.  Removed trials stay in the warehouse.  Pages read from files
have no fetch log and are never "gone".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

from pipeline.db.schema import ARROW_SCHEMAS
from pipeline.golden import value_text  # re-exported: history stores values as this text
from pipeline.link import LinkPage, freshest_first, golden_of
from pipeline.models import TrialRecord
from pipeline.serialize import record_from_json

# Tracked golden fields, by their `trials` column name (also `trial_history.field`).
TRACKED_FIELDS: tuple[str, ...] = (
    "overall_status", "phases", "enrollment", "enrollment_type", "start_date",
    "primary_completion_date", "completion_date", "lead_sponsor", "brief_title",
    "official_title",
)

HISTORY_SCHEMA = ARROW_SCHEMAS["trial_history"]


def tracked_values(source: TrialRecord | Mapping[str, Any]) -> dict[str, str | None]:
    get: Callable[[str], Any] = (
        source.get if isinstance(source, Mapping) else lambda name: getattr(source, name)
    )
    return {name: value_text(get(name)) for name in TRACKED_FIELDS}


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    old_value: str | None
    new_value: str | None
    observed_at: dt.datetime
    page_id: str | None


@dataclass(frozen=True, slots=True)
class Timeline:
    trial_id: str
    first_seen_at: dt.datetime | None
    changes: tuple[Change, ...]

    @property
    def last_changed_at(self) -> dt.datetime | None:
        return max((c.observed_at for c in self.changes), default=self.first_seen_at)


def _fetch_key(page: LinkPage) -> dt.datetime:
    return page.fetched_at or dt.datetime.min


def replay(trial_id: str, pages: Sequence[LinkPage], final: Mapping[str, str | None]) -> Timeline:
    """The trial's tracked-field changes over its pages' fetch times (see module docstring).

    `final` is the golden record's tracked values; it stands for the state after the last
    fetch time, so history always ends at what `trials` holds.
    """
    ordered = sorted(pages, key=lambda p: (_fetch_key(p), p.page_id))
    instants = [(at, list(group)) for at, group in groupby(ordered, key=_fetch_key)]
    seen_times = [p.fetched_at for p in ordered if p.fetched_at is not None]
    first_seen = min(seen_times) if seen_times else None
    changes: list[Change] = []
    visible: list[LinkPage] = []
    state: dict[str, str | None] | None = None
    for index, (at, arrived) in enumerate(instants):
        visible.extend(arrived)
        best_first = freshest_first(visible)
        if index == len(instants) - 1:
            new_state = dict(final)
        else:
            new_state = tracked_values(golden_of(best_first, conflicts=False).record)
        if state is not None:
            arrived_ids = {p.page_id for p in arrived}
            for name in TRACKED_FIELDS:
                if new_state[name] == state[name]:
                    continue
                changes.append(Change(
                    name, state[name], new_state[name], at,
                    _shown_by(name, new_state[name], best_first, arrived_ids),
                ))
        state = new_state
    return Timeline(trial_id, first_seen, tuple(changes))


def _shown_by(
    name: str, value: str | None, best_first: Sequence[LinkPage], arrived: set[str]
) -> str | None:
    """The newly arrived page version that shows `value`, else the best newly arrived one."""
    candidates = [p for p in best_first if p.page_id in arrived]
    for page in candidates:
        if value_text(getattr(page.record, name)) == value:
            return page.page_id
    return candidates[0].page_id if candidates else None


def history_table(timelines: Iterable[Timeline]) -> pa.Table:
    rows = [
        {"trial_id": t.trial_id, "field": c.field, "old_value": c.old_value,
         "new_value": c.new_value, "observed_at": c.observed_at, "page_id": c.page_id}
        for t in sorted(timelines, key=lambda t: t.trial_id)
        for c in t.changes
    ]
    return pa.Table.from_pylist(rows, schema=HISTORY_SCHEMA)


def stored_link_pages(
    conn: duckdb.DuckDBPyConnection, page_ids: Iterable[str]
) -> dict[str, LinkPage]:
    """The silver records of `page_ids` (those that have one), as the linker sees them."""
    ids = sorted(set(page_ids))
    if not ids:
        return {}
    rows = conn.execute(
        "SELECT p.page_id, p.source, p.fetched_at, r.record, p.url FROM pages p "
        "JOIN page_records r USING (page_id) WHERE p.page_id IN (SELECT unnest(?::VARCHAR[]))",
        [ids],
    ).fetchall()
    return {pid: LinkPage(pid, src, at, record_from_json(rec), url)
            for pid, src, at, rec, url in rows}


# --- presence ----------------------------------------------------------------------------

# Per URL: the latest time it was seen (fetched, or confirmed unchanged) and, if its latest
# conclusive fetch was a 404/410, since when it has been gone.  A fetch row answers for its
# discovered URL and for the URL it redirected to (pages store the latter).
_PRESENCE = """
WITH fetch_urls AS (
    SELECT url AS page_url, requested_at, outcome FROM fetches
    WHERE kind = 'page' AND outcome <> 'failed'
    UNION
    SELECT final_url, requested_at, outcome FROM fetches
    WHERE kind = 'page' AND outcome <> 'failed' AND final_url IS NOT NULL
), url_seen AS (
    SELECT page_url, max(requested_at) FILTER (WHERE outcome <> 'gone') AS seen_at
    FROM fetch_urls GROUP BY page_url
), url_state AS (
    SELECT u.page_url, any_value(u.seen_at) AS seen_at,
           min(f.requested_at) FILTER (
               WHERE f.outcome = 'gone' AND (u.seen_at IS NULL OR f.requested_at > u.seen_at)
           ) AS gone_since
    FROM url_seen u JOIN fetch_urls f USING (page_url) GROUP BY u.page_url
), trial_urls AS (
    SELECT trial_id, url, max(fetched_at) AS fetched_at FROM pages
    WHERE trial_id IS NOT NULL GROUP BY trial_id, url
)
SELECT tu.trial_id,
       greatest(max(tu.fetched_at), max(s.seen_at)) AS last_seen_at,
       bool_and(s.gone_since IS NOT NULL) AS removed,
       CASE WHEN bool_and(s.gone_since IS NOT NULL) THEN max(s.gone_since) END AS removed_at
FROM trial_urls tu LEFT JOIN url_state s ON s.page_url = tu.url
GROUP BY tu.trial_id
"""


def refresh_presence(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring every trial's last_seen_at / removed_from_source / removed_at up to date; only
    rows whose values differ are written, so a run that saw nothing new changes nothing.
    Returns the number of trials updated."""
    rows = conn.execute(
        "UPDATE trials SET last_seen_at = p.last_seen_at, removed_from_source = p.removed, "
        "removed_at = p.removed_at "
        f"FROM ({_PRESENCE}) AS p WHERE trials.trial_id = p.trial_id AND ("
        "trials.last_seen_at IS DISTINCT FROM p.last_seen_at "
        "OR trials.removed_from_source IS DISTINCT FROM p.removed "
        "OR trials.removed_at IS DISTINCT FROM p.removed_at)"
    ).fetchall()
    return int(rows[0][0]) if rows else 0


UNLISTED_ERROR = "absent from the sitemap"


def mark_unlisted(
    conn: duckdb.DuckDBPyConnection, source: str, crawl_id: str, listed: Iterable[str], at: dt.datetime,
    hosts: Collection[str],
) -> int:
    """After a complete sitemap discovery of `source` on `hosts` (every sitemap read, nothing
    skipped): log every page URL of the source on those hosts whose latest fetch was not
    already 'gone' and that the sitemaps no longer list as gone at `at`, so
    `refresh_presence` flags its trial removed_from_source (nothing is deleted; last_seen_at
    keeps the last real sighting).  URLs on other hosts (the same source crawled at another
    base URL, e.g. a test mirror) are left alone.  The row carries the URL's last known final
    URL, which is what `pages` stores.  Returns the number of URLs marked.  Callers must not
    use it after a partial discovery (`--limit`, `--urls`, a sitemap that failed): an unread
    sitemap lists nothing."""
    known = conn.execute(
        """
        SELECT url, final_url FROM (
            SELECT url, arg_max(outcome, requested_at) AS outcome,
                   arg_max(final_url, requested_at) FILTER (WHERE final_url IS NOT NULL) AS final_url
            FROM fetches WHERE source = ? AND kind = 'page' GROUP BY url
        ) WHERE outcome <> 'gone' ORDER BY url
        """,
        [source],
    ).fetchall()
    still = set(listed)
    hosts = set(hosts)
    gone = [(url, final) for url, final in known if url not in still and urlsplit(url).netloc in hosts]
    if not gone:
        return 0
    rows = pa.table({
        "url": pa.array([u for u, _ in gone], type=pa.string()),
        "final_url": pa.array([f for _, f in gone], type=pa.string()),
    })
    conn.register("_unlisted_urls", rows)
    try:
        conn.execute(
            "INSERT INTO fetches (crawl_id, kind, url, final_url, source, requested_at, attempts, outcome, error) "
            "SELECT ?, 'page', url, final_url, ?, ?, 0, 'gone', ? FROM _unlisted_urls",
            [crawl_id, source, at, UNLISTED_ERROR],
        ).fetchall()
    finally:
        conn.unregister("_unlisted_urls")
    return len(gone)


# --- whole-warehouse rebuild (upgrades, maintenance) -------------------------------------

def rebuild(conn: duckdb.DuckDBPyConnection) -> int:
    """Recompute trial_history, first_seen_at and last_changed_at of every trial from its
    pages, and presence; for warehouses loaded before history existed.  Runs in the
    caller's transaction.  Returns the number of history rows written."""
    columns = ", ".join(TRACKED_FIELDS)  # our own constant names
    trials = conn.execute(f"SELECT trial_id, {columns} FROM trials ORDER BY trial_id").fetchall()
    members = conn.execute(
        "SELECT trial_id, list(page_id ORDER BY page_id) FROM pages "
        "WHERE trial_id IS NOT NULL GROUP BY trial_id"
    ).fetchall()
    page_ids = dict(members)
    pages = stored_link_pages(conn, [pid for ids in page_ids.values() for pid in ids])
    timelines = []
    for trial_id, *values in trials:
        trial_pages = [pages[pid] for pid in page_ids.get(trial_id, []) if pid in pages]
        final = tracked_values(dict(zip(TRACKED_FIELDS, values)))
        timelines.append(replay(trial_id, trial_pages, final))
    write_timelines(conn, timelines, replace_all=True)
    refresh_presence(conn)
    return sum(len(t.changes) for t in timelines)


def timeline_times(timelines: Iterable[Timeline]) -> pa.Table:
    return pa.table({
        "trial_id": pa.array([t.trial_id for t in timelines], type=pa.string()),
        "first_seen_at": pa.array([t.first_seen_at for t in timelines], type=pa.timestamp("us")),
        "last_changed_at": pa.array(
            [t.last_changed_at for t in timelines], type=pa.timestamp("us")),
    })


def write_timelines(
    conn: duckdb.DuckDBPyConnection, timelines: Sequence[Timeline], *, replace_all: bool = False
) -> int:
    """Replace the history rows and first_seen/last_changed times of `timelines`' trials
    (of every trial with `replace_all`); returns the history rows inserted."""
    history = history_table(timelines)
    times = timeline_times(timelines)
    conn.register("_hist_rows", history)
    conn.register("_hist_times", times)
    try:
        if replace_all:
            conn.execute("DELETE FROM trial_history").fetchall()
        else:
            conn.execute(
                "DELETE FROM trial_history WHERE trial_id IN (SELECT trial_id FROM _hist_times)"
            ).fetchall()
        inserted = conn.execute(
            "INSERT INTO trial_history BY NAME SELECT * FROM _hist_rows"
        ).fetchall()
        conn.execute(
            "UPDATE trials SET first_seen_at = x.first_seen_at, last_changed_at = x.last_changed_at "
            "FROM _hist_times x WHERE trials.trial_id = x.trial_id AND ("
            "trials.first_seen_at IS DISTINCT FROM x.first_seen_at "
            "OR trials.last_changed_at IS DISTINCT FROM x.last_changed_at)"
        ).fetchall()
    finally:
        conn.unregister("_hist_rows")
        conn.unregister("_hist_times")
    return int(inserted[0][0]) if inserted else 0
