"""Editing the subscribers YAML in place: comments and layout outside the edited entry
survive byte for byte, bad edits leave the file untouched and say why, edits serialise."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from newsletter.errors import SubscribersError
from newsletter.subscribers import (
    SubscriberChange,
    load_subscribers,
    set_active,
    subscribe,
)

REPO = Path(__file__).resolve().parent.parent

COMMENTED = """\
# Lab digest subscribers. Keep this list sorted by team.
# (Reviewed every quarter.)

subscribers:
  # --- vision team ---
  - email: ada@example.org   # team lead
    name: Ada
    topics:
      - knowledge distillation
      - {topic: continual learning, weight: 2}   # her main project
    exclude: [robotics]
    frequency: daily

  # Grace asked for weekly mail only (2026-03).
  - email: grace@example.org
    name: "Grace Hopper"
    topics: [machine translation, low-resource languages]
    frequency: weekly
    # active: false   <- do not uncomment, see ticket 12

  # --- theory team ---
  - email: alan@example.org
    topics:
      - reinforcement learning
    max_papers: 5
# end of list: new people go above this line
"""


def write(tmp_path: Path, text: str = COMMENTED) -> Path:
    folder = tmp_path / "config"
    folder.mkdir(exist_ok=True)
    path = folder / "subscribers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def entry_lines(text: str, email: str) -> tuple[int, int]:
    """[first, end) line numbers of one entry's own lines (dash line to last content line)."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"- email: {email}"))
    end = first + 1
    while end < len(lines) and (
        lines[end].startswith("    ") and not lines[end].lstrip().startswith("#")
    ):
        end += 1
    return first, end


def assert_only_entry_changed(before: str, after: str, email: str) -> None:
    first, end = entry_lines(before, email)
    new_first, new_end = entry_lines(after, email)
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert new[:new_first] == old[:first]  # everything above, byte for byte
    assert new[new_end:] == old[end:]  # everything below, byte for byte


def test_update_keeps_every_comment_outside_the_entry(tmp_path: Path) -> None:
    path = write(tmp_path)
    result = subscribe(
        path,
        SubscriberChange(
            "Grace@Example.org", topics=("machine translation", "speech"), max_papers=3
        ),
    )
    assert result.action == "updated"
    after = path.read_text()
    assert_only_entry_changed(COMMENTED, after, "grace@example.org")
    grace = next(s for s in load_subscribers(path) if s.key == "grace@example.org")
    assert [t.topic for t in grace.topics] == ["machine translation", "speech"]
    assert grace.max_papers == 3 and grace.frequency == "weekly"
    # The entry's own comment line and flow style stay too.
    assert "    # active: false   <- do not uncomment, see ticket 12\n" in after
    assert "topics: [machine translation, speech]" in after


def test_topic_weights_survive_an_update(tmp_path: Path) -> None:
    path = write(tmp_path)
    subscribe(path, SubscriberChange("ada@example.org", topics=("continual learning", "speech")))
    ada = load_subscribers(path)[0]
    assert [(t.topic, t.weight) for t in ada.topics] == [
        ("continual learning", 2.0),
        ("speech", 1.0),
    ]
    text = path.read_text()
    assert "  - email: ada@example.org   # team lead\n" in text  # its column too


def test_unsubscribe_adds_active_false_and_nothing_else(tmp_path: Path) -> None:
    path = write(tmp_path)
    result = set_active(path, "ada@example.org", False)
    assert result is not None and result.action == "updated"
    after = path.read_text()
    assert_only_entry_changed(COMMENTED, after, "ada@example.org")
    assert after.replace("    active: false\n", "", 1) == COMMENTED
    assert load_subscribers(path)[0].active is False
    # Twice is harmless: the file is not even rewritten.
    stamp = path.stat().st_mtime_ns
    again = set_active(path, "ada@example.org", False)
    assert again is not None and again.action == "unchanged"
    assert path.stat().st_mtime_ns == stamp
    assert set_active(path, "nobody@example.org", False) is None


def test_new_subscriber_goes_after_the_last_entry(tmp_path: Path) -> None:
    path = write(tmp_path)
    result = subscribe(
        path,
        SubscriberChange(
            "new@example.org",
            topics=("graph neural networks",),
            exclude=("chemistry",),
            name="Newt",
            frequency="weekly",
            max_papers=4,
        ),
    )
    assert result.action == "created"
    after = path.read_text()
    assert after.startswith(COMMENTED[: COMMENTED.index("# end of list")])
    assert after.endswith("# end of list: new people go above this line\n")
    newt = load_subscribers(path)[-1]
    assert (newt.email, newt.name, newt.frequency, newt.max_papers) == (
        "new@example.org",
        "Newt",
        "weekly",
        4,
    )
    assert newt.exclude == ("chemistry",) and newt.topics[0].topic == "graph neural networks"


def test_subscribing_again_resumes_a_paused_entry(tmp_path: Path) -> None:
    path = write(tmp_path)
    set_active(path, "alan@example.org", False)
    result = subscribe(
        path, SubscriberChange("alan@example.org", topics=("reinforcement learning",))
    )
    assert result.action == "updated" and result.subscriber.active
    assert path.read_text() == COMMENTED.replace(
        "max_papers: 5\n", "max_papers: 5\n    active: true\n"
    )


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (SubscriberChange("ada@example.org", max_papers=0), "max_papers"),
        (SubscriberChange("not-an-address", topics=("x",)), "not a valid email address"),
        (SubscriberChange("eve@example.org", topics=("   ",)), "topic"),
        (SubscriberChange("eve@example.org"), "needs at least one --topic"),
        (SubscriberChange("grace@example.org", frequency="hourly"), "frequency"),
    ],
)
def test_an_invalid_edit_leaves_the_file_untouched(
    tmp_path: Path, change: SubscriberChange, says: str
) -> None:
    path = write(tmp_path)
    stamp = path.stat().st_mtime_ns
    with pytest.raises(SubscribersError) as caught:
        subscribe(path, change)
    message = str(caught.value)
    assert str(path) in message and says in message and "nothing was changed" in message
    assert path.read_text() == COMMENTED and path.stat().st_mtime_ns == stamp
    assert [p.name for p in path.parent.iterdir() if p.name != "subscribers.yaml.lock"] == [
        "subscribers.yaml"
    ]  # no temporary file left behind


def test_a_file_that_is_already_invalid_is_not_edited(tmp_path: Path) -> None:
    broken = COMMENTED.replace("max_papers: 5", "max_paper: 5")
    path = write(tmp_path, broken)
    with pytest.raises(SubscribersError) as caught:
        subscribe(path, SubscriberChange("new@example.org", topics=("x",)))
    typo_line = broken.splitlines().index("    max_paper: 5") + 1
    assert caught.value.line == typo_line and "max_paper" in str(caught.value)
    assert path.read_text() == broken


def test_empty_lists_get_their_first_entry(tmp_path: Path) -> None:
    for text in ("# nobody yet\nsubscribers:\n", "subscribers: []  # none\n"):
        path = write(tmp_path, text)
        subscribe(path, SubscriberChange("first@example.org", topics=("speech",)))
        (first,) = load_subscribers(path)
        assert first.email == "first@example.org"
        assert path.read_text().startswith(text.split("subscribers")[0])


def test_concurrent_edits_are_serialised(tmp_path: Path) -> None:
    path = write(tmp_path)
    errors: list[BaseException] = []

    def add(number: int) -> None:
        try:
            subscribe(path, SubscriberChange(f"person{number}@example.org", topics=("speech",)))
        except BaseException as exc:  # collected and re-checked in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    emails = {s.email for s in load_subscribers(path)}
    assert {f"person{n}@example.org" for n in range(12)} <= emails  # no edit was lost
    assert path.read_text().startswith(COMMENTED[: COMMENTED.index("# end of list")])


def test_file_mode_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path)
    path.chmod(0o640)
    set_active(path, "ada@example.org", False)
    assert path.stat().st_mode & 0o777 == 0o640


words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz -", min_size=1, max_size=20).filter(
    lambda w: w.strip(" -") != ""
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    who=st.sampled_from(
        ["ada@example.org", "grace@example.org", "alan@example.org", "barbara@example.org"]
    ),
    topics=st.lists(words, min_size=1, max_size=3, unique_by=lambda w: " ".join(w.split())),
    max_papers=st.none() | st.integers(1, 100),
    frequency=st.none() | st.sampled_from(["daily", "weekly"]),
)
@example(who="ada@example.org", topics=["a: b"], max_papers=None, frequency=None)
def test_any_update_of_the_example_file_touches_only_its_entry(
    tmp_path: Path, who: str, topics: list[str], max_papers: int | None, frequency: str | None
) -> None:
    original = (REPO / "subscribers.example.yaml").read_text()
    path = write(tmp_path, original)
    change = SubscriberChange(who, topics=tuple(topics), max_papers=max_papers, frequency=frequency)
    subscribe(path, change)
    after = path.read_text()
    assert_only_entry_changed(original, after, who)
    subscriber = next(s for s in load_subscribers(path) if s.email == who)
    assert [t.topic for t in subscriber.topics] == [" ".join(t.split()) for t in topics]
    if max_papers is not None:
        assert subscriber.max_papers == max_papers
    if frequency is not None:
        assert subscriber.frequency == frequency
