"""What `newsletter serve` says about itself at `/healthz`, and how to recognise it.

The route answers JSON naming the service and its version, so `newsletter check` can
tell this project's server behind `NEWSLETTER_BASE_URL` from any other that answers
there (a default web server page, another app, a proxy's error page).
"""

from __future__ import annotations

from typing import Any

from newsletter import __version__

HEALTH_PATH = "/healthz"
SERVICE = "newsletter"


def health_report() -> dict[str, str]:
    """The body of `GET /healthz`."""
    return {"service": SERVICE, "version": __version__}


def served_version(body: Any) -> str | None:
    """The version a `/healthz` body reports, or None when it is not this project's."""
    if isinstance(body, dict) and body.get("service") == SERVICE:
        version = body.get("version")
        return str(version) if version is not None else "unknown"
    return None
