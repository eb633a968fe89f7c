"""The bytes of one digest email: headers, the two parts, and their encodings.

`build_message` assembles a multipart/alternative message directly as bytes (~0.1 ms);
`build_message_reference` builds the same message with `EmailMessage` (~3 ms) and is the
oracle the fast path is tested against (`tests/test_render.py`, `tests/test_assembly.py`):
parsed back, both give the same header values and the same decoded parts.

The parts' transfer encodings are chosen so that a part can be joined from pieces
encoded apart (see `assembly`):

* text/plain goes as it is (7bit, or 8bit UTF-8) when every line fits in 998 octets and
  it holds no NUL: no encoding at all. Otherwise, quoted-printable. An 8bit message goes
  to a server without 8BITMIME re-encoded (`seven_bit`).
* text/html goes as base64 (MJML writes lines of many kilobytes, which only an encoding
  can carry). Base64 turns every 57 bytes into one 76-character line, so pieces whose
  lengths are multiples of 57 encode apart and join as lines.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, formataddr
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from newsletter.render import MAX_LINE_CHARS, Digest
from newsletter.subscribers import Subscriber, ascii_domain

MAX_DOMAIN_CHARS = 253  # the longest DNS name

_HEADER_BREAKERS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]+")


def header_value(value: str) -> str:
    """A value safe for one header: every run of whitespace or control characters
    (CR, LF, NUL, ...) becomes one space, so nothing can start a new header; characters
    that cannot be encoded (lone surrogates) become '?'."""
    value = _HEADER_BREAKERS.sub(" ", value).strip()
    return value.encode("utf-8", "replace").decode("utf-8")


def _body_text(value: str) -> str:
    return value.encode("utf-8", "replace").decode("utf-8")


if TYPE_CHECKING:
    _PolicyBase = EmailPolicy[EmailMessage]
else:
    _PolicyBase = EmailPolicy


class _MessagePolicy(_PolicyBase):
    """`email.policy.SMTP` with three fixes to how headers are written, so that every
    line fits in 998 octets (and in 78 columns where the value allows it):

    * the URL and id headers stay on one line (folded, `List-Unsubscribe: <url>` reads
      back as " <url>" in some parsers); a URL too long for one line is folded inside
      its angle brackets (`_fold_bracketed`), a Message-ID too long is refused;
    * a display name in To or From that CPython's folder cannot write well is encoded
      by `_fold_mailboxes` (see `_needs_encoding`): a non-ASCII one (CPython may split
      it into two encoded words at a space and leave that space out of both, and RFC
      2047 readers ignore whitespace between encoded words, so "Müller Lüdenscheidt"
      would show as "MüllerLüdenscheidt"); one holding an unbroken word longer than a
      line (CPython writes it whole: a 2,000-character name made a 2,001-octet line,
      which servers refuse with "500 Line too long"); one that needs quotes and does
      not fit on a line (CPython folds the quoted string and loses its quotes);
    * a Subject CPython would write wrong is encoded the way `_subject_line` encodes
      it (see `_subject_needs_encoding`).
    """

    def fold_binary(self, name: str, value: str) -> bytes:
        lower = name.lower()
        if lower in _UNFOLDED and value.isascii():
            return _one_line(name, value, self.linesep)
        if lower == "subject" and _subject_needs_encoding(value, utf8=self.utf8):
            return _fold_encoded(name, value, "", self.linesep)
        if lower in _ADDRESS_HEADERS:
            mailboxes = _mailboxes(value)
            if mailboxes and any(
                _needs_encoding(m.display_name, name, self.utf8) for m in mailboxes
            ):
                return _fold_mailboxes(name, mailboxes, self.linesep)
        return super().fold_binary(name, value)


_UNFOLDED = frozenset({"list-unsubscribe", "list-unsubscribe-post", "message-id", "list-id"})
_ADDRESS_HEADERS = frozenset({"to", "from"})
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_HEADER_WIDTH = 78
_LONGEST_PLAIN_WORD = 70  # a longer unbroken word cannot be folded: encode it
_ENCODED_WORD_ROOM = 62  # "=?utf-8?q?" + 62 + "?=" = 74 columns, under RFC 2047's 75


def _one_line(name: str, value: str, linesep: str) -> bytes:
    """An ASCII id or URL header on one line; a URL longer than a line folded inside
    its angle brackets; a Message-ID longer than a line is an error (no folding
    whitespace may go inside one)."""
    if len(name) + len(value) + 2 <= MAX_LINE_CHARS:
        return f"{name}: {value}{linesep}".encode("ascii")
    if name.lower() == "list-unsubscribe" and value.startswith("<") and value.endswith(">"):
        return _fold_bracketed(name, value, linesep)
    raise ValueError(
        f"the {name} header is {len(value)} characters long, more than a line of "
        f"{MAX_LINE_CHARS} octets can hold"
    )


def _fold_bracketed(name: str, value: str, linesep: str) -> bytes:
    """`Name: <url>` folded at 78 columns inside the brackets: RFC 2369 (2) says the
    whitespace inside a list header's angle brackets is to be ignored."""
    first = _HEADER_WIDTH - len(name) - 2
    lines = [f"{name}: {value[:first]}"]
    rest = value[first:]
    width = _HEADER_WIDTH - 1
    lines += [" " + rest[start : start + width] for start in range(0, len(rest), width)]
    return (linesep.join(lines) + linesep).encode("ascii")


def _subject_needs_encoding(subject: str, *, utf8: bool = False) -> bool:
    """Whether to encode the whole Subject ourselves: non-ASCII under a 7-bit policy
    (CPython's folder may split it into encoded words at a space and drop the space), a
    word too long to fold (read back with a space added), or text that looks like an
    encoded word (read back decoded; `build_message_reference` also assigns such a
    subject encoded, since assigning parses it)."""
    return (
        (not utf8 and not subject.isascii())
        or "=?" in subject
        or any(len(word) > _LONGEST_PLAIN_WORD for word in subject.split(" "))
    )


def _mailboxes(value: object) -> tuple[Address, ...]:
    """The addresses of an address header, or () when it holds a named group (left to
    the default folder)."""
    groups = getattr(value, "groups", ())
    if any(group.display_name is not None for group in groups):
        return ()
    return tuple(getattr(value, "addresses", ()))


def _needs_encoding(display_name: str, header: str, utf8: bool) -> bool:
    """Whether a display name must be written as encoded words: non-ASCII under a 7-bit
    policy; holding a word too long to fit on a folded line; or needing quotes and too
    long for one line (CPython's folder splits a quoted string over lines and drops its
    quotes, so `Ada, Countess (of) Lovelace; ...` would read back as several addresses)."""
    if not utf8 and not display_name.isascii():
        return True
    if any(_quoted_length(word) > _LONGEST_PLAIN_WORD for word in display_name.split(" ")):
        return True
    plain = all(char in _ATEXT or (utf8 and not char.isascii()) for char in display_name)
    return not plain and _quoted_length(display_name) + 2 > _HEADER_WIDTH - len(header) - 2


_ATEXT = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~- "
)


def _quoted_length(text: str) -> int:
    """Octets of `text` inside a quoted string (a quote or backslash is escaped)."""
    return len(text.encode("utf-8")) + text.count('"') + text.count("\\")


def _encoded_words(
    text: str, room: int = _ENCODED_WORD_ROOM, first: int | None = None
) -> list[str]:
    """RFC 2047 "Q" encoded words (UTF-8) for a phrase, each at most 75 characters
    (`first` characters of payload for the first word, `room` for the others) and split
    only between characters, spaces encoded inside the words as "_"."""
    chunks: list[str] = []
    chunk = ""
    for char in text:
        encoded = "".join(
            chr(byte) if byte in _Q_SAFE else "_" if byte == 0x20 else f"={byte:02X}"
            for byte in char.encode("utf-8")
        )
        limit = room if chunks or first is None else first
        if chunk and len(chunk) + len(encoded) > limit:
            chunks.append(chunk)
            chunk = ""
        chunk += encoded
    if chunk:
        chunks.append(chunk)
    return [f"=?utf-8?q?{chunk}?=" for chunk in chunks]


def _fold_mailboxes(name: str, addresses: Sequence[Address], linesep: str) -> bytes:
    """`Name: =?utf-8?q?...?= <addr>, ...` folded between tokens at 78 columns (the
    addresses themselves are at most 254 characters: `normalized_email`)."""
    tokens: list[str] = []
    for index, address in enumerate(addresses):
        comma = "," if index + 1 < len(addresses) else ""
        if address.display_name:
            tokens += _encoded_words(address.display_name, first=_first_room(name))
            tokens.append(f"<{address.addr_spec}>{comma}")
        else:
            tokens.append(f"{address.addr_spec}{comma}")
    return _fold_tokens(name, tokens, linesep)


def _first_room(name: str) -> int:
    """Payload room of an encoded word that starts right after `Name: `."""
    return min(_ENCODED_WORD_ROOM, _HEADER_WIDTH - len(name) - 2 - len("=?utf-8?q??="))


def _fold_encoded(name: str, text: str, tail: str, linesep: str) -> bytes:
    """`Name: <encoded words of text> tail`, folded between tokens at 78 columns (an
    encoded word is never split, so no line exceeds 998 octets)."""
    words = _encoded_words(text, first=_first_room(name))
    return _fold_tokens(name, [*words, *([tail] if tail else [])], linesep)


def _fold_tokens(name: str, tokens: Sequence[str], linesep: str) -> bytes:
    lines = [f"{name}:"]
    for token in tokens:
        if lines[-1] != f"{name}:" and len(lines[-1]) + 1 + len(token) > _HEADER_WIDTH:
            lines.append("")
        lines[-1] += " " + token
    return (linesep.join(lines) + linesep).encode("utf-8")


_SMTP = _MessagePolicy(linesep="\r\n")
_SMTPUTF8 = _SMTP.clone(utf8=True)


def _recipient(subscriber: Subscriber) -> tuple[Address, _MessagePolicy]:
    """The To address and the policy that can carry it: SMTP (7-bit headers, the domain
    in IDNA form) unless the local part is non-ASCII, which only SMTPUTF8 can express
    (such a message needs a server that offers SMTPUTF8)."""
    name = header_value(subscriber.name or "")
    local, _, domain = header_value(subscriber.email).rpartition("@")
    if local.isascii():
        try:
            return Address(display_name=name, addr_spec=f"{local}@{ascii_domain(domain)}"), _SMTP
        except ValueError:
            pass
    return Address(display_name=name, username=local, domain=domain), _SMTPUTF8


def build_message_reference(
    *,
    from_address: str,
    subscriber: Subscriber,
    digest: Digest,
    unsubscribe_url: str,
    message_id: str,
    date: datetime,
    list_id: str | None = None,
) -> bytes:
    """The reference builder (`EmailMessage` and `as_bytes()`, ~3 ms): what
    `build_message` must equal once parsed; it also builds the rare messages the fast
    path hands over (a non-ASCII local part, which needs SMTPUTF8)."""
    recipient, policy = _recipient(subscriber)
    msg = EmailMessage(policy=policy)
    msg["From"] = header_value(from_address)
    msg["To"] = recipient
    subject = header_value(digest.subject)
    # Assigning parses the value: text that looks like an encoded word would be decoded
    # ("=?utf-8?q?abc?=" becoming "abc"), so such a subject goes in encoded.
    msg["Subject"] = " ".join(_encoded_words(subject)) if "=?" in subject else subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = header_value(message_id)
    if list_id:
        msg["List-Id"] = header_value(list_id)
    msg["List-Unsubscribe"] = f"<{header_value(unsubscribe_url)}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    text = _body_text(digest.text)
    encoding = text_transfer_encoding(crlf_lines(text))
    msg.set_content(text, subtype="plain", charset="utf-8", cte=encoding)
    msg.add_alternative(_body_text(digest.html), subtype="html", charset="utf-8", cte="base64")
    return msg.as_bytes()


def seven_bit(message: bytes) -> bytes:
    """`message` with every 8bit part re-encoded quoted-printable, for a server that
    does not offer 8BITMIME (RFC 6152: only one that does may be sent an 8bit body).
    The headers are written back byte for byte."""
    policy = SMTP.clone(refold_source="none")  # the headers as they were written
    parsed = BytesParser(policy=policy).parsebytes(message)
    assert isinstance(parsed, EmailMessage)
    for part in parsed.walk():
        if str(part.get("Content-Transfer-Encoding", "")).lower() == "8bit":
            content = part.get_content()
            part.set_content(
                content, subtype=part.get_content_subtype(), charset="utf-8",
                cte="quoted-printable",
            )  # fmt: skip
            del part["MIME-Version"]  # set_content adds one; only the message has it
    return parsed.as_bytes(policy=policy)


# The fast builder: the same message assembled directly as bytes (~0.1 ms instead of
# ~3 ms). Every header it writes is either one it can write exactly (plain ASCII that
# needs no quoting, encoded words for the rest of a Subject, the same encoder as the
# reference for a non-ASCII display name) or handed to the reference policy's folder,
# so the standard parser reads back the same values; `tests/test_render.py` checks this
# with Hypothesis against `build_message_reference`.

_CRLF = "\r\n"
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9 '_-]*\Z")  # atext and spaces: never quoted
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")
_TEXT_TYPE = b'Content-Type: text/plain; charset="utf-8"\r\n'
HTML_PART_HEADERS = (
    'Content-Type: text/html; charset="utf-8"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
).encode("ascii")


def _folded_by_policy(name: str, value: Any, policy: _MessagePolicy = _SMTP) -> bytes:
    """One header exactly as the reference writes it (for the values the fast path does
    not write itself)."""
    return policy.fold_binary(name, policy.header_factory(name, value))


@lru_cache(maxsize=16)
def _from_line(from_address: str) -> bytes:
    return _folded_by_policy("From", header_value(from_address))


@lru_cache(maxsize=4096)  # many readers share a top paper, so a subject
def _subject_line(subject: str) -> bytes:
    """Printable ASCII folded at spaces; anything else as RFC 2047 encoded words (the
    parser drops the folding whitespace between encoded words, so spaces are encoded
    inside them)."""
    if _PRINTABLE.match(subject) and not _subject_needs_encoding(subject):
        lines = ["Subject:"]
        for word in subject.split(" ") if subject else [""]:
            if len(lines[-1]) + 1 + len(word) > _HEADER_WIDTH and lines[-1] != "Subject:":
                lines.append("")
            lines[-1] += " " + word
        return (_CRLF.join(lines) + _CRLF).encode("ascii")
    return _fold_encoded("Subject", subject, "", _CRLF)


def _to_line(subscriber: Subscriber) -> bytes | None:
    """The To header, or None when only SMTPUTF8 can carry the address."""
    name = header_value(subscriber.name or "")
    local, _, domain = header_value(subscriber.email).rpartition("@")
    if not local.isascii():
        return None
    try:
        domain = ascii_domain(domain)
    except ValueError:
        return None
    addr_spec = f"{local}@{domain}"
    if _DOT_ATOM.match(local) and _DOMAIN.match(domain):
        if not name:
            line = f"To: {addr_spec}"
            if len(line) <= _HEADER_WIDTH:
                return (line + _CRLF).encode("ascii")
        elif _PLAIN_NAME.match(name):
            line = f"To: {name} <{addr_spec}>"
            if len(line) <= _HEADER_WIDTH:
                return (line + _CRLF).encode("ascii")
        elif not name.isascii():
            return _fold_encoded("To", name, f"<{addr_spec}>", _CRLF)
    return _folded_by_policy("To", Address(display_name=name, addr_spec=addr_spec))


def _unfolded_line(name: str, value: str) -> bytes:
    """An id or URL header on one line, as the reference policy writes them."""
    if value.isascii():
        return _one_line(name, value, _CRLF)
    return _folded_by_policy(name, value)


MAX_LINE_OCTETS = 998  # RFC 5322 2.1.1, without the CRLF
BASE64_LINE = 76  # characters of a base64 line: 57 bytes of content
BASE64_BLOCK = 57


def crlf_lines(text: str) -> bytes:
    """UTF-8 with CRLF line ends, as the reference splits lines (every CR, LF or CRLF
    ends a line) and ending with a line end; characters that cannot be encoded (lone
    surrogates) become '?'."""
    return b"\r\n".join(text.encode("utf-8", "replace").splitlines()) + b"\r\n"


def text_transfer_encoding(body: bytes) -> str:
    """How a text part (`crlf_lines` of it) travels: as it is when every line fits in
    998 octets and it holds no NUL ("7bit" when ASCII, else "8bit"), else
    "quoted-printable"."""
    if b"\x00" in body or max(map(len, body.split(b"\r\n"))) > MAX_LINE_OCTETS:
        return "quoted-printable"
    return "7bit" if body.isascii() else "8bit"


def text_part(body: bytes) -> bytes:
    """The text/plain part (headers and payload) of a `crlf_lines` body."""
    encoding = text_transfer_encoding(body)
    payload = body if encoding != "quoted-printable" else binascii.b2a_qp(body, istext=True)
    return _TEXT_TYPE + f"Content-Transfer-Encoding: {encoding}\r\n\r\n".encode() + payload


def base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters, each ending with CRLF, as the reference writes
    it. Data whose length is a multiple of 57 ends with a whole line, so such pieces
    encoded apart and joined are the encoding of the joined data."""
    encoded = binascii.b2a_base64(data, newline=False)
    if not encoded:
        return b""
    lines = [encoded[i : i + BASE64_LINE] for i in range(0, len(encoded), BASE64_LINE)]
    return b"\r\n".join(lines) + b"\r\n"


def html_part(body: bytes) -> bytes:
    """The text/html part (headers and payload) of a `crlf_lines` body."""
    return HTML_PART_HEADERS + base64_lines(body)


def message_head(
    *,
    from_address: str,
    subscriber: Subscriber,
    subject: str,
    unsubscribe_url: str,
    message_id: str,
    date: datetime,
    list_id: str | None = None,
) -> bytes | None:
    """The header lines of a digest email (up to the blank line before the first part),
    or None when only `build_message_reference` can write them: a non-ASCII local part,
    which needs SMTPUTF8. Header values are sanitised (see `header_value`): a CR, LF or
    NUL in a name, subject or URL can never start a header of its own."""
    to_line = _to_line(subscriber)
    if to_line is None:
        return None
    return b"".join(
        (
            _from_line(from_address),
            to_line,
            _subject_line(header_value(subject)),
            f"Date: {format_datetime(date)}\r\n".encode("ascii"),
            _unfolded_line("Message-ID", header_value(message_id)),
            _unfolded_line("List-Id", header_value(list_id)) if list_id else b"",
            _unfolded_line("List-Unsubscribe", f"<{header_value(unsubscribe_url)}>"),
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            b"MIME-Version: 1.0\r\n",
        )
    )


def multipart(head: bytes, text: bytes, html: bytes) -> bytes:
    """A message of `head` and the two parts (`text_part`, `html_part`):
    multipart/alternative, text first (a client shows the last part it can). The
    boundary is "=_" and 24 random hex digits: no base64 or quoted-printable line can
    hold it, and a text part sent as it is would have to guess 96 random bits."""
    boundary = f"=_{secrets.token_hex(12)}".encode("ascii")
    return b"".join(
        (
            head,
            b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n',
            b"--" + boundary + b"\r\n",
            text,
            b"\r\n--" + boundary + b"\r\n",
            html,
            b"\r\n--" + boundary + b"--\r\n",
        )
    )


class Parts(Protocol):
    """How a digest's two parts are made: whole (`WHOLE`), or joined from blocks an
    issue made once (`assembly.SharedBlocks`)."""

    def text_part(self, text: str) -> bytes: ...

    def html_part(self, html: str) -> bytes: ...

    def digest(self, digest: Digest) -> Digest:
        """The digest the parts decode to (what the reference path builds instead)."""
        ...


class _WholeParts:
    """Each part encoded whole from the digest's text."""

    def text_part(self, text: str) -> bytes:
        return text_part(crlf_lines(text))

    def html_part(self, html: str) -> bytes:
        return html_part(crlf_lines(html))

    def digest(self, digest: Digest) -> Digest:
        return digest


WHOLE: Parts = _WholeParts()


def build_message(
    *,
    from_address: str,
    subscriber: Subscriber,
    digest: Digest,
    unsubscribe_url: str,
    message_id: str,
    date: datetime,
    list_id: str | None = None,
    parts: Parts = WHOLE,
) -> bytes:
    """The bytes of one digest email: multipart/alternative (the text as it is when its
    lines allow, else quoted-printable; the HTML base64: no line exceeds 998 octets),
    one-click unsubscribe headers, CRLF line ends, 7-bit headers (a non-ASCII local part, which only SMTPUTF8 can express, is
    built by `build_message_reference`).

    Assembled directly (no `EmailMessage`): the standard parser reads it back into the
    same header values and decoded parts as `build_message_reference` does for
    `parts.digest(digest)`. `parts`: how the two parts are made (whole by default; an
    issue joins them from blocks it rendered once, see `assembly`)."""
    head = message_head(
        from_address=from_address,
        subscriber=subscriber,
        subject=digest.subject,
        unsubscribe_url=unsubscribe_url,
        message_id=message_id,
        date=date,
        list_id=list_id,
    )
    if head is None:
        return build_message_reference(
            from_address=from_address,
            subscriber=subscriber,
            digest=parts.digest(digest),
            unsubscribe_url=unsubscribe_url,
            message_id=message_id,
            date=date,
            list_id=list_id,
        )
    return multipart(head, parts.text_part(digest.text), parts.html_part(digest.html))


_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def _dot_atom(value: str) -> str:
    value = _ID_UNSAFE.sub("-", value)
    return re.sub(r"\.{2,}", ".", value).strip(".")


def list_id_for(digest_name: str, domain: str) -> str:
    """The List-Id header (RFC 2919) of the digest sent from `domain`:
    `Research Digest <digest.lab.org>` (the name quoted or encoded as it needs; an
    internationalised domain in its IDNA form)."""
    try:
        host = _dot_atom(ascii_domain(domain.strip()))
    except ValueError:
        host = _dot_atom(domain)
    host = host or "localhost"
    return formataddr((header_value(digest_name), f"digest.{host}"))


def message_id_for(issue_key: str, email: str, domain: str) -> str:
    """A Message-ID unique to (issue, recipient) and the same on every run:
    `<{issue_key}.{sha256(email)[:20]}@{domain}>`, characters outside [A-Za-z0-9.-]
    replaced by '-' (a domain longer than a DNS name is refused: the id must fit a line)."""
    digest = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()[:20]
    key = _dot_atom(issue_key) or "issue"
    host = _dot_atom(domain)
    if not host or len(host) > MAX_DOMAIN_CHARS:  # a DNS name is at most 253 characters
        raise ValueError(f"cannot make a Message-ID with the domain {domain!r}")
    return f"<{key}.{digest}@{host}>"
