"""The outline walk's edge cases: what hides, what breaks a line, what joins one."""

from pipeline.clean.outline import html_outline


def _texts(body: str) -> list[str]:
    return [line.text for line in html_outline(f"<html><body>{body}</body></html>").lines]


def test_hidden_block_drops_its_text_and_still_ends_the_line_before_its_tail():
    assert _texts("<p>before<div hidden>secret</div>after</p>") == ["before", "after"]
    assert _texts('<p>a<div style="display: none">x</div>b</p>') == ["a", "b"]


def test_hidden_inline_and_skipped_elements_keep_their_tails_on_the_same_line():
    assert _texts('<p>a<span aria-hidden="true">x</span>b</p>') == ["ab"]
    assert _texts("<p>Phase<script>var x = 1;</script> 2</p>") == ["Phase 2"]
    assert _texts('<p>one<span style="visibility:hidden">two</span> three</p>') == ["one three"]


def test_visible_styles_and_aria_hidden_false_stay():
    assert _texts('<p style="color: red">red</p><p aria-hidden="false">shown</p>') == ["red", "shown"]


def test_br_breaks_lines_and_list_items_carry_depth_and_ids():
    lines = html_outline("<html><body><ul><li>one<br>still one<ul><li>nested</li></ul></li>"
                         "<li>two</li></ul></body></html>").lines
    assert [(x.text, x.depth, x.starts_item) for x in lines] == [
        ("one", 1, True), ("still one", 1, False), ("nested", 2, True), ("two", 1, True)]
    assert lines[0].item == lines[1].item != lines[2].item


def test_a_hidden_document_has_no_lines():
    assert html_outline('<html hidden><body><p>x</p></body></html>').lines == ()


def test_headings_and_cells_are_marked():
    lines = html_outline("<html><body><h2>Title</h2><table><tr><td>a</td><td>b</td></tr></table>"
                         "</body></html>").lines
    assert [(x.text, x.heading, x.cell) for x in lines] == [("Title", 2, False), ("a", 0, True), ("b", 0, True)]
