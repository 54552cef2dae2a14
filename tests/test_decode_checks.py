"""decode_page's cheap checks give the answers the regexes they replaced gave."""

import pytest

from pipeline.clean.decode import _CONTROL, UndecodablePage, _controls, decode_page


@pytest.mark.parametrize("text", ["a\x00b\x1f\x7f\n\t\r c", "é\x01ü\u2028", "", "\x0b\x0c", "plain"])
def test_control_count_matches_the_regex(text):
    assert _controls(text) == len(_CONTROL.findall(text))


@pytest.mark.parametrize("content", [b"\xef\xbb\xbf", b"\xef\xbb\xbf \n "])
def test_a_bom_with_nothing_after_it_is_an_empty_page(content):
    with pytest.raises(UndecodablePage, match="empty page"):
        decode_page(content)


def test_binary_noise_is_refused_and_mojibake_is_still_repaired():
    with pytest.raises(UndecodablePage, match="control/replacement"):
        decode_page(b"<html>" + bytes(range(1, 9)) * 200 + b"</html>")
    page = decode_page("<html><body>CafÃ© SÃ£o Paulo â€” Phase 2</body></html>".encode())
    assert "Café São Paulo — Phase 2" in page.text
    assert any("mojibake" in p for p in page.problems)
