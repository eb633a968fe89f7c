"""The live subscriber list in the database, and the three-way merge of the operator's file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newsletter import roster
from newsletter.errors import SubscribersError
from newsletter.membership import leave
from newsletter.settings import Settings, load_settings
from newsletter.store import Store
from newsletter.subscribers import Subscriber

FILE = """\
# The lab's list. Comments stay.
subscribers:
  - email: ada@example.org   # first
    name: Ada
    topics: [knowledge distillation]
    max_papers: 5

  - email: bob@example.org
    topics:
      - speech recognition
    frequency: weekly

  - email: cy@example.org
    topics: [robotics]
    active: false
"""


@pytest.fixture
def settings(isolated: Path) -> Settings:
    Path("subscribers.yaml").write_text(FILE)
    return load_settings()


def web_subscriber(email: str, *topics: str, **fields: object) -> Subscriber:
    return Subscriber.model_validate({"email": email, "topics": list(topics), **fields})


def rewrite(path: Path, text: str) -> None:
    """Write the file as an editor would, with a modification time that surely differs."""
    before = path.stat().st_mtime_ns
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def by_key(settings: Settings, store: Store) -> dict[str, roster.Member]:
    return {m.subscriber.key: m for m in roster.members(settings, store)}


def test_import_makes_the_live_list(settings: Settings) -> None:
    with Store(settings.database_path) as store:
        members = roster.members(settings, store)
        assert [m.subscriber.email for m in members] == [
            "ada@example.org",
            "bob@example.org",
            "cy@example.org",
        ]
        assert [(m.state, m.origin) for m in members] == [
            ("active", "file"),
            ("active", "file"),
            ("paused", "file"),
        ]
        ada = members[0].subscriber
        assert (ada.name, ada.max_papers, [t.topic for t in ada.topics]) == (
            "Ada",
            5,
            ["knowledge distillation"],
        )
        assert [s.key for s in roster.receiving(settings, store)] == [
            "ada@example.org",
            "bob@example.org",
        ]


def test_unchanged_file_is_not_imported_again(settings: Settings) -> None:
    with Store(settings.database_path) as store:
        assert roster.sync(settings, store) is not None
        first = roster.revision(store)
        assert roster.sync(settings, store) is None  # same modification time and size
        path = settings.subscribers_file
        rewrite(path, path.read_text())  # touched, same bytes
        assert roster.sync(settings, store) is None
        assert roster.revision(store) == first


def test_web_change_survives_operator_edits_and_operator_edits_win(settings: Settings) -> None:
    path = settings.subscribers_file
    with Store(settings.database_path) as store:
        roster.sync(settings, store)
        # Ada changes her topics and number of papers on the web; Bob pauses.
        roster.update_preferences(
            store, web_subscriber("ada@example.org", "continual learning", max_papers=3, name="Ada")
        )
        roster.set_state(store, "bob@example.org", "paused")
        assert path.read_text() == FILE  # the web never writes the file

        # The operator edits Ada's name and Bob's frequency, and adds an entry.
        edited = FILE.replace("name: Ada", "name: Ada L.").replace(
            "frequency: weekly", "frequency: daily"
        )
        edited += "\n  - email: dee@example.org\n    topics: [vision]\n"
        rewrite(path, edited)
        members = by_key(settings, store)
        ada = members["ada@example.org"].subscriber
        assert ada.name == "Ada L."  # the operator's edit
        assert [t.topic for t in ada.topics] == ["continual learning"]  # the reader's
        assert ada.max_papers == 3  # the reader's
        bob = members["bob@example.org"]
        assert (bob.state, bob.subscriber.frequency) == ("paused", "daily")
        assert members["dee@example.org"].state == "active"

        # Now the operator changes Ada's topics in the file: the file wins that field.
        rewrite(path, edited.replace("[knowledge distillation]", "[graph neural networks]"))
        ada = by_key(settings, store)["ada@example.org"].subscriber
        assert [t.topic for t in ada.topics] == ["graph neural networks"]
        assert ada.max_papers == 3


def test_removed_entry_unsubscribes_and_returning_revives(settings: Settings) -> None:
    path = settings.subscribers_file
    with Store(settings.database_path) as store:
        roster.sync(settings, store)
        with store.transaction() as db:
            roster.activate(db, web_subscriber("web@example.org", "diffusion models"))
        without_bob = FILE.replace(
            "  - email: bob@example.org\n    topics:\n      - speech recognition\n"
            "    frequency: weekly\n\n",
            "",
        )
        rewrite(path, without_bob)
        members = by_key(settings, store)
        assert members["bob@example.org"].state == "unsubscribed"
        assert "bob@example.org" in store.unsubscribed()  # every send checks this record
        assert members["web@example.org"].state == "active"  # web sign-ups are untouched
        assert members["web@example.org"].origin == "web"
        rewrite(path, FILE)
        assert by_key(settings, store)["bob@example.org"].state == "active"
        assert "bob@example.org" not in store.unsubscribed()


def test_a_reader_who_left_stays_left_whatever_the_file_says(settings: Settings) -> None:
    path = settings.subscribers_file
    with Store(settings.database_path) as store:
        leave(settings, store, "bob@example.org", source="web")
        # leave() marked the entry `active: false`; the operator sets it back by hand.
        text = path.read_text()
        assert "active: false" in text.split("bob@example.org")[1].split("- email")[0]
        rewrite(path, FILE)
        assert by_key(settings, store)["bob@example.org"].state == "unsubscribed"


def test_operator_adds_a_web_reader_to_the_file(settings: Settings) -> None:
    path = settings.subscribers_file
    with Store(settings.database_path) as store:
        roster.sync(settings, store)
        with store.transaction() as db:
            roster.activate(db, web_subscriber("web@example.org", "diffusion models", max_papers=4))
        rewrite(path, FILE + "\n  - email: web@example.org\n    topics: [video generation]\n")
        web = by_key(settings, store)["web@example.org"]
        # The fields the entry sets win; the others keep the reader's choice.
        assert [t.topic for t in web.subscriber.topics] == ["video generation"]
        assert web.subscriber.max_papers == 4
        assert web.origin == "web" and web.in_file
        rewrite(path, FILE)  # taken out of the file again: a web reader stays subscribed
        web = by_key(settings, store)["web@example.org"]
        assert web.state == "active" and not web.in_file


def test_invalid_file_names_the_line_and_keeps_the_list(settings: Settings) -> None:
    path = settings.subscribers_file
    with Store(settings.database_path) as store:
        roster.sync(settings, store)
        rewrite(path, FILE.replace("max_papers: 5", "max_paper: 5"))
        with pytest.raises(SubscribersError) as error:
            roster.receiving(settings, store)
        assert "subscribers.yaml:6:" in str(error.value)
        # The web app goes on with the list it has.
        kept = roster.receiving(settings, store, strict=False)
        assert [s.key for s in kept] == ["ada@example.org", "bob@example.org"]


def test_missing_file_is_an_error_not_an_empty_list(settings: Settings) -> None:
    with Store(settings.database_path) as store:
        roster.sync(settings, store)
        settings.subscribers_file.unlink()
        with pytest.raises(SubscribersError, match="file not found"):
            roster.sync(settings, store)
        assert len(roster.receiving(settings, store, strict=False)) == 2


@pytest.mark.parametrize(
    "fields",
    [
        {"email": "a@example.org", "topics": ["x"]},
        {
            "email": "Ünï@Example.org",
            "name": "Ünï Code",
            "topics": ["speech", {"topic": "audio", "weight": 2}],
            "exclude": ["music"],
            "max_papers": 3,
            "frequency": "weekly",
            "active": False,
        },
    ],
)
def test_a_loaded_row_equals_the_validated_subscriber(fields: dict[str, object]) -> None:
    validated = Subscriber.model_validate(fields)
    loaded = roster.subscriber_of(roster.record_of(validated), active=validated.active)
    assert loaded == validated
    assert loaded.model_dump() == validated.model_dump()
    assert loaded.key == validated.key and hash(loaded.topics) == hash(validated.topics)
