"""Bad, broken and hostile pages, each with the outcome it must get.

`build(directory)` writes every case as a file (big ones are generated, not committed:
a 50 MB page and a gzip bomb would bloat the repository).  `CASES` lists
(file name, expected parse_status, words the reason must contain).  Cases marked
"ok" are controls: odd but legitimate pages that must load untouched.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "raw" / "sample"
VEEVA = (SAMPLE / "html" / "veeva-v1-NCT03494712.html").read_bytes()
CLINCONNECT = (SAMPLE / "html" / "clinconnect-v1-NCT03424005.html").read_bytes()
SEED_TEXT = next((SAMPLE / "seeds").glob("001_*.txt")).read_bytes()


@dataclass(frozen=True)
class Case:
    name: str
    status: str  # expected parse_status
    reason: str  # must appear in parse_error ("" for ok)
    make: Callable[[], bytes]


def veeva(body: str, title: str = "A Trial of Something") -> bytes:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} | ClinicalTrials.Veeva</title></head>
<body><header>ClinicalTrials.Veeva</header><h1>{title}</h1><p>Some Sponsor</p>{body}
<footer>Data sourced from clinicaltrials.gov</footer></body></html>""".encode()


GOOD_VEEVA_BODY = """<h2>Status and phase</h2><p>Enrolling</p><p>Phase 1</p>
<h2>Conditions</h2><p>Acute Myeloid Leukemia</p><h2>Identifiers</h2><p>NCT01234567</p>
<h2>Enrollment</h2><p>30 estimated patients</p>"""


def cc(title: str, extra: str = "", charset: str | None = "utf-8", launched: str = "Apr 11, 2024",
       sponsor: str = "HÔPITAL EUROPÉEN", encoding: str = "utf-8") -> bytes:
    meta = f'<meta charset="{charset}">' if charset else ""
    html = f"""<!DOCTYPE html><html><head>{meta}<link rel="canonical" href="https://clinconnect.io/trials/NCT07654321"></head>
<body><div>ClinConnect</div><h1>{title}</h1><p>Launched by {sponsor} · {launched}</p>
<h3>Trial Information</h3><p>Current as of June 14, 2025</p><p>Recruiting</p>
<h3>Gender</h3><p>ALL</p>{extra}<h3>Timeline</h3><p>Trial launched</p><p>{launched}</p></body></html>"""
    return html.encode(encoding)


def _bomb() -> bytes:
    return gzip.compress(b"\0" * (50 * 2**20), compresslevel=9)


def _huge() -> bytes:
    filler = b"<p>" + b"padding " * 1000 + b"</p>\n"
    body = VEEVA.replace(b"</body>", filler * (50 * 2**20 // len(filler)) + b"</body>")
    return body


def _nested() -> bytes:
    return b"<html><body>" + b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000 + b"</body></html>"


CASES: tuple[Case, ...] = (
    # -- not a page at all ------------------------------------------------------------
    Case("empty.html", "rejected", "empty page: 0 bytes", lambda: b""),
    Case("whitespace.html", "rejected", "whitespace only", lambda: b" \n\t\r\n   \n"),
    Case("binary.html", "rejected", "binary or undecodable", lambda: b"\x00" + random.Random(7).randbytes(8192)),
    Case("nul-sprinkled.html", "rejected", "binary or undecodable",
         lambda: bytes(b for ch in VEEVA[:6000] for b in (ch, 0))),
    Case("pdf-saved-as.html", "rejected", "PDF document", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"),
    Case("bomb.html.gz", "rejected", "gzip-compressed", _bomb),
    Case("png-saved-as.html", "rejected", "PNG image", lambda: b"\x89PNG\r\n\x1a\n" + bytes(200)),
    Case("zip-saved-as.html", "rejected", "ZIP archive", lambda: b"PK\x03\x04" + bytes(200)),
    Case("huge-50mb.html", "rejected", "page too large", _huge),
    Case("json-api-response.html", "rejected", "not a trial page", lambda: b'{"studies": [], "nextPageToken": null}'),
    # -- broken HTML --------------------------------------------------------------------
    Case("truncated.html", "rejected", "truncated HTML", lambda: VEEVA[: len(VEEVA) // 2]),
    Case("nested-100k.html", "rejected", "no visible text", _nested),
    Case("empty-body.html", "rejected", "no visible text", lambda: b"<html><head><title>x</title></head><body></body></html>"),
    Case("only-chrome.html", "rejected", "not a trial page",
         lambda: b"<html><body><header>ClinicalTrials.Veeva</header><nav>Menu</nav><footer>"
                 b"Data sourced from clinicaltrials.gov</footer></body></html>"),
    Case("truncated-capture.txt", "partial", "missing fields",
         lambda: SEED_TEXT[: SEED_TEXT.index(b"Funder types")]),
    # -- not a trial page ---------------------------------------------------------------
    Case("login.html", "rejected", "not a trial page",
         lambda: b"<html><body><h1>Sign in</h1><form><label>Email</label><input><label>Password</label>"
                 b"<input type=password><button>Log in</button></form></body></html>"),
    Case("captcha.html", "rejected", "not a trial page",
         lambda: b"<html><body><h1>Just a moment...</h1><p>Please verify you are a human.</p>"
                 b"<noscript>Enable JavaScript and cookies to continue</noscript></body></html>"),
    Case("not-found.html", "rejected", "not a trial page",
         lambda: b"<html><body><h1>Trial not found</h1><p>The study you are looking for does not exist "
                 b"or has been removed.</p><a href='/'>Find clinical trials</a></body></html>"),
    Case("listing.html", "rejected", "not a trial page",
         lambda: ("<html><body><h1>Clinical trials for leukemia</h1><ul>" + "".join(
             f"<li><a href='/study/t{i}'>CAR-T Study {i}</a><span>Enrolling</span></li>" for i in range(40))
             + "</ul></body></html>").encode()),
    Case("other-site.html", "rejected", "not a trial page",
         lambda: b"<html><body><h1>Leukemia</h1><p>Leukemia is a group of blood cancers that usually begin "
                 b"in the bone marrow.</p><h2>Signs and symptoms</h2><p>Bleeding, bruising, fatigue.</p>"
                 b"</body></html>"),
    # -- encodings ------------------------------------------------------------------------
    Case("gbk-declared.html", "ok", "", lambda: cc("自然杀伤细胞治疗急性髓系白血病", charset="gbk", encoding="gbk",
                                                    sponsor="浙江大学")),
    Case("gbk-undeclared.html", "partial", "charset missing or wrong",
         lambda: cc("自然杀伤细胞治疗急性髓系白血病的临床研究", charset=None, encoding="gbk", sponsor="浙江大学医学院附属第一医院")),
    Case("big5-declared.html", "ok", "", lambda: cc("自然殺傷細胞治療急性骨髓性白血病", charset="big5", encoding="big5",
                                                     sponsor="國立臺灣大學醫學院附設醫院")),
    Case("big5-undeclared.html", "partial", "charset missing or wrong",
         lambda: cc("自然殺傷細胞治療急性骨髓性白血病之臨床試驗", charset=None, encoding="big5", sponsor="國立臺灣大學醫學院附設醫院")),
    Case("latin1-declared.html", "ok", "", lambda: cc("Étude de thérapie cellulaire", charset="iso-8859-1",
                                                        encoding="latin-1")),
    Case("latin1-undeclared.html", "partial", "charset missing or wrong",
         lambda: cc("Étude de thérapie cellulaire", charset=None, encoding="latin-1")),
    Case("charset-lies.html", "partial", "charset missing or wrong",
         lambda: cc("Étude de thérapie cellulaire", charset="utf-8", encoding="latin-1")),
    Case("bom-utf8.html", "ok", "", lambda: b"\xef\xbb\xbf" + cc("Study with a byte-order mark")),
    Case("bom-utf16.html", "ok", "", lambda: cc("Study in UTF-16", charset=None, encoding="utf-16")),
    Case("mojibake.html", "partial", "mojibake repaired",
         lambda: cc("Étude de thérapie cellulaire", encoding="utf-8").decode("utf-8").encode("utf-8")
         .decode("latin-1").encode("utf-8")),
    # -- hostile markup -------------------------------------------------------------------
    Case("scripts-and-handlers.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY + "<script>document.write('<h2>Status and phase</h2><p>Completed</p>')</script>"
        "<p onclick=\"alert('x')\" onmouseover=\"steal()\">Inclusion criteria</p>"
        "<ul><li><a href=\"javascript:alert(1)\">Adults</a></li></ul>"
        "<img src=x onerror=\"fetch('//evil')\"><iframe src='//evil'>Completed</iframe>")),
    Case("hidden-decoys.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY + "<div hidden><h2>Status and phase</h2><p>Terminated</p></div>"
        "<!-- <h2>Status and phase</h2><p>Withdrawn</p> -->"
        "<template><p>NCT99999999</p></template>")),
    Case("markup-in-fields.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY, title="Study of &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;alert(1)&lt;/script&gt; claims")),
    Case("sql-in-fields.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY.replace("Acute Myeloid Leukemia", "Leukemia'); DROP TABLE trials; --"),
        title="Robert'); DROP TABLE trials;-- \" OR 1=1")),
    # -- defects in the trial data ---------------------------------------------------------
    Case("duplicated-sections.html", "partial", "conflicting values", lambda: veeva(
        GOOD_VEEVA_BODY + "<h2>Status and phase</h2><p>Completed</p><p>Phase 2</p>")),
    Case("conflicting-gender.html", "partial", "conflicting values",
         lambda: cc("Trial with two genders", extra="<h3>Gender</h3><p>FEMALE</p>")),
    Case("duplicated-identical-section.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY + "<h2>Conditions</h2><p>Acute Myeloid Leukemia</p>")),
    Case("nct-too-short.html", "partial", "malformed NCT ID", lambda: veeva(
        GOOD_VEEVA_BODY.replace("NCT01234567", "NCT0123456"))),
    Case("nct-with-letters.html", "partial", "malformed NCT ID", lambda: veeva(
        GOOD_VEEVA_BODY.replace("NCT01234567", "NCT0123456X"))),
    Case("nct-spaced.html", "ok", "", lambda: veeva(GOOD_VEEVA_BODY.replace("NCT01234567", "nct 0123 4567"))),
    Case("date-quarter.html", "partial", "unparseable date", lambda: cc("Quarterly dated trial", launched="Q3 2024")),
    Case("date-impossible.html", "partial", "unparseable date", lambda: cc("Impossible date", launched="2024-13-45")),
    Case("date-iso.html", "ok", "", lambda: cc("ISO dated trial", launched="2024-04-11")),
    Case("enrollment-words.html", "partial", "unparseable enrollment", lambda: veeva(
        GOOD_VEEVA_BODY.replace("30 estimated patients", "about thirty patients"))),
    Case("enrollment-thousands.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY.replace("30 estimated patients", "1,200 estimated patients"))),
    Case("ages-garbled.html", "partial", "unparseable ages", lambda: veeva(
        GOOD_VEEVA_BODY + "<h2>Ages</h2><p>adults and older adults</p>")),
    Case("date-us-slashes.html", "partial", "unparseable date '04/11/2024'",
         lambda: cc("Slash dated trial", launched="04/11/2024")),
    Case("date-dotted.html", "partial", "unparseable date '11.04.2024'",
         lambda: cc("Dotted date trial", launched="11.04.2024")),
    Case("date-in-words.html", "partial", "unparseable date 'the eleventh of April'",
         lambda: cc("Worded date trial", launched="the eleventh of April")),
    Case("enrollment-european-thousands.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY.replace("30 estimated patients", "1.200 estimated patients"))),
    Case("enrollment-decimal.html", "partial", "unparseable enrollment", lambda: veeva(
        GOOD_VEEVA_BODY.replace("30 estimated patients", "12.5 estimated patients"))),
    Case("phase-unknown.html", "partial", "unrecognized phase 'Phase 99'", lambda: veeva(
        GOOD_VEEVA_BODY.replace("<p>Phase 1</p>", "<p>Phase 99</p>"))),
    Case("ages-inverted.html", "partial", "inverted age range: minimum 65 Years above maximum 18 Years",
         lambda: veeva(GOOD_VEEVA_BODY + "<h2>Ages</h2><p>65 Years to 18 Years</p>")),
    Case("enrollment-negative.html", "partial", "unparseable enrollment", lambda: veeva(
        GOOD_VEEVA_BODY.replace("30 estimated patients", "-30 estimated patients"))),
    Case("enrollment-scientific.html", "partial", "unparseable enrollment", lambda: veeva(
        GOOD_VEEVA_BODY.replace("30 estimated patients", "1e3 estimated patients"))),
    # Beyond the 32-bit column: once crashed the whole run's load (pyarrow OverflowError).
    Case("enrollment-overflow.html", "partial", "enrollment out of range: 99999999999999999999", lambda: veeva(
        GOOD_VEEVA_BODY.replace("30 estimated patients", "99999999999999999999 estimated patients"))),
    Case("enrollment-beyond-int32.html", "partial", "enrollment out of range: 3000000000", lambda: veeva(
        GOOD_VEEVA_BODY.replace("30 estimated patients", "3,000,000,000 estimated patients"))),
    Case("status-unknown-word.html", "partial", "missing fields: overall_status", lambda: veeva(
        GOOD_VEEVA_BODY.replace("<p>Enrolling</p>", "<p>Maybe later</p>"))),
    # -- markup that must never be expanded, fetched or executed ---------------------------
    Case("billion-laughs.html", "ok", "", lambda: b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
         + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"".join(b"&lol%s;" % (b"" if i == 2 else str(i - 1).encode())
                                                          for _ in range(10))) for i in range(2, 10))
         + b"]>" + veeva(GOOD_VEEVA_BODY + "<p>&lol9;</p>", title="Laughs &lol9; stay text")),
    Case("xxe-external-entity.html", "ok", "", lambda: b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY xxe SYSTEM '
         b'"file:///etc/passwd">]>' + veeva(GOOD_VEEVA_BODY + "<p>&xxe;</p>", title="External entity study")),
    Case("meta-refresh-and-base.html", "ok", "", lambda: veeva(GOOD_VEEVA_BODY.replace(
        "<h2>Status", '<base href="http://evil.example/"><meta http-equiv="refresh" '
        'content="0;url=http://evil.example/"><h2>Status'))),
    Case("svg-and-srcdoc.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY + '<svg><script>alert(1)</script><text>Completed</text></svg>'
        '<iframe srcdoc="<h2>Status and phase</h2><p>Completed</p>"></iframe>')),
    Case("css-hidden-decoy.html", "ok", "", lambda: veeva(
        GOOD_VEEVA_BODY + '<div style="display:none"><h2>Status and phase</h2><p>Terminated</p></div>')),
)


def build(directory: Path) -> dict[str, Case]:
    """Write every case; each page gets its own NCT ID so no two cases link into one trial."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, case in enumerate(CASES):
        content = case.make()
        for template in ("NCT01234567", "NCT07654321"):
            unique = f"NCT0{i + 1:03d}{template[-4:]}"
            content = content.replace(template.encode(), unique.encode())
            content = content.replace(template.encode("utf-16-le"), unique.encode("utf-16-le"))
        (directory / case.name).write_bytes(content)
    return {case.name: case for case in CASES}
