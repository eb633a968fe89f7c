"""Checks on built messages shared by the builder's and the assembler's tests: the wire
format, and "reads back like the reference" (same headers and decoded parts)."""

from __future__ import annotations

import email
import email.policy
from email.header import decode_header, make_header
from email.message import EmailMessage


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def assert_wire_format(data: bytes) -> None:
    lines = data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert all(b"\r" not in line and b"\n" not in line for line in lines)  # CRLF only


def display_name(parsed: EmailMessage) -> str:
    """The To display name, decoded by the RFC 2047 rules.

    CPython's address parser puts a space between two adjacent encoded words of a
    display name, where RFC 2047 (6.2) says the whitespace between them is to be
    ignored; a long non-ASCII name is necessarily split over several encoded words, so
    decode the raw phrase with `email.header` (which follows the RFC) in that case."""
    raw = dict(parsed.raw_items())["To"]
    phrase = raw.rsplit("<", 1)[0].strip() if raw.rstrip().endswith(">") else ""
    if phrase.startswith("=?"):
        return str(make_header(decode_header(phrase)))
    return str(parsed["To"].addresses[0].display_name)


def headers_of(message: EmailMessage) -> dict[str, list[str]]:
    """Every header's parsed values; the boundary (random per message) left out."""
    found: dict[str, list[str]] = {}
    for name, value in message.items():
        if name.lower() == "content-type":
            params = {k: v for k, v in message["Content-Type"].params.items() if k != "boundary"}
            value = f"{message.get_content_type()} {sorted(params.items())}"
        found.setdefault(name.lower(), []).append(str(value))
    return found


def assert_same_message(fast: bytes, reference: bytes) -> None:
    for data in (fast, reference):
        assert_wire_format(data)
    one, other = parse(fast), parse(reference)
    headers, expected = headers_of(one), headers_of(other)
    # The Subject too: the reference policy encodes the two cases CPython's folder used
    # to get wrong (an unbreakable word longer than a line read back with a space added;
    # ASCII text that looks like an encoded word, "=?utf-8?q?abc?=", read back decoded).
    assert headers == expected
    assert display_name(one) == display_name(other)
    assert [a.addr_spec for a in one["To"].addresses] == [
        a.addr_spec for a in other["To"].addresses
    ]
    assert one.defects == other.defects == []
    parts, reference_parts = list(one.iter_parts()), list(other.iter_parts())
    assert len(parts) == len(reference_parts) == 2
    for part, reference_part in zip(parts, reference_parts, strict=True):
        headers, expected = headers_of(part), headers_of(reference_part)
        for found in (headers, expected):
            found.pop("mime-version", None)  # the reference repeats it in the HTML part
        assert headers == expected
        assert part.get_content() == reference_part.get_content()
        assert part.get_payload(decode=True) == reference_part.get_payload(decode=True)
