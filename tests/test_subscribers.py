"""The subscribers YAML contract: valid files load, mistakes name file, line and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from newsletter.errors import SubscribersError
from newsletter.subscribers import (
    Subscriber,
    _NotFast,
    _parse_fast,
    load_subscribers,
    normalized_email,
    parse_subscribers,
    parse_subscribers_round_trip,
    read_unsubscribe_token,
    unsubscribe_token,
)

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "subs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_file_loads_with_defaults() -> None:
    subs = load_subscribers(REPO / "subscribers.example.yaml")
    ada = next(s for s in subs if s.email == "ada@example.org")
    assert [t.topic for t in ada.topics] == ["knowledge distillation", "continual learning"]
    assert [t.weight for t in ada.topics] == [1.0, 2.0]
    assert ada.exclude == ("robotics",)
    assert ada.max_papers == 8
    grace = next(s for s in subs if s.email == "grace@example.org")
    assert grace.max_papers == 10 and grace.frequency == "daily" and grace.active
    assert any(not s.active for s in subs)


def test_typo_in_a_key_names_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers:\n"
        "  - email: ada@example.org\n"
        "    topics: [distillation]\n"
        "  - email: bob@example.org\n"
        "    topics: [robots]\n"
        "    max_paper: 4\n",
    )
    with pytest.raises(SubscribersError) as caught:
        load_subscribers(path)
    message = str(caught.value)
    assert f"{path}:6:" in message
    assert "max_paper" in message and "max_papers" in message  # says what is allowed
    assert caught.value.line == 6 and caught.value.field == "max_paper"


def test_bad_email_names_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers:\n  - email: ada@example.org\n    topics: [a]\n"
        "  - email: not-an-address\n    topics: [b]\n",
    )
    with pytest.raises(SubscribersError) as caught:
        load_subscribers(path)
    assert caught.value.line == 4
    assert caught.value.field == "email"
    assert "not-an-address" in str(caught.value)


def test_missing_topics_and_empty_topic_are_errors(tmp_path: Path) -> None:
    with pytest.raises(SubscribersError, match="topics.*required"):
        load_subscribers(write(tmp_path, "subscribers:\n  - email: a@example.org\n"))
    with pytest.raises(SubscribersError) as caught:
        load_subscribers(
            write(tmp_path, "subscribers:\n  - email: a@example.org\n    topics: []\n")
        )
    assert caught.value.line == 3


def test_bad_values_are_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers:\n  - email: a@example.org\n    topics: [x]\n    frequency: hourly\n",
    )
    with pytest.raises(SubscribersError) as caught:
        load_subscribers(path)
    assert caught.value.line == 4 and "frequency" in str(caught.value)


def test_duplicate_address_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "subscribers:\n  - email: a@example.org\n    topics: [x]\n"
        "  - email: A@Example.org\n    topics: [y]\n",
    )
    with pytest.raises(SubscribersError, match="listed twice"):
        load_subscribers(path)


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "subscribers:\n  - email: a@example.org\n    topics: [x\n  - oops\n")
    with pytest.raises(SubscribersError) as caught:
        load_subscribers(path)
    assert str(path) in str(caught.value) and caught.value.line is not None


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(SubscribersError, match="subscribers.example.yaml"):
        load_subscribers(tmp_path / "absent.yaml")


def test_name_with_newline_is_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'subscribers:\n  - email: a@example.org\n    name: "Eve\\r\\nBcc: x@evil.org"\n'
        "    topics: [x]\n",
    )
    (subscriber,) = load_subscribers(path)
    assert subscriber.name == "Eve Bcc: x@evil.org"


def test_unsubscribe_tokens_round_trip_and_reject_forgeries() -> None:
    token = unsubscribe_token("Ada@Example.org", "secret-one")
    assert read_unsubscribe_token(token, "secret-one") == "ada@example.org"
    assert read_unsubscribe_token(token, "another-secret") is None
    assert read_unsubscribe_token(token[:-3], "secret-one") is None
    assert read_unsubscribe_token("garbage", "secret-one") is None


# --- the fast reader against the round-trip reader ---------------------------------------

_TRICKY_SCALARS = [
    "no", "yes", "on", "off", "y", "n", "true", "False", "TRUE", "~", "null", "", "010",
    "0o17", "0x1F", "0b101", "1_000", "1e3", ".5", "1.50", "-2", "+3", "0", "12:30",
    "2024-01-01", "<<", "=", ".inf", ".NaN", "é", "'quoted'", '"dq: x"', "[a, b]",
    "{topic: x}", "!!str 5", "&a x", "*a", "a #comment", "Zoë Ørsted",
]  # fmt: skip
_FIELDS = {
    "name": "    name: {}",
    "topic": "    topics: [{}]",
    "weight": "    topics: [{{topic: graphs, weight: {}}}]",
    "exclude": "    exclude: [{}]",
    "max_papers": "    max_papers: {}",
    "active": "    active: {}",
    "frequency": "    frequency: {}",
}


def _outcome(parse: Callable[[str], list[Subscriber]], text: str) -> object:
    try:
        return parse(text)
    except SubscribersError as exc:
        return str(exc)


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(sorted(_FIELDS)),
    value=st.sampled_from(_TRICKY_SCALARS) | st.text("ab01.-:#'\" ,éTtNn~", max_size=8),
    twice=st.booleans(),
)
def test_fast_reader_agrees_with_the_round_trip_reader(field: str, value: str, twice: bool) -> None:
    entry = ["  - email: ada@example.org", "    topics: [graphs]"]
    if field in ("topic", "weight"):
        entry = entry[:1]
    entry.append(_FIELDS[field].format(value))
    text = "subscribers:\n" + "\n".join(entry * (2 if twice else 1)) + "\n"
    fast = _outcome(parse_subscribers, text)
    assert fast == _outcome(parse_subscribers_round_trip, text)
    try:
        quick = _parse_fast(text)
    except _NotFast:
        return
    assert quick == parse_subscribers_round_trip(text)  # no silent disagreement


def test_fast_reader_takes_the_common_file_and_hands_over_the_rest() -> None:
    text = (REPO / "subscribers.example.yaml").read_text(encoding="utf-8")
    assert _parse_fast(text) == parse_subscribers_round_trip(text)
    duplicate_key = "subscribers:\n  - email: a@example.org\n    topics: [x]\n    topics: [y]\n"
    with pytest.raises(_NotFast):
        _parse_fast(duplicate_key)
    with pytest.raises(SubscribersError):
        parse_subscribers(duplicate_key)


@given(
    st.one_of(
        st.emails(),
        st.text(alphabet="abcXYZ09.-_+@!#'\"äü ", min_size=1, max_size=40),
        st.builds(
            lambda local, domain, tld: f"{local}@{domain}.{tld}",
            st.text(alphabet="aB0._-+", min_size=1, max_size=70),
            st.text(alphabet="aB0.-", min_size=1, max_size=70),
            st.sampled_from(["org", "COM", "test", "Local", "x", "io", "localhost", "a1"]),
        ),
    )
)
@example("ada@example.org")
@example("Ada.Lovelace+digest@Lab.Example.ORG")
@example("a..b@example.org")
@example(".a@example.org")
@example("a@-example.org")
@example("a@example.test")
@example("x" * 65 + "@example.org")
def test_everyday_address_shortcut_agrees_with_email_validator(address: str) -> None:
    try:
        expected: str | None = validate_email(
            address.strip(), check_deliverability=False
        ).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = normalized_email(address)
    except ValueError:
        got = None
    assert got == expected


def test_large_files_are_read_in_two_halves_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import newsletter.subscribers as subscribers_module

    lines = ["# a lab's list", "subscribers:"]
    for n in range(40):
        lines += [
            f"  - email: reader{n}@example.org  # reader {n}",
            f"    name: Reader {n}",
            "    topics:",
            "      - knowledge distillation",
            f"      - {{topic: topic {n}, weight: {1 + n % 3}}}",
            "    frequency: " + ("weekly" if n % 4 == 0 else "daily"),
        ]
    text = "\n".join(lines) + "\n"
    monkeypatch.setattr(subscribers_module, "SPLIT_MIN_CHARS", 100)
    halves = subscribers_module._halves(text)
    assert halves is not None and "reader0@" in halves[0] and "reader39@" in halves[1]
    assert subscribers_module.parse_subscribers(text) == (
        subscribers_module.parse_subscribers_round_trip(text)
    )
    # A mistake in the second half still gets its own line number in the whole file.
    broken = text.replace("    name: Reader 33\n", "    nmae: Reader 33\n")
    path = tmp_path / "big.yaml"
    path.write_text(broken)
    with pytest.raises(SubscribersError) as caught:
        load_subscribers(path)
    assert caught.value.line == broken.splitlines().index("    nmae: Reader 33") + 1
