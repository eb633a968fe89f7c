"""Signed tokens in links, scoped by purpose.

Every link that acts for a subscriber (unsubscribe, manage preferences, confirm a sign-up,
mark a paper, read an archived issue or a feed) carries a token signed with
NEWSLETTER_SECRET_KEY (itsdangerous). Each purpose has its own salt, so a token made for one
purpose is refused for every other, and rotating the key invalidates them all.

Unsubscribe tokens keep their original untimed format, so links in issues already sent keep
working. Manage, feedback, archive and feed tokens are untimed too: they never expire, and
an untimed token is the same every time it is made, so a message built twice (a dry run on
worker processes, a resend, a rebuild after a crash) is the same bytes and an issue's web
page has one stable address. Every other purpose is timestamped, and a reader may pass
`max_age` (confirmation links expire).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from itsdangerous import BadData, Serializer, Signer, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

Purpose = Literal["unsubscribe", "manage", "confirm", "feedback", "archive", "feed"]

# The unsubscribe salt predates the other purposes: changing it would break sent links.
SALTS: dict[str, str] = {
    "unsubscribe": "newsletter.unsubscribe",
    "manage": "newsletter.manage",
    "confirm": "newsletter.confirm",
    "feedback": "newsletter.feedback",
    "archive": "newsletter.archive",
    "feed": "newsletter.feed",
}


# Purposes whose tokens carry no timestamp (the same value gives the same token).
UNTIMED = frozenset({"unsubscribe", "manage", "feedback", "archive", "feed"})


class _UncompressedSerializer(URLSafeSerializer):
    """`URLSafeSerializer` that does not try zlib on the payload. Its tokens carry an
    address or a key, which zlib almost never shortens, and trying costs 40 us a token
    (zlib allocates its state each time): five tokens per message cost more than the
    rest of the message. `loads` is the parent's, so a compressed token (made before,
    for an address that compressed) is still read."""

    def dump_payload(self, obj: object) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


@lru_cache(maxsize=64)
def serializer(purpose: Purpose, secret_key: str) -> URLSafeSerializer | URLSafeTimedSerializer:
    # Made once per key and purpose: building one costs as much as signing with it.
    if purpose in UNTIMED:
        return _UncompressedSerializer(secret_key, salt=SALTS[purpose])
    return URLSafeTimedSerializer(secret_key, salt=SALTS[purpose])


@lru_cache(maxsize=64)
def _untimed_signer(purpose: Purpose, secret_key: str) -> Signer:
    return serializer(purpose, secret_key).make_signer()


def sign(purpose: Purpose, value: object, secret_key: str) -> str:
    """A URL-safe token carrying `value` (JSON-serialisable), valid only for `purpose`."""
    made = serializer(purpose, secret_key)
    if purpose in UNTIMED:  # what `dumps` does, with the signer made once
        return _untimed_signer(purpose, secret_key).sign(made.dump_payload(value)).decode()
    return str(made.dumps(value))


def read(
    purpose: Purpose, token: str, secret_key: str, *, max_age: int | None = None
) -> object | None:
    """The value a token carries, or None for a token that is forged, damaged, made for
    another purpose or key, or (with `max_age`, in seconds) older than that."""
    signer = serializer(purpose, secret_key)
    try:
        if isinstance(signer, URLSafeTimedSerializer):
            value: object = signer.loads(token, max_age=max_age)
        else:
            value = signer.loads(token)
    except BadData:
        return None
    return value
