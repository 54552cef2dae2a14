"""The local test mirror behaves like the site it imitates, faults included."""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import subprocess
import sys

import httpx
import pytest
from lxml import etree

from pipeline.devtools.mirror import (
    BASE_LASTMOD,
    Faults,
    Mirror,
    MirrorServer,
    generate_pages,
    load_pages,
)
from pipeline.scrape.sites import SITES

SM = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def _client():
    # raw bytes as sent: we check Content-Encoding ourselves
    return httpx.Client(timeout=5, trust_env=False, headers={"Accept-Encoding": "gzip"})


def _raw(client, url, **kw):
    with client.stream("GET", url, **kw) as r:
        return r, b"".join(r.iter_raw())


@pytest.mark.parametrize("style", ["veeva", "clinconnect"])
def test_generated_pages_look_like_trial_pages(style):
    pages = generate_pages(style, 5)
    site = SITES[style]
    assert len(pages) == 5
    for path, page in pages.items():
        assert site.study_path.fullmatch(path), path
        assert site.looks_like_study(page.body)
    assert generate_pages(style, 5) == pages  # deterministic


def test_robots_sitemaps_and_pages():
    pages = generate_pages("veeva", 7)
    mirror = Mirror("veeva", pages, disallow=["/study/private-"], crawl_delay=0.5, per_sitemap=3,
                    extra_sitemap_urls=["http://other.test/study/x"])
    with MirrorServer(mirror) as srv, _client() as c:
        robots = c.get(srv.base_url + "/robots.txt").text
        assert "Disallow: /study/private-" in robots and "Crawl-delay: 0.5" in robots
        assert f"Sitemap: {srv.base_url}/sitemap_index.xml" in robots
        index = etree.fromstring(c.get(srv.base_url + "/sitemap_index.xml").content)
        children = [e.text for e in index.iter(SM + "loc")]
        assert children == [f"{srv.base_url}/sitemaps/trials-{i}.xml{'.gz' if i % 2 == 0 else ''}" for i in range(3)]
        listed = {}
        for child in children:
            r, raw = _raw(c, child)
            if child.endswith(".gz"):
                assert "Content-Encoding" not in r.headers and raw[:2] == b"\x1f\x8b"
            else:
                assert r.headers["Content-Encoding"] == "gzip"
            doc = etree.fromstring(gzip.decompress(raw))
            for url in doc.iter(SM + "url"):
                listed[url.findtext(SM + "loc")] = url.findtext(SM + "lastmod")
        assert set(listed) == {srv.base_url + p for p in pages} | {"http://other.test/study/x"}
        first = next(iter(pages))
        assert dt.datetime.fromisoformat(listed[srv.base_url + first]) == BASE_LASTMOD


def test_validators_and_304():
    pages = generate_pages("clinconnect", 2)
    path, page = next(iter(pages.items()))
    with MirrorServer(Mirror("clinconnect", pages)) as srv, _client() as c:
        r, raw = _raw(c, srv.base_url + path)
        assert r.status_code == 200 and gzip.decompress(raw) == page.body
        etag, lm = r.headers["ETag"], r.headers["Last-Modified"]
        assert email.utils.parsedate_to_datetime(lm) == BASE_LASTMOD
        assert c.get(srv.base_url + path, headers={"If-None-Match": etag}).status_code == 304
        assert c.get(srv.base_url + path, headers={"If-Modified-Since": lm}).status_code == 304
        assert c.get(srv.base_url + path, headers={"If-None-Match": '"other"'}).status_code == 200
        srv.mirror.set_page(path, b"<h1>changed</h1>")
        assert c.get(srv.base_url + path, headers={"If-None-Match": etag}).status_code == 200
        log = srv.requests
        assert [q.status for q in log] == [200, 304, 304, 200, 200]
        assert log[1].headers["if-none-match"] == etag and log[0].t <= log[1].t


def test_faults():
    pages = generate_pages("veeva", 8)
    p = list(pages)
    faults = Faults(
        rate_limited={p[0]: 1}, retry_after="7", unavailable={p[1]: 2}, drop={p[2]: 1},
        truncate={p[3]: 1}, interstitial={p[4]: 1}, slow={p[5]: 0.3},
        redirects={"/study/moved": p[6], "/study/away": "http://elsewhere.test/study/x"},
        gone={"/study/removed"}, oversized={"/study/huge": 300_000},
    )
    with MirrorServer(Mirror("veeva", pages, faults=faults, gzip_pages=False)) as srv, _client() as c:
        u = srv.base_url
        r = c.get(u + p[0])
        assert (r.status_code, r.headers["Retry-After"]) == (429, "7")
        assert c.get(u + p[0]).status_code == 200
        assert [c.get(u + p[1]).status_code for _ in range(3)] == [503, 503, 200]
        with pytest.raises(httpx.TransportError):
            c.get(u + p[2])
        assert c.get(u + p[2]).status_code == 200
        with pytest.raises(httpx.TransportError):  # body shorter than Content-Length
            c.get(u + p[3])
        assert c.get(u + p[3]).content == pages[p[3]].body
        assert b"Checking your browser" in c.get(u + p[4]).content
        assert c.get(u + p[4]).content == pages[p[4]].body
        r = c.get(u + p[5])
        assert r.elapsed.total_seconds() >= 0.3
        r = c.get(u + "/study/moved")
        assert (r.status_code, r.headers["Location"]) == (301, p[6])
        assert c.get(u + "/study/away").headers["Location"] == "http://elsewhere.test/study/x"
        assert c.get(u + "/study/removed").status_code == 404
        r = c.get(u + "/study/huge")
        assert "content-length" not in r.headers and len(r.content) == 300_000
        assert [q.status for q in srv.requests][:3] == [429, 200, 503]
        assert None in [q.status for q in srv.requests]  # the dropped connection is logged


def test_load_pages_from_directory(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "My Trial Page.html").write_bytes(b"<h1>x</h1>")
    (tmp_path / "NCT01234567_semantic.html").write_bytes(b"<h1>y</h1>")
    (tmp_path / "notes.txt").write_text("ignored")
    veeva = load_pages(tmp_path, "veeva")
    assert set(veeva) == {"/study/my-trial-page", "/study/nct01234567-semantic"}
    (tmp_path / "other.html").write_bytes(b"<p>NCT07654321 in text</p>")
    cc = load_pages(tmp_path, "clinconnect")
    assert "/trials/NCT01234567" in cc and "/trials/NCT07654321" in cc and len(cc) == 3


def test_cli_serves_until_stopped(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.devtools.mirror", "--style", "clinconnect", "--generate", "3", "--port", "0",
         "--disallow", "/trials/NCT99"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "clinconnect mirror with 3 pages at http://127.0.0.1:" in line
        base = line.split(" at ")[1].split()[0]
        assert "Disallow: /trials/NCT99" in httpx.get(base + "/robots.txt", trust_env=False).text
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)  # generous: a loaded CI machine is slow to deliver SIGTERM
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
