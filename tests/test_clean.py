"""Clean stage: decoding, visible-text outline, text repairs."""

from __future__ import annotations

import pytest

from pipeline.clean.decode import UndecodablePage, decode_page
from pipeline.clean.outline import html_outline, text_outline
from pipeline.clean.text import normalize_space, repair_powers_of_ten, sponsor_case


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("1×107 CAR-positive cells/kg", "1×10^7 CAR-positive cells/kg"),
        ("white blood cells >1.0×109/L", "white blood cells >1.0×10^9/L"),
        ("platelets >50×109/L", "platelets >50×10^9/L"),
        ("1.0 × 107 CAR positive NK cells/kg", "1.0 × 10^7 CAR positive NK cells/kg"),
        ("5x106 cells/kg", "5x10^6 cells/kg"),
        ("10⁷ cells", "10^7 cells"),
        ("1×10^7 cells", "1×10^7 cells"),  # already right
        ("2 × 100 mg", "2 × 100 mg"),  # not a power of ten
        ("take 3 x 10 tablets", "take 3 x 10 tablets"),
        ("2 x 105 days", "2 x 105 days"),  # x without a count unit stays
    ],
)
def test_repair_powers_of_ten(raw, fixed):
    assert repair_powers_of_ten(raw) == fixed


@pytest.mark.parametrize(
    ("raw", "cased"),
    [
        ("ZHEJIANG UNIVERSITY", "Zhejiang University"),
        ("UNIVERSITY OF TEXAS M.D. ANDERSON CANCER CENTER", "University of Texas M.D. Anderson Cancer Center"),
        ("NCI", "NCI"),
        ("Chongqing Precision Biotech", "Chongqing Precision Biotech"),
        ("ASSISTANCE PUBLIQUE - HÔPITAUX DE PARIS", "Assistance Publique - Hôpitaux de Paris"),
        ("NIH CLINICAL CENTER", "NIH Clinical Center"),
    ],
)
def test_sponsor_case(raw, cased):
    assert sponsor_case(raw) == cased


def test_normalize_space_drops_invisible_characters():
    assert normalize_space("  a\u00a0b\u200b c\n\td ") == "a b c d"


def test_decode_rejects_empty_binary_and_pdf():
    for content, reason in [
        (b"", "empty page: 0 bytes"),
        (b"  \n\t ", "empty page: whitespace only"),
        (b"%PDF-1.7 ...", "not a web page: content is a PDF document"),
        (b"\x1f\x8b\x08\x00rest", "not a web page: content is gzip-compressed data"),
    ]:
        with pytest.raises(UndecodablePage, match=reason):
            decode_page(content)
    with pytest.raises(UndecodablePage, match="control/replacement characters"):
        decode_page(bytes(range(256)) * 20)


def test_decode_honours_bom_and_declared_charset():
    assert decode_page("\ufeffStatus".encode("utf-8")).text == "Status"
    gbk = '<html><head><meta charset="gbk"></head><body>临床试验</body></html>'.encode("gbk")
    assert "临床试验" in decode_page(gbk).text
    latin = "<html><body>Hôpital Européen</body></html>".encode("latin-1")
    assert "Hôpital Européen" in decode_page(latin).text  # not UTF-8, so UnicodeDammit decides


def test_html_outline_reads_what_a_reader_sees():
    html = """<html><head><title>A | Site</title><link rel="canonical" href="https://x/y">
      <script>var status = "Enrolling";</script><style>.a{}</style></head>
      <body><nav>Menu</nav><h1>The <em>Title</em></h1>
      <div hidden>secret</div><p style="display: none">also hidden</p>
      <ol><li>First<ul><li>nested</li></ul></li><li><p>Second</p><p>continued</p></li></ol>
      <dl><dt>Allocation</dt><dd>N/A</dd></dl><template>tpl</template>tail</body></html>"""
    o = html_outline(html)
    assert (o.title, o.canonical) == ("A | Site", "https://x/y")
    assert [l.text for l in o.lines] == ["Menu", "The Title", "First", "nested", "Second", "continued",
                                         "Allocation", "N/A", "tail"]
    by_text = {l.text: l for l in o.lines}
    assert by_text["The Title"].heading == 1
    assert (by_text["First"].depth, by_text["nested"].depth) == (1, 2)
    assert by_text["Second"].item == by_text["continued"].item and not by_text["continued"].starts_item
    assert "Enrolling" not in " ".join(l.text for l in o.lines)


def test_text_outline_marks_capture_bullets_and_indentation():
    o = text_outline("Title\n\n  1. first\n    a. sub\n- • flat item\n")
    assert [(l.text, l.depth, bool(l.item)) for l in o.lines] == [
        ("Title", 0, False), ("1. first", 1, False), ("a. sub", 2, False), ("• flat item", 1, True)]


def test_deeply_nested_markup_does_not_crash():
    html = "<html><body>" + "<div>" * 100_000 + "deep" + "</div>" * 100_000 + "</body></html>"
    o = html_outline(html)
    assert isinstance(o.lines, tuple)


def test_bidirectional_controls_never_reach_the_text():
    """A title carrying U+202E (right-to-left override) would display reversed and hide what
    it holds; it is stored without the controls, like zero-width characters."""
    import datetime as dt

    from pipeline.ingest import raw_page_from_bytes
    from pipeline.parse import parse_page
    from tests.hostile.corpus import GOOD_VEEVA_BODY, veeva

    page = veeva(GOOD_VEEVA_BODY).replace(
        b"<h1>A Trial of Something</h1>",
        "<h1>A Trial of \u202eSomething\u202c \u2066Else\u2069\u200f</h1>".encode())
    parsed = parse_page(raw_page_from_bytes("https://ctv.veeva.com/study/x", page,
                                            dt.datetime(2026, 1, 1)))
    assert parsed.record is not None
    assert parsed.record.brief_title == "A Trial of Something Else"
