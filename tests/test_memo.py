"""The short-string memo behind fold/to_code/parse_place: same answers, bounded cache."""

from pipeline.clean import memo as memo_mod
from pipeline.clean.memo import short_text_memo
from pipeline.clean.text import fold
from pipeline.extract.criteria import strip_marker
from pipeline.extract.fields import parse_place
from pipeline.vocab import to_code


def test_memo_returns_the_functions_answer_and_caches_only_short_texts():
    calls: list[str] = []

    @short_text_memo
    def upper(text: str) -> str:
        calls.append(text)
        return text.upper()

    long_text = "x" * (memo_mod.SHORT + 1)
    assert [upper("ab"), upper("ab"), upper(long_text), upper(long_text)] == ["AB", "AB", long_text.upper(),
                                                                             long_text.upper()]
    assert calls == ["ab", long_text, long_text]  # the short one computed once, the long one twice
    assert set(upper.cache) == {"ab"}


def test_memo_stops_growing_at_its_cap(monkeypatch):
    monkeypatch.setattr(memo_mod, "MAX_ENTRIES", 3)

    @short_text_memo
    def same(text: str) -> str:
        return text

    for t in "abcdef":
        assert same(t) == t
    assert len(same.cache) == 3


def test_memoized_helpers_answer_the_same_on_repeat_and_for_none_results():
    for _ in range(2):
        assert fold("Inclusion Criteria:") == "inclusion criteria"
        assert to_code("overall_status", "Recruiting") == "RECRUITING"
        assert to_code("overall_status", "Not a status") is None
        assert parse_place("Hangzhou, Zhejiang, China") == ("Hangzhou", "Zhejiang", "China")
        assert parse_place("Zhejiang University Hospital") is None


def test_strip_marker_fast_path_leaves_words_and_still_strips_letter_markers():
    assert strip_marker("Age 18 to 75 years, inclusive.") == ("Age 18 to 75 years, inclusive.", None, None)
    assert strip_marker("b. ECOG 0-1") == ("ECOG 0-1", "alpha", 2)
    assert strip_marker("iv) no HIV") == ("no HIV", "roman", 4)
    assert strip_marker("Patients (adults) aged 18") == ("Patients (adults) aged 18", None, None)
