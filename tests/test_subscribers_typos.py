"""A mistyped key in subscribers.yaml is reported as that unknown key, at its own line,
with the key it most likely meant: by the fast reader and the round-trip reader alike,
and by the commands that read the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from newsletter.errors import SubscribersError
from newsletter.store import Store
from newsletter.subscribers import (
    Subscriber,
    load_subscribers,
    parse_subscribers,
    parse_subscribers_round_trip,
)

HEAD = "subscribers:\n  - email: ada@example.org\n    topics: [distillation]\n"


def errors_of(text: str) -> tuple[SubscribersError, SubscribersError]:
    """The error of the reader `load_subscribers` uses (libyaml first, the round-trip
    reader when anything is wrong) and of the round-trip reader alone."""
    with pytest.raises(SubscribersError) as fast:
        parse_subscribers(text, path="subscribers.yaml")
    with pytest.raises(SubscribersError) as slow:
        parse_subscribers_round_trip(text, path="subscribers.yaml")
    return fast.value, slow.value


def test_the_issues_example_topcis_on_line_5(tmp_path: Path) -> None:
    text = HEAD + "  - email: bob@example.org\n    topcis: [robotics]\n"
    fast, slow = errors_of(text)
    for error in (fast, slow):
        assert str(error) == "subscribers.yaml:5: unknown key 'topcis'; did you mean 'topics'?"
        assert error.line == 5 and error.field == "topcis"
    path = tmp_path / "subscribers.yaml"
    path.write_text(text)
    with pytest.raises(SubscribersError, match=r":5: unknown key 'topcis'; did you mean 'topics'"):
        load_subscribers(path)


# Typos these tests were not written against: each with the key it stands for (None: no
# known key is close) and the line it is on.
HELD_OUT = [
    ("    excludes: [robotics]\n", "excludes", "exclude"),
    ("    max_paper: 3\n", "max_paper", "max_papers"),
    ("    frequncy: weekly\n", "frequncy", "frequency"),
    ("    Topics: [speech]\n", "Topics", "topics"),
    ("    actve: false\n", "actve", "active"),
    ("    colour: blue\n", "colour", None),
    ("    unsubscribe_reason: moved\n", "unsubscribe_reason", None),
]


@pytest.mark.parametrize(("line", "key", "meant"), HELD_OUT)
def test_held_out_typos_name_their_own_line(line: str, key: str, meant: str | None) -> None:
    # The typo sits in the middle of the second entry, after a valid key.
    text = HEAD + "  - email: bob@example.org\n    name: Bob\n" + line + "    topics: [x]\n"
    fast, slow = errors_of(text)
    assert str(fast) == str(slow) and fast.line == slow.line == 6
    message = str(fast)
    assert message.startswith(f"subscribers.yaml:6: unknown key {key!r}")
    if meant is not None:
        assert message.endswith(f"did you mean {meant!r}?")
    else:
        assert "did you mean" not in message
        assert all(field in message for field in Subscriber.model_fields)  # what is allowed


def test_a_mistyped_required_key_is_not_reported_as_missing() -> None:
    fast, slow = errors_of(HEAD + "  - e-mail: bob@example.org\n    topics: [x]\n")
    for error in (fast, slow):
        assert str(error) == "subscribers.yaml:4: unknown key 'e-mail'; did you mean 'email'?"
        assert "required" not in str(error)


def test_a_typo_inside_a_topic_suggests_a_topics_key() -> None:
    text = HEAD + "  - email: bob@example.org\n    topics:\n      - {topic: asr, wieght: 2}\n"
    fast, slow = errors_of(text)
    for error in (fast, slow):
        assert str(error) == "subscribers.yaml:6: unknown key 'wieght'; did you mean 'weight'?"


def test_a_typo_of_the_top_level_key() -> None:
    fast, slow = errors_of("subscriber:\n  - email: ada@example.org\n    topics: [x]\n")
    for error in (fast, slow):
        assert error.line == 1
        assert "unknown key 'subscriber'; did you mean 'subscribers'?" in str(error)


# One edit of a known key (a letter dropped, doubled or two swapped) is recognised as
# that key, whichever key and wherever.
def edits(word: str) -> st.SearchStrategy[str]:
    positions = st.integers(min_value=0, max_value=len(word) - 2)
    dropped = positions.map(lambda i: word[:i] + word[i + 1 :])
    doubled = positions.map(lambda i: word[: i + 1] + word[i] + word[i + 1 :])
    swapped = positions.map(lambda i: word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    return st.one_of(dropped, doubled, swapped).filter(lambda typo: typo != word)


@st.composite
def typos(draw: st.DrawFn) -> tuple[str, str]:
    key = draw(st.sampled_from([k for k in Subscriber.model_fields if k != "email"]))
    return key, draw(edits(key))


@given(typos())
@example(("topics", "topcis"))
@example(("exclude", "exlude"))
def test_any_one_edit_of_a_key_is_recognised(case: tuple[str, str]) -> None:
    key, typo = case
    text = HEAD + f"  - email: bob@example.org\n    topics: [x]\n    {typo}: 1\n"
    fast, slow = errors_of(text)
    assert (
        str(fast)
        == str(slow)
        == (f"subscribers.yaml:6: unknown key {typo!r}; did you mean {key!r}?")
    )


def test_the_commands_report_the_typo_in_one_line(isolated: Path) -> None:
    (isolated / "subscribers.yaml").write_text(
        HEAD + "  - email: bob@example.org\n    topics: [x]\n    frequncy: weekly\n"
    )
    with Store(isolated / "newsletter.db"):  # these commands read a database that exists
        pass
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    for args in (["subscribers"], ["subscribe", "kim@example.org", "--topic", "audio"]):
        result = subprocess.run(
            [sys.executable, "-m", "newsletter", *args],
            cwd=isolated,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1
        (line,) = result.stderr.splitlines()
        assert line.endswith(":6: unknown key 'frequncy'; did you mean 'frequency'?"), line
        assert "subscribers.yaml" in line
