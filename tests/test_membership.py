"""Joining and leaving keep the YAML file and the database in step."""

from __future__ import annotations

from pathlib import Path

from newsletter.membership import join, leave, memberships
from newsletter.settings import load_settings
from newsletter.store import Store
from newsletter.subscribers import SubscriberChange, load_subscribers


def test_leave_records_at_once_and_marks_the_file(project: Path) -> None:
    settings = load_settings()
    with Store(settings.database_path) as store:
        left = leave(settings, store, "Ada@Example.org", source="test")
        assert left.newly_recorded and left.file_updated and left.listed
        assert store.unsubscribed() == {"ada@example.org"}
        again = leave(settings, store, "ada@example.org", source="test")
        assert not again.newly_recorded and not again.file_updated  # harmless
        states = {m.subscriber.email: (m.state, m.active) for m in memberships(settings, store)}
    assert states["ada@example.org"] == ("unsubscribed", False)
    assert states["paused@example.org"] == ("paused", False)
    assert states["grace@example.org"] == ("active", True)
    assert not next(
        s for s in load_subscribers("subscribers.yaml") if s.key == "ada@example.org"
    ).active


def test_leave_holds_even_when_the_file_cannot_be_edited(project: Path) -> None:
    settings = load_settings()
    broken = Path("subscribers.yaml").read_text().replace("max_papers: 8", "max_paper: 8")
    Path("subscribers.yaml").write_text(broken)
    with Store(settings.database_path) as store:
        left = leave(settings, store, "ada@example.org", source="test")
        assert left.file_problem and "max_paper" in left.file_problem
        assert "ada@example.org" in store.unsubscribed()  # the send-time record holds
    assert Path("subscribers.yaml").read_text() == broken


def test_join_after_leaving_clears_the_record(project: Path) -> None:
    settings = load_settings()
    with Store(settings.database_path) as store:
        leave(settings, store, "grace@example.org", source="test")
        result = join(settings, store, SubscriberChange("grace@example.org", topics=("speech",)))
        assert result.subscriber.active
        assert store.unsubscribed() == set()
        grace = next(
            m for m in memberships(settings, store) if m.subscriber.key == "grace@example.org"
        )
    assert grace.active and [t.topic for t in grace.subscriber.topics] == ["speech"]
