"""Load and validate the subscribers YAML file, and sign unsubscribe tokens.

The YAML file is the user-facing contract (see `subscribers.example.yaml`). It is read
with ruamel.yaml so every error can name the line it comes from, and validated with
pydantic models that forbid unknown keys.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from email_validator import EmailNotValidError, validate_email
from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.resolver import implicit_resolvers

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
        try:
            return validate_email(value.strip(), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValueError(f"{value!r} is not a valid email address: {exc}") from exc

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


class _NotFast(Exception):
    """The fast reader cannot promise the round-trip reader's result: use that one."""


# Plain scalars that YAML 1.2 (ruamel's round-trip reader) reads as something other than
# a string: the fast reader hands any of these it does not construct the same way over.
_NON_STRING_1_2 = [
    regexp
    for versions, tag, regexp, _first in implicit_resolvers
    if (1, 2) in versions and not tag.endswith(":str")
]
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

    class _FastLoader(yaml.CSafeLoader):  # type: ignore[misc]
        """libyaml (C) with YAML 1.2 scalars: null, true/false, decimal integers, plain
        decimals and strings; any other plain scalar 1.2 would not read as a string,
        and any duplicate key, means `_NotFast`."""

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            if kind is yaml.ScalarNode and implicit[0]:
                if value in _NULLS:
                    return "tag:yaml.org,2002:null"
                if value in _BOOLS:
                    return "tag:yaml.org,2002:bool"
                if _DECIMAL.match(value):
                    return "tag:yaml.org,2002:int"
                if _PLAIN_FLOAT.match(value):
                    return "tag:yaml.org,2002:float"
                if value[0] in _NON_STRING_FIRST and any(
                    regexp.match(value) for regexp in _NON_STRING_1_2
                ):
                    raise _NotFast(value)
                return "tag:yaml.org,2002:str"
            return super().resolve(kind, value, implicit)

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


def parse_subscribers(text: str, *, path: str | Path = "<subscribers>") -> list[Subscriber]:
    """Parse and validate the YAML text of a subscribers file."""
    try:
        return _parse_fast(text)
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
    if not isinstance(document, CommentedMap) or "subscribers" not in document:
        raise SubscribersError(
            "expected a top-level 'subscribers:' list (see subscribers.example.yaml)",
            path=path,
            line=1,
        )
    unknown = [key for key in document if key != "subscribers"]
    if unknown:
        raise SubscribersError(
            f"unknown top-level key {unknown[0]!r}; the file holds only 'subscribers:'",
            path=path,
            line=_line_of(document, [unknown[0]]),
            field=str(unknown[0]),
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
            error = exc.errors()[0]
            location = error["loc"]
            field_name = _describe(location)
            if error["type"] == "extra_forbidden":
                allowed = ", ".join(Subscriber.model_fields)
                message = f"unknown field {field_name!r} (allowed: {allowed}); check its spelling"
            elif error["type"] == "missing":
                message = f"field {field_name!r} is required"
                location = ()
            else:
                message = f"field {field_name!r}: {error['msg']}"
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


_TOKEN_SALT = "newsletter.unsubscribe"


def unsubscribe_token(email: str, secret_key: str) -> str:
    """A signed, URL-safe token naming one subscriber (for the unsubscribe link)."""
    return str(URLSafeSerializer(secret_key, salt=_TOKEN_SALT).dumps(email.lower()))


def read_unsubscribe_token(token: str, secret_key: str) -> str | None:
    """The address a token was made for, or None for a forged or damaged token."""
    try:
        value = URLSafeSerializer(secret_key, salt=_TOKEN_SALT).loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None
