"""Cuts at word and sentence boundaries (newsletter/wording.py)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from newsletter.wording import ELLIPSIS, excerpt, fit, join_words, sentence_ends

WORDS = st.lists(
    st.sampled_from(["alpha", "beta.", "e.g.", "Fig.", "3.5", "et al.", "U.S.", "Gamma", "x" * 40]),
    min_size=1,
    max_size=80,
).map(" ".join)


@given(text=st.text(max_size=200), limit=st.integers(min_value=0, max_value=120))
@example(text="Supercalifragilistic words", limit=5)
def test_fit_stays_within_the_limit_and_keeps_the_start(text: str, limit: int) -> None:
    shown = fit(text, limit)
    assert len(shown) <= limit
    flat = " ".join(text.split())
    if len(flat) <= limit:
        assert shown == flat
    else:
        assert shown.endswith(ELLIPSIS) or limit == 0
        assert flat.startswith(shown.removesuffix(ELLIPSIS))


@given(text=WORDS)
def test_an_excerpt_is_the_start_of_the_abstract(text: str) -> None:
    cut = excerpt(text, 120)
    assert len(cut) <= 120 * 1.15 + 1
    assert text.startswith(cut.removesuffix(ELLIPSIS).rstrip(" ,;:.-"))


def test_sentences_end_where_a_reader_sees_them_end() -> None:
    text = (
        "We use distillation, e.g. from GPT-4 (see Fig. 3). Results improve 3.5 points "
        "over Smith et al. in 2024. A. Author agrees! Does it scale? Yes."
    )
    ends = [text[:end].rsplit(" ", 1)[-1] for end in sentence_ends(text)]
    assert ends == ["3).", "2024.", "agrees!", "scale?", "Yes."]
    assert excerpt(text, 60) == "We use distillation, e.g. from GPT-4 (see Fig. 3)."
    short = "One sentence that is short. " + "Then a very long one " * 20 + "ends."
    assert excerpt(short, 100).endswith(ELLIPSIS)  # one short sentence is not enough


def test_join_words() -> None:
    assert [join_words(x) for x in ([], ["a"], ["a", "b"], ["a", "b", "c"])] == [
        "",
        "a",
        "a and b",
        "a, b and c",
    ]
