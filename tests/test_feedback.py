"""Feedback marks change what that reader gets next: similar papers rise, papers like a
rejected one fall or drop, the why-line names the marked paper; other readers unchanged."""

from __future__ import annotations

from datetime import date

from newsletter.dumps import Paper, paper_key
from newsletter.feedback import Mark, adjust, rerank
from newsletter.ranking import Ranker
from newsletter.subscribers import Subscriber

TODAY = date(2026, 11, 20)


def paper(title: str, abstract: str) -> Paper:
    return Paper(key=paper_key(title), title=title, abstract=abstract, published=TODAY)


SPEECH_A = paper(
    "Streaming speech recognition with transducers",
    "We train a streaming transducer for speech recognition on noisy audio with low latency.",
)
SPEECH_B = paper(
    "Low latency transducers for noisy audio",
    "A streaming transducer recognises noisy audio with low latency and few parameters.",
)
MUSIC = paper(
    "Speech recognition for song lyrics",
    "Recognition of sung lyrics in music recordings with guitar and drums accompaniment.",
)
MUSIC_2 = paper(
    "Transcribing sung lyrics in music recordings",
    "Sung lyrics in music recordings with drums and guitar accompaniment are transcribed; "
    "speech recognition helps.",
)
OTHER = paper(
    "Graph neural networks for molecules",
    "Message passing over molecular graphs predicts chemical properties.",
)
POOL = [SPEECH_A, SPEECH_B, MUSIC, MUSIC_2, OTHER]


def reader(*topics: str, exclude: tuple[str, ...] = ()) -> Subscriber:
    return Subscriber.model_validate(
        {"email": "kim@example.org", "topics": list(topics), "exclude": list(exclude)}
    )


def test_more_like_this_adds_a_similar_paper_no_topic_matched() -> None:
    ranker = Ranker(POOL, today=TODAY)
    kim = reader("speech recognition")
    before = [p.paper.key for p in ranker.rank([kim])[0]]
    assert SPEECH_B.key not in before  # its words are not the topic's
    after = rerank(ranker, kim, [Mark(SPEECH_A, "more", "")], delivered={SPEECH_A.key})
    keys = [p.paper.key for p in after]
    assert SPEECH_B.key in keys
    added = next(p for p in after if p.paper.key == SPEECH_B.key)
    assert added.why == f'Like "{SPEECH_A.title}", which you marked'
    assert OTHER.key not in keys  # likeness, not anything at all


def test_less_like_this_drops_papers_like_the_rejected_one() -> None:
    ranker = Ranker(POOL, today=TODAY)
    kim = reader("speech recognition")
    before = [p.paper.key for p in ranker.rank([kim])[0]]
    assert MUSIC_2.key in before
    after = rerank(ranker, kim, [Mark(MUSIC, "less", "")], delivered={MUSIC.key})
    keys = [p.paper.key for p in after]
    assert MUSIC_2.key not in keys  # like the rejected one: below the threshold
    assert SPEECH_A.key in keys  # the rest of the reader's topic stays


def test_excludes_hold_for_papers_added_by_likeness() -> None:
    ranker = Ranker(POOL, today=TODAY)
    kim = reader("speech recognition", exclude=("latency",))
    after = rerank(ranker, kim, [Mark(SPEECH_A, "more", "")], delivered={SPEECH_A.key})
    assert SPEECH_B.key not in [p.paper.key for p in after]


def test_adjust_leaves_readers_without_marks_alone() -> None:
    ranker = Ranker(POOL, today=TODAY)
    kim = reader("speech recognition")
    ada = Subscriber.model_validate({"email": "ada@example.org", "topics": ["speech recognition"]})
    ranked = ranker.rank([kim, ada])
    adjusted = adjust(ranker, [kim, ada], ranked, {kim.key: [Mark(MUSIC, "less", "")]})
    assert adjusted[1] == ranked[1]
    assert [p.paper.key for p in adjusted[0]] != [p.paper.key for p in ranked[0]]
