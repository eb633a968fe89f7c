"""Load, validate and edit the subscribers YAML file, and sign unsubscribe tokens.

The YAML file is the user-facing contract (see `subscribers.example.yaml`). It is read
with ruamel.yaml so every error can name the line it comes from, and validated with
pydantic models that forbid unknown keys.
"""

from __future__ import annotations

import difflib
import fcntl
import io
import multiprocessing
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.resolver import implicit_resolvers
from ruamel.yaml.util import load_yaml_guess_indent

from newsletter import tokens
from newsletter.errors import SubscribersError

DEFAULT_MAX_PAPERS = 10


class Topic(BaseModel):
    """One interest: a word or a phrase, with a weight (default 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1)
    weight: float = Field(default=1.0, gt=0, le=100)

    @field_validator("topic")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("a topic must contain at least one word")
        return value


# The everyday address (ASCII dot-atom local part, ordinary host names) that
# email-validator would accept and return unchanged but for a lower-cased domain. It
# costs ~130 us per address, a quarter of loading 100k subscribers, so such addresses
# take this shortcut; anything else (quoted or non-ASCII parts, special-use domains,
# odd lengths) goes to email-validator. A test checks both agree.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EVERYDAY_ADDRESS = re.compile(rf"({_ATOM}(?:\.{_ATOM})*)@((?:{_LABEL}\.)+([A-Za-z]{{2,63}}))")
_SPECIAL_USE_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion", "test"})


def normalized_email(value: str) -> str:
    """The address as email-validator normalises it; ValueError says why it is invalid."""
    value = value.strip()
    match = _EVERYDAY_ADDRESS.fullmatch(value)
    if (
        match is not None
        and len(match[1]) <= 64
        and len(value) <= 254
        and match[3].lower() not in _SPECIAL_USE_TLDS
        and "--" not in match[2]  # "ab--" labels are reserved for IDNA
    ):
        return f"{match[1]}@{match[2].lower()}"
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value!r} is not a valid email address: {exc}") from exc


@lru_cache(maxsize=1024)
def ascii_domain(domain: str) -> str:
    """The domain as SMTP envelopes and 7-bit headers carry it: IDNA 2008 A-labels
    ("bücher.example" -> "xn--bcher-kva.example"), computed by email-validator as it
    does when it validates an address (Python's "idna" codec is IDNA 2003, which maps
    "straße" to "strasse", another domain). ValueError if the domain has no such form."""
    if domain.isascii():
        return domain
    try:
        # The validator converts a domain as part of an address: give it a plain one.
        return validate_email(f"postmaster@{domain}", check_deliverability=False).ascii_domain
    except EmailNotValidError as exc:
        raise ValueError(f"the domain {domain!r} has no ASCII (IDNA) form: {exc}") from exc


def smtp_address(email: str) -> tuple[str, bool]:
    """`email` as an SMTP envelope carries it (the domain in ASCII, see `ascii_domain`),
    and whether it needs SMTPUTF8: a non-ASCII local part has no ASCII form (RFC 6531),
    only a server that offers SMTPUTF8 takes it."""
    local, _, domain = email.rpartition("@")
    return f"{local}@{ascii_domain(domain)}", not local.isascii()


class Subscriber(BaseModel):
    """One recipient and what they want to read about."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str
    name: str | None = None
    topics: tuple[Topic, ...] = Field(min_length=1)
    exclude: tuple[str, ...] = ()
    max_papers: int = Field(default=DEFAULT_MAX_PAPERS, ge=1, le=100)
    frequency: Literal["daily", "weekly"] = "daily"
    active: bool = True

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return normalized_email(value)

    @field_validator("name")
    @classmethod
    def _one_line_name(cls, value: str | None) -> str | None:
        # A name ends up in the To header: keep it on one line, whatever the file says.
        return " ".join(value.split()) if value is not None else None

    @field_validator("topics", mode="before")
    @classmethod
    def _topics_as_objects(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list | tuple):
            return [{"topic": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("exclude", mode="before")
    @classmethod
    def _exclude_as_list(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("exclude")
    @classmethod
    def _clean_excludes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(" ".join(item.split()) for item in value)
        if any(not item for item in cleaned):
            raise ValueError("an exclude entry must contain at least one word")
        return cleaned

    @property
    def key(self) -> str:
        """The identity used by the database: the address, lower-cased."""
        return self.email.lower()


def _line_of(node: Any, path: Sequence[str | int]) -> int | None:
    """1-based line of the YAML node at `path` (a pydantic error location)."""
    line: int | None = None
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(node, CommentedMap | CommentedSeq):
        line = node.lc.line + 1
    return line


def _describe(location: Sequence[str | int]) -> str:
    return ".".join(str(part) for part in location) or "(entry)"


def unknown_key_message(key: str, known: Sequence[str]) -> str:
    """`unknown key 'topcis'; did you mean 'topics'?`, or the keys there are when none
    is close."""
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unknown key {key!r}; did you mean {close[0]!r}?"
    return f"unknown key {key!r}; the keys here are {', '.join(known)}"


def _explain(exc: ValidationError) -> tuple[str, tuple[str | int, ...], str]:
    """(message, location, field) of the problem an entry should be reported by.

    An unknown key comes first: a misspelt required key (`topcis:`) also makes its
    field missing, and "field 'topics' is required" on the entry's first line would hide
    the typo. An unknown key is reported at its own line with the closest known key."""
    errors = exc.errors()
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    location = tuple(error["loc"])
    field_name = _describe(location)
    if error["type"] == "extra_forbidden":
        # Inside a topic's mapping (`topics.1.wieght`) the keys are a topic's.
        model = Topic if len(location) > 1 and location[0] == "topics" else Subscriber
        return (
            unknown_key_message(str(location[-1]), list(model.model_fields)),
            location,
            field_name,
        )
    if error["type"] == "missing":
        return f"field {field_name!r} is required", (), field_name
    return f"field {field_name!r}: {error['msg']}", location, field_name


class _NotFast(Exception):
    """The fast reader cannot promise the round-trip reader's result: use that one."""


# Plain scalars that YAML 1.2 (ruamel's round-trip reader) reads as something other than
# a string: the fast reader hands any of these it does not construct the same way over.
_NON_STRING_1_2 = re.compile(
    "|".join(
        f"(?:{regexp.pattern})"  # ruamel's patterns are lazy objects: compile them once
        for versions, tag, regexp, _first in implicit_resolvers
        if (1, 2) in versions and not tag.endswith(":str")
    ),
    re.X,
)
_NON_STRING_FIRST = frozenset(
    first
    for versions, tag, _regexp, firsts in implicit_resolvers
    if (1, 2) in versions and not tag.endswith(":str")
    for first in firsts
)
_NODE_PROPERTY = re.compile(r"(?:^|[\s\[{,:?-])[!&*][^\s,\]}]")  # !tag, &anchor, *alias
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = frozenset({"true", "True", "TRUE", "false", "False", "FALSE"})
_DECIMAL = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\Z")
_PLAIN_FLOAT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)\.[0-9]+\Z")

if yaml.__with_libyaml__:

    class _FastLoader(yaml.CSafeLoader):
        """libyaml (C) with YAML 1.2 scalars: null, true/false, decimal integers, plain
        decimals and strings; any other plain scalar 1.2 would not read as a string,
        and any duplicate key, means `_NotFast`."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode and implicit[0]:
                if value and value[0] not in _NON_STRING_FIRST:
                    return "tag:yaml.org,2002:str"  # most scalars: words, addresses, names
                if value in _NULLS:
                    return "tag:yaml.org,2002:null"
                if value in _BOOLS:
                    return "tag:yaml.org,2002:bool"
                if _DECIMAL.match(value):
                    return "tag:yaml.org,2002:int"
                if _PLAIN_FLOAT.match(value):
                    return "tag:yaml.org,2002:float"
                if _NON_STRING_1_2.match(value):
                    raise _NotFast(value)
                return "tag:yaml.org,2002:str"
            return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            keys = [key.value for key, _ in node.value]
            if len(set(keys)) != len(keys):
                raise _NotFast("duplicate key")
            return super().construct_mapping(node, deep=deep)


def _parse_fast(text: str) -> list[Subscriber]:
    """The common case quickly (libyaml and no line bookkeeping: 100k subscribers in
    seconds, where the round-trip reader takes minutes). Raises _NotFast for anything
    unusual (a YAML or validation error included): the round-trip reader then gives the
    same result or the error with its line."""
    if not yaml.__with_libyaml__:
        raise _NotFast("libyaml is not available")
    if _NODE_PROPERTY.search(text):
        raise _NotFast("a tag, anchor or alias")  # the two readers build these differently
    try:
        document = yaml.load(text, Loader=_FastLoader)
    except yaml.YAMLError as exc:
        raise _NotFast(str(exc)) from exc
    if not isinstance(document, dict) or list(document) != ["subscribers"]:
        raise _NotFast("not the expected layout")
    entries = document["subscribers"]
    if entries is None:
        return []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise _NotFast("not the expected layout")
    try:
        subscribers = [Subscriber.model_validate(entry) for entry in entries]
    except ValidationError as exc:
        raise _NotFast("invalid entry") from exc
    if len({s.key for s in subscribers}) != len(subscribers):
        raise _NotFast("duplicate address")
    return subscribers


# Above this size the fast reader splits the file in two at an entry boundary and reads
# the halves on two cores (libyaml hands every scalar to Python: ~200 us per subscriber).
SPLIT_MIN_CHARS = 2_000_000


def _halves(text: str) -> tuple[str, str] | None:
    """The file as two standalone documents of whole entries, or None if its layout is
    not the plain `subscribers:` list of `- ` items this can cut safely."""
    header = re.search(r"^subscribers:[ \t]*(?:#.*)?\n", text, re.M)
    if header is None:
        return None
    first = re.compile(r"^( *)- ", re.M).search(text, header.end())
    if first is None:
        return None
    item = re.compile(rf"^{first[1]}- ", re.M)
    middle = item.search(text, max(first.end(), len(text) // 2))
    if middle is None:
        return None
    return text[: middle.start()], "subscribers:\n" + text[middle.start() :]


def _parse_fast_split(text: str) -> list[Subscriber]:
    """`_parse_fast` on two cores for a large file (one half in a forked child)."""
    halves = _halves(text) if len(text) >= SPLIT_MIN_CHARS else None
    methods = multiprocessing.get_all_start_methods()
    if halves is None or "fork" not in methods or (os.cpu_count() or 1) < 2:
        return _parse_fast(text)
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        second = pool.submit(_parse_fast, halves[1])
        try:
            subscribers = _parse_fast(halves[0])
        finally:
            rest = second.exception() is None and second.result()
    if rest is False:
        return _parse_fast(text)  # let the whole file say what is unusual
    subscribers += rest
    if len({s.key for s in subscribers}) != len(subscribers):
        raise _NotFast("duplicate address")
    return subscribers


def parse_subscribers(text: str, *, path: str | Path = "<subscribers>") -> list[Subscriber]:
    """Parse and validate the YAML text of a subscribers file."""
    try:
        return _parse_fast_split(text)
    except _NotFast:
        return parse_subscribers_round_trip(text, path=path)


def parse_subscribers_round_trip(
    text: str, *, path: str | Path = "<subscribers>"
) -> list[Subscriber]:
    """The reference reader (ruamel round trip, which knows every node's line): what
    `parse_subscribers` must equal, and where every error message comes from."""
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise SubscribersError(
            f"this is not valid YAML ({exc.problem}); fix the syntax at this line",
            path=path,
            line=line,
        ) from exc
    unknown = [k for k in document if k != "subscribers"] if isinstance(document, dict) else []
    if unknown:
        raise SubscribersError(
            f"{unknown_key_message(str(unknown[0]), ['subscribers'])} (the file holds only "
            "the 'subscribers:' list)",
            path=path,
            line=_line_of(document, [unknown[0]]),
            field=str(unknown[0]),
        )
    if not isinstance(document, CommentedMap) or "subscribers" not in document:
        raise SubscribersError(
            "expected a top-level 'subscribers:' list (see subscribers.example.yaml)",
            path=path,
            line=1,
        )
    entries = document["subscribers"]
    if entries is None:
        return []
    if not isinstance(entries, CommentedSeq):
        raise SubscribersError(
            "'subscribers:' must be a list of entries, each starting with '- email: ...'",
            path=path,
            line=_line_of(document, ["subscribers"]),
        )
    subscribers: list[Subscriber] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        entry_line = _line_of(entries, [index])
        if not isinstance(entry, CommentedMap):
            raise SubscribersError(
                "each subscriber must be a mapping with at least 'email' and 'topics'",
                path=path,
                line=entry_line,
            )
        try:
            subscriber = Subscriber.model_validate(dict(entry))
        except ValidationError as exc:
            message, location, field_name = _explain(exc)
            raise SubscribersError(
                message,
                path=path,
                line=_line_of(entry, location) or entry_line,
                field=field_name,
            ) from exc
        if subscriber.key in seen:
            raise SubscribersError(
                f"{subscriber.email} is listed twice (first at line {seen[subscriber.key]}); "
                "merge the two entries",
                path=path,
                line=entry_line,
                field="email",
            )
        seen[subscriber.key] = entry_line or 0
        subscribers.append(subscriber)
    return subscribers


def load_subscribers(path: str | Path) -> list[Subscriber]:
    """Read and validate a subscribers file; errors name the file, line and field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SubscribersError(
            "file not found; copy subscribers.example.yaml there or set "
            "NEWSLETTER_SUBSCRIBERS_FILE",
            path=path,
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SubscribersError(f"cannot read the file: {exc}", path=path) from exc
    return parse_subscribers(text, path=path)


def unsubscribe_token(email: str, secret_key: str) -> str:
    """A signed, URL-safe token naming one subscriber (for the unsubscribe link)."""
    return tokens.sign("unsubscribe", email.lower(), secret_key)


def unsubscribe_url(base_url: str, email: str, secret_key: str) -> str:
    """The one-click unsubscribe link of one subscriber (emails, previews, the server)."""
    return f"{base_url}/unsubscribe/{unsubscribe_token(email, secret_key)}"


def read_unsubscribe_token(token: str, secret_key: str) -> str | None:
    """The address a token was made for, or None for a forged or damaged token."""
    value = tokens.read("unsubscribe", token, secret_key)
    return value if isinstance(value, str) else None


# ---------------------------------------------------------------------------------------
# Editing the file in place
#
# `subscribe` and `unsubscribe` change one entry and leave every other byte of the file as
# it was: the entry's lines are cut out, edited with ruamel's round-trip loader (which
# keeps the entry's own comments and flow/block styles), dumped with the file's
# indentation and pasted back. Comments and blank lines after an entry stay where they
# are (ruamel would attach them to the entry's last key and move them when a key is
# added). The result is validated as a whole before it replaces the file, atomically
# (temporary file + rename), under an exclusive lock on `<file>.lock` beside it.

FIELD_ORDER = ("email", "name", "topics", "exclude", "max_papers", "frequency", "active")


@dataclass(frozen=True)
class SubscriberChange:
    """What `subscribe` sets; None leaves a field as it is (or at its default)."""

    email: str
    topics: tuple[str, ...] = ()
    exclude: tuple[str, ...] | None = None
    name: str | None = None
    frequency: str | None = None
    max_papers: int | None = None


@dataclass(frozen=True)
class EditResult:
    """What an edit did: `created`, `updated`, `unchanged` (the file was not written)."""

    action: Literal["created", "updated", "unchanged"]
    subscriber: Subscriber


def _yaml(sequence_indent: int, offset: int) -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=max(2, sequence_indent - offset), sequence=sequence_indent, offset=offset)
    yaml.width = 4096  # never re-wrap a long line
    yaml.preserve_quotes = True
    return yaml


def _shifted(line: str, shift: int) -> str:
    """`line` indented `shift` columns more (or fewer); blank lines stay as they are."""
    if not line.strip():
        return line
    if shift >= 0:
        return " " * shift + line
    cut = min(-shift, len(line) - len(line.lstrip(" ")))  # a comment may sit further left
    return line[cut:]


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `<path>.lock` (a file beside the subscribers file)."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        handle = open(lock_path, "a+b")
    except OSError as exc:
        raise SubscribersError(
            f"cannot create the lock file {lock_path}: {exc}; the folder must be writable",
            path=path,
        ) from exc
    with handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so a reader sees the old file or the new one, never half."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    handle = tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, mode)
        os.replace(handle.name, path)
    except OSError as exc:
        Path(handle.name).unlink(missing_ok=True)
        raise SubscribersError(
            f"cannot write the file: {exc}; nothing was changed", path=path
        ) from exc
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _problem(exc: ValidationError) -> tuple[str, str]:
    """(message, field) of the problem pydantic found in one entry (see `_explain`)."""
    message, _location, field_name = _explain(exc)
    return message, field_name


class _Layout:
    """Where each entry of the file starts and ends, as line numbers (0-based)."""

    def __init__(self, text: str, path: Path) -> None:
        self.path = path
        self.lines = text.splitlines(keepends=True)
        if self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += "\n"
        self.document = YAML(typ="rt").load(text)
        self.entries: CommentedSeq | None = self.document.get("subscribers")
        guessed = load_yaml_guess_indent(text)
        self.sequence_indent: int = guessed[1] or 4
        self.offset: int = guessed[2] if guessed[2] is not None else 2

    def start(self, index: int) -> int:
        """The line of entry `index`'s dash."""
        assert self.entries is not None
        line = int(self.entries.lc.item(index)[0])
        while line > 0 and not self.lines[line].lstrip().startswith("-"):
            line -= 1  # a dash alone on its line, the mapping below it
        return line

    def span(self, index: int) -> tuple[int, int]:
        """[first, end) lines of entry `index`'s own content: trailing blank and comment
        lines up to the next entry belong to the file around it, not to the entry."""
        assert self.entries is not None
        first = self.start(index)
        limit = self.start(index + 1) if index + 1 < len(self.entries) else len(self.lines)
        end = limit
        while end > first + 1 and not _is_content(self.lines[end - 1]):
            end -= 1
        return first, end

    def index_of(self, key: str) -> int | None:
        for index, entry in enumerate(self.entries or ()):
            if isinstance(entry, CommentedMap) and str(entry.get("email", "")).lower() == key:
                return index
        return None

    def dash_column(self, first: int) -> int:
        return self.lines[first].index("-")

    def load_entry(self, first: int, end: int) -> CommentedMap:
        # Move the entry so its dash stands where the dumper will put it (`offset`): then
        # end-of-line comments keep their columns when the entry is written back.
        shift = self.offset - self.dash_column(first)
        block = "".join(_shifted(line, shift) for line in self.lines[first:end])
        loaded = _yaml(self.sequence_indent, self.offset).load(block)
        entry = loaded[0]
        assert isinstance(entry, CommentedMap)
        return entry

    def dump_entry(self, entry: CommentedMap, column: int) -> list[str]:
        out = io.StringIO()
        _yaml(self.sequence_indent, self.offset).dump(CommentedSeq([entry]), out)
        dumped = out.getvalue().splitlines(keepends=True)
        shift = column - (len(dumped[0]) - len(dumped[0].lstrip(" ")))
        return [_shifted(line, shift) for line in dumped]

    def separator(self) -> list[str]:
        """A blank line between entries if the file puts one there (like the example)."""
        if self.entries is not None and len(self.entries) > 1:
            _first, end = self.span(0)
            if end < self.start(1) and not self.lines[end].strip():
                return ["\n"]
        return []


def _set(entry: CommentedMap, key: str, value: Any) -> None:
    """Set `key`, placing a new key where FIELD_ORDER puts it among the existing ones."""
    if key in entry:
        entry[key] = value
        return
    rank = FIELD_ORDER.index(key)
    position = sum(1 for existing in entry if existing in FIELD_ORDER[:rank])
    entry.insert(position, key, value)


def _topics_value(old: Any, topics: Sequence[str]) -> CommentedSeq:
    """The new topics list; a topic listed before keeps its form (a weight stays). The
    list is new, so end-of-line comments on the old topic lines are not carried over."""
    previous: dict[str, Any] = {}
    if isinstance(old, list):
        for item in old:
            name = item.get("topic") if isinstance(item, dict) else item
            if isinstance(name, str):
                previous[" ".join(name.split()).lower()] = item
    value = CommentedSeq(previous.get(" ".join(t.split()).lower(), t) for t in topics)
    if isinstance(old, CommentedSeq) and old.fa.flow_style():
        value.fa.set_flow_style()
    return value


def _apply(entry: CommentedMap, change: SubscriberChange) -> None:
    if change.name is not None:
        _set(entry, "name", change.name)
    if change.topics:
        _set(entry, "topics", _topics_value(entry.get("topics"), change.topics))
    if change.exclude is not None:
        exclude = CommentedSeq(change.exclude)
        exclude.fa.set_flow_style()
        _set(entry, "exclude", exclude)
    if change.max_papers is not None:
        _set(entry, "max_papers", change.max_papers)
    if change.frequency is not None:
        _set(entry, "frequency", change.frequency)
    if entry.get("active") is False:
        entry["active"] = True  # subscribing again resumes a paused subscription


def _read_for_edit(path: Path) -> str:
    """The file's text; an invalid file must be fixed by hand before it is edited."""
    load_subscribers(path)
    return path.read_text(encoding="utf-8")


def _validated(entry: CommentedMap, path: Path, email: str) -> Subscriber:
    try:
        return Subscriber.model_validate(dict(entry))
    except ValidationError as exc:
        message, field_name = _problem(exc)
        raise SubscribersError(
            f"nothing was changed: the entry of {email} would be invalid: {message}",
            path=path,
            field=field_name,
        ) from exc


def _save(path: Path, old_text: str, new_lines: list[str]) -> None:
    new_text = "".join(new_lines)
    try:
        parse_subscribers(new_text, path=path)
    except SubscribersError as exc:
        raise SubscribersError(
            f"nothing was changed: the edited file would be invalid ({exc})", path=path
        ) from exc
    if new_text != old_text:
        _write_atomically(path, new_text)


def subscribe(path: str | Path, change: SubscriberChange) -> EditResult:
    """Add a subscriber, or update the one with this address (making it active again).

    Raises SubscribersError, and leaves the file untouched, when the file is invalid to
    begin with or the edit would make it invalid."""
    path = Path(path).resolve()
    email = change.email.strip()
    with locked(path):
        text = _read_for_edit(path)
        layout = _Layout(text, path)
        index = layout.index_of(email.lower())
        if index is not None:
            first, end = layout.span(index)
            entry = layout.load_entry(first, end)
            _apply(entry, change)
            subscriber = _validated(entry, path, email)
            lines = layout.lines
            new_lines = [
                *lines[:first],
                *layout.dump_entry(entry, layout.dash_column(first)),
                *lines[end:],
            ]
            _save(path, text, new_lines)
            changed = "".join(new_lines) != text
            return EditResult("updated" if changed else "unchanged", subscriber)
        if not change.topics:
            raise SubscribersError(
                f"{email} is not subscribed yet, so nothing was changed; a new subscriber "
                "needs at least one --topic",
                path=path,
                field="topics",
            )
        entry = CommentedMap()
        entry["email"] = email
        _apply(entry, change)
        subscriber = _validated(entry, path, email)
        entry["email"] = subscriber.email  # as validated: normalised
        new_lines = _append(layout, entry)
        _save(path, text, new_lines)
        return EditResult("created", subscriber)


def _append(layout: _Layout, entry: CommentedMap) -> list[str]:
    lines = layout.lines
    entries = layout.entries
    if entries:
        _first, end = layout.span(len(entries) - 1)
        column = layout.dash_column(layout.start(0))
        return [
            *lines[:end],
            *layout.separator(),
            *layout.dump_entry(entry, column),
            *lines[end:],
        ]
    # An empty list: `subscribers:`, `subscribers: []` or no key at all.
    if "subscribers" not in (layout.document or {}):
        return [*lines, "subscribers:\n", *layout.dump_entry(entry, layout.offset)]
    at = int(layout.document.lc.key("subscribers")[0])
    head = re.match(r"subscribers:\s*(?:\[\s*\])?\s*(#.*)?$", lines[at].rstrip("\n"))
    if head is None:
        raise SubscribersError(
            "cannot add an entry to this 'subscribers:' value; make it an empty line "
            "'subscribers:' and try again",
            path=layout.path,
            line=at + 1,
        )
    comment = f"  {head.group(1)}" if head.group(1) else ""
    return [
        *lines[:at],
        f"subscribers:{comment}\n",
        *layout.dump_entry(entry, layout.offset),
        *lines[at + 1 :],
    ]


def set_active(path: str | Path, email: str, active: bool) -> EditResult | None:
    """Set one subscriber's `active:` flag; None when the address is not in the file."""
    path = Path(path).resolve()
    with locked(path):
        text = _read_for_edit(path)
        layout = _Layout(text, path)
        index = layout.index_of(email.strip().lower())
        if index is None:
            return None
        first, end = layout.span(index)
        entry = layout.load_entry(first, end)
        if entry.get("active", True) is active:
            return EditResult("unchanged", _validated(entry, path, email))
        _set(entry, "active", active)
        subscriber = _validated(entry, path, email)
        new_lines = [
            *layout.lines[:first],
            *layout.dump_entry(entry, layout.dash_column(first)),
            *layout.lines[end:],
        ]
        _save(path, text, new_lines)
        return EditResult("updated", subscriber)
