"""The rules a configuration must meet before anything is really sent.

A real send puts the configuration in front of every subscriber: the unsubscribe links
(`NEWSLETTER_BASE_URL`), the From address and the key that signs the links. A mistake
there cannot be recalled, so `send` and `run` (without `--dry-run`) refuse to start
while any rule fails, and `newsletter check` lists the same problems. Dry runs write
files only and are not held to these rules.

The rules are pure: they read the settings, never the network (no DNS lookup: a name
is judged by its form, a literal address by `ipaddress`).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from email.utils import parseaddr
from urllib.parse import urlsplit

from newsletter.errors import ConfigError
from newsletter.settings import DEV_SECRET_KEY, Settings

MIN_SECRET_CHARS = 32
# Names that never reach a subscriber's mail client from the internet: special-use and
# reserved top-level names (RFC 6761, 6762, 2606) and the usual private-network suffixes.
PRIVATE_SUFFIXES = (
    "localhost",
    "local",
    "internal",
    "localdomain",
    "lan",
    "home",
    "home.arpa",
    "corp",
    "intranet",
    "private",
    "test",
    "invalid",
    "example",
)
NEW_KEY = (
    "`newsletter init` writes a good one into .env, or make one with "
    'python -c "import secrets; print(secrets.token_urlsafe(32))"'
)


@dataclass(frozen=True)
class Problem:
    """One reason a real send is refused: the setting and what to do about it."""

    setting: str  # the environment variable, e.g. NEWSLETTER_BASE_URL
    message: str  # says what is wrong and how to fix it

    def __str__(self) -> str:
        return f"{self.setting}: {self.message}"


class UnsafeSendError(ConfigError):
    """A real send was refused: `problems` holds every reason (one line each)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(
            "\n".join(str(problem) for problem in problems)
            + "\nnothing was sent; fix the settings above (or use --dry-run to write .eml files)"
        )


def send_problems(settings: Settings) -> list[Problem]:
    """Every rule a real send breaks with these settings (empty: safe to send)."""
    found = [
        base_url_problem(settings.base_url),
        from_address_problem(settings.from_address),
        secret_key_problem(
            settings.secret_key.get_secret_value() if settings.secret_key is not None else None
        ),
    ]
    return [problem for problem in found if problem is not None]


def require_safe_send(settings: Settings) -> None:
    """Raise UnsafeSendError, naming every problem, unless a real send is safe."""
    problems = send_problems(settings)
    if problems:
        raise UnsafeSendError(problems)


def base_url_problem(base_url: str) -> Problem | None:
    """The links of every email start with the base URL: it must be https (Gmail and
    Yahoo one-click unsubscribe require it) and reachable from the subscribers' side."""
    setting = "NEWSLETTER_BASE_URL"
    parts = urlsplit(base_url)
    fix = "set it to the public https address where `newsletter serve` is reached"
    if parts.scheme != "https":
        return Problem(
            setting,
            f"{base_url} is not https: mail clients do not one-click unsubscribe over plain "
            f"http; {fix}, e.g. https://news.your-lab.org",
        )
    host = (parts.hostname or "").rstrip(".").lower()
    private = private_host(host)
    if private:
        return Problem(
            setting,
            f"{base_url} points to {private}, so every unsubscribe link would be dead for "
            f"the subscribers; {fix}",
        )
    return None


def private_host(host: str) -> str | None:
    """Why `host` cannot be reached from a subscriber's mail client, or None."""
    address = _literal_address(host)
    if address is not None:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        # `is_private` covers the others too: the narrower kinds are named first.
        for kind in ("loopback", "link_local", "unspecified", "multicast", "private"):
            if getattr(address, f"is_{kind}"):
                return f"a {kind.replace('_', '-')} address ({host})"
        if not address.is_global:
            return f"a reserved address ({host})"
        return None
    if "." not in host:
        return f"a single-label host name ({host or 'none'}) that only a local network knows"
    for suffix in PRIVATE_SUFFIXES:
        if host == suffix or host.endswith(f".{suffix}"):
            return f"a local or reserved host name ({host}, under .{suffix})"
    return None


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a literal host stands for, in any form a browser accepts
    (`127.1`, `0x7f.0.0.1` and `2130706433` are 127.0.0.1 too), or None for a name."""
    try:
        return ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        pass
    if host and all(char in "0123456789abcdefx." for char in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def from_address_problem(from_address: str) -> Problem | None:
    """The built-in From address is a placeholder on a domain nobody may send from."""
    placeholder = parseaddr(str(Settings.model_fields["from_address"].default))[1]
    if parseaddr(from_address)[1].lower() == placeholder.lower():
        return Problem(
            "NEWSLETTER_FROM_ADDRESS",
            f"is still the built-in placeholder {placeholder}: replies and bounces would go "
            "nowhere and providers reject its mail; set it to an address of your own domain "
            "that your SMTP server may send from, e.g. 'Lab Digest <digest@your-lab.org>'",
        )
    return None


def secret_key_problem(key: str | None) -> Problem | None:
    """The key signs the unsubscribe links: a short or public one lets anyone forge them."""
    setting = "NEWSLETTER_SECRET_KEY"
    if not key:
        return Problem(setting, f"is not set: it signs the unsubscribe links; {NEW_KEY}")
    if key == DEV_SECRET_KEY:
        return Problem(
            setting,
            f"is the development key of dry runs, which is public, so anyone could forge "
            f"unsubscribe links; {NEW_KEY}",
        )
    if len(key) < MIN_SECRET_CHARS:
        return Problem(
            setting,
            f"is {len(key)} characters long; it needs at least {MIN_SECRET_CHARS} random "
            f"characters so the unsubscribe links cannot be forged; {NEW_KEY}",
        )
    return None
