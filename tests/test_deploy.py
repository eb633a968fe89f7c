"""deploy/: the systemd units pass `systemd-analyze verify` (and its offline security
review), run commands the CLI accepts, and the Caddyfile is valid and, run by a real
Caddy in front of a real `newsletter serve`, passes the unsubscribe links and keeps the
preview pages (which list the subscribers) off the internet."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from newsletter.cli import build_parser
from newsletter.settings import DEV_SECRET_KEY
from newsletter.store import Store
from newsletter.subscribers import load_subscribers, unsubscribe_token
from tests.conftest import REPO
from tests.web_server import serving_process

DEPLOY = REPO / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
INSTALLED = "/opt/newsletter/venv/bin/newsletter"  # where deploy/README.md installs it
ANALYZE = shutil.which("systemd-analyze")
CADDY = shutil.which("caddy")
MAX_EXPOSURE = 2.0  # systemd-analyze security: 0 = fully locked down, 10 = nothing


def directives(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_there_is_a_unit_for_the_service_and_one_for_the_web_side() -> None:
    commands = {directives(unit)["ExecStart"][0].split()[1] for unit in UNITS}
    assert commands == {"run", "serve"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_each_unit_is_hardened_and_restarts(unit: Path) -> None:
    found = directives(unit)
    assert found["User"] == ["newsletter"] and found["Restart"] == ["on-failure"]
    assert found["WorkingDirectory"] == ["/var/lib/newsletter"]
    assert found["EnvironmentFile"] == ["/var/lib/newsletter/.env"]
    assert found["ReadWritePaths"] == ["/var/lib/newsletter"]
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
    }.items():
        assert found[key] == [value], key
    # The command line is one the installed CLI accepts.
    program, *args = shlex.split(found["ExecStart"][0])
    assert program == INSTALLED
    assert build_parser().parse_args(args).handler is not None


@contextmanager
def runnable_copies(tmp_path: Path) -> Iterator[list[Path]]:
    """The units with ExecStart pointing at this environment's `newsletter` (verify
    checks that the program exists and is executable)."""
    here = shutil.which("newsletter") or str(Path(sys.executable).parent / "newsletter")
    if not Path(here).is_file():
        pytest.skip(f"no installed newsletter command to point the units at ({here})")
    copies = []
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text(encoding="utf-8").replace(INSTALLED, here))
        copies.append(copy)
    yield copies


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (systemd)")
def test_systemd_analyze_verifies_the_units_without_a_warning(tmp_path: Path) -> None:
    assert ANALYZE is not None
    with runnable_copies(tmp_path) as copies:
        done = subprocess.run(
            [ANALYZE, "verify", *map(str, copies)], capture_output=True, text=True, timeout=120
        )
        # verify exits 0 on unknown keys and bad values too: it only warns. A clean run
        # prints nothing.
        assert done.returncode == 0 and done.stdout + done.stderr == "", done.stderr
        for copy in copies:
            review = subprocess.run(
                [ANALYZE, "security", "--offline=yes", str(copy)],
                capture_output=True,
                text=True,
                timeout=120,
            )
            level = re.search(r"Overall exposure level for \S+: ([\d.]+)", review.stdout)
            assert level is not None, review.stdout + review.stderr
            assert float(level[1]) <= MAX_EXPOSURE, review.stdout


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (systemd)")
def test_verify_catches_a_mistyped_directive(tmp_path: Path) -> None:
    """The check above would see a broken unit: the same run on a typo is not clean."""
    assert ANALYZE is not None
    with runnable_copies(tmp_path) as copies:
        broken = copies[0]
        broken.write_text(broken.read_text().replace("ProtectSystem=", "ProtectSystm="))
        done = subprocess.run([ANALYZE, "verify", str(broken)], capture_output=True, text=True)
        assert "ProtectSystm" in done.stderr


def caddy_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
    }


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed (make test installs it)")
def test_caddy_accepts_the_caddyfile(tmp_path: Path) -> None:
    assert CADDY is not None
    done = subprocess.run(
        [CADDY, "validate", "--config", str(DEPLOY / "Caddyfile"), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        env=caddy_env(tmp_path),
        timeout=120,
    )
    assert done.returncode == 0 and "Valid configuration" in done.stderr + done.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def caddy_in_front_of(upstream: str, tmp_path: Path) -> Iterator[str]:
    """deploy/Caddyfile run by Caddy on a loopback port over plain HTTP (no certificate
    can be had here), proxying to `upstream`: the site address and the upstream are
    the only changes."""
    port = free_port()
    text = (DEPLOY / "Caddyfile").read_text(encoding="utf-8")
    assert "news.example.org {" in text and "reverse_proxy 127.0.0.1:8000" in text
    text = text.replace("news.example.org {", f"http://127.0.0.1:{port} {{")
    text = text.replace("reverse_proxy 127.0.0.1:8000", f"reverse_proxy {upstream}")
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "Caddyfile"
    config.write_text("{\n\tadmin off\n}\n\n" + text, encoding="utf-8")
    assert CADDY is not None
    log = (tmp_path / "caddy.log").open("wb")
    caddy = subprocess.Popen(
        [CADDY, "run", "--config", str(config), "--adapter", "caddyfile"],
        env=caddy_env(tmp_path),
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until it listens (or gives up): not a timing assertion
            if caddy.poll() is not None:
                break
            try:
                httpx.get(f"{url}/unsubscribe/x", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert caddy.poll() is None, (tmp_path / "caddy.log").read_text()
        yield url
    finally:
        caddy.terminate()
        caddy.wait(timeout=30)
        log.close()


@pytest.mark.skipif(CADDY is None, reason="caddy is not installed (make test installs it)")
def test_behind_caddy_unsubscribing_works_and_previews_stay_private(
    project: Path, tmp_path: Path
) -> None:
    Store(project / "newsletter.db").close()
    with serving_process(project, {}) as (direct, _pid):
        assert httpx.get(f"{direct}/preview/ada@example.org", timeout=60).status_code == 200
        upstream = direct.removeprefix("http://")
        with caddy_in_front_of(upstream, tmp_path / "caddy") as public:
            for private in ("/", "/preview/ada@example.org", "/preview/ada@example.org/html"):
                answer = httpx.get(public + private, timeout=60)
                assert answer.status_code == 404 and "ada@example.org" not in answer.text
            link = f"{public}/unsubscribe/{unsubscribe_token('ada@example.org', DEV_SECRET_KEY)}"
            asked = httpx.get(link, timeout=60)
            assert asked.status_code == 200 and "ada@example.org" in asked.text
            done = httpx.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=60)
            assert done.status_code == 200
    ada = next(
        s for s in load_subscribers(project / "subscribers.yaml") if s.key == "ada@example.org"
    )
    assert ada.active is False
