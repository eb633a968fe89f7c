"""A working folder for the service: what `newsletter init` lays out.

A folder holds everything one newsletter needs: `.env` (the settings, with a generated
secret key, and every other setting listed with its default and what it does, written
from the `Settings` model so the list never drifts from the code), `subscribers.yaml`
(one example reader), `inbox/`, optionally an editable copy of the templates, and the
database. Nothing that already exists is overwritten: it is kept and reported.
"""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import time, timedelta
from importlib import resources
from pathlib import Path

from dotenv import dotenv_values
from pydantic import BaseModel, SecretStr, TypeAdapter
from pydantic.fields import FieldInfo

from newsletter.errors import NewsletterError
from newsletter.settings import PACKAGED_TEMPLATES, Settings, load_settings
from newsletter.store import Store

ENV_PREFIX = "NEWSLETTER_"
TEMPLATES_FOLDER = "templates"  # the copy `--templates` makes, relative to the folder
SECRET_BYTES = 32  # token_urlsafe(32): 43 characters, over the 32 real sends require

_ENV_HEADER = """\
# Settings of this newsletter, read from this file in the working directory (variables
# in the environment win over it). The systemd units in deploy/ use it as their
# EnvironmentFile too, so keep to NAME=value lines, quoting values with spaces.
#
# Every setting is listed below with its default, commented out: remove the # and
# change the value to set one. `newsletter check` tells you whether they work.
"""


@dataclass
class InitReport:
    """What `init_folder` did: paths relative to `folder`, made or found and kept."""

    folder: Path
    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    templates_set: bool = False  # .env names the copied templates


def env_value(value: object) -> str:
    """A default as it is written in `.env` (what the setting's validator reads back);
    "" for no value. A path inside the installed package (the templates) is not
    written: it differs per installation, and unset means the same."""
    if value is None or isinstance(value, SecretStr):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return "" if value.is_absolute() else str(value)
    if isinstance(value, time):
        return f"{value:%H:%M}" + (f":{value:%S}" if value.second else "")
    if isinstance(value, timedelta):  # ISO 8601 (PT3H): what any timedelta field reads
        return str(TypeAdapter(timedelta).dump_python(value, mode="json"))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value)
    if any(char.isspace() or char in "\"'#\\" for char in text):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return text


def setting_lines(name: str, info: FieldInfo, value: str | None = None) -> list[str]:
    """One setting: its explanation, then the line; commented out (with the default)
    unless `value` is given."""
    explanation = info.description or name.replace("_", " ")
    variable = ENV_PREFIX + name.upper()
    if value is not None:
        return [f"# {explanation}", f"{variable}={value}"]
    return [f"# {explanation}", f"# {variable}={env_value(info.default)}"]


def env_text(
    secret_key: str, *, templates_dir: str | None = None, model: type[BaseModel] = Settings
) -> str:
    """The `.env` of a new folder: the secret key and (with `templates_dir`) the
    templates set, every other field of `model` commented out with its default."""
    chosen = {"secret_key": secret_key}
    if templates_dir is not None:
        chosen["templates_dir"] = templates_dir
    blocks = [
        "\n".join(setting_lines(name, info, chosen.get(name)))
        for name, info in model.model_fields.items()
    ]
    return _ENV_HEADER + "\n" + "\n\n".join(blocks) + "\n"


def init_folder(folder: Path, *, templates: bool = False) -> InitReport:
    """Lay out a working folder in `folder` (made if missing); existing files are kept."""
    report = InitReport(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if templates:
            _copy_templates(folder, report)
        wrote_env = _write_new(
            folder / ".env",
            env_text(
                secrets.token_urlsafe(SECRET_BYTES),
                templates_dir=TEMPLATES_FOLDER if templates else None,
            ),
            report,
            private=True,
        )
        report.templates_set = templates and (wrote_env or _names_templates(folder / ".env"))
        starter = resources.files("newsletter").joinpath("starter", "subscribers.yaml")
        _write_new(folder / "subscribers.yaml", starter.read_text(encoding="utf-8"), report)
        _make_folder(folder / "inbox", report)
    except OSError as exc:
        where = exc.filename or folder
        raise NewsletterError(
            f"{where}: cannot set up the working folder ({exc.strerror or exc}); "
            "choose a folder you can write to"
        ) from exc
    return report


def _write_new(path: Path, text: str, report: InitReport, *, private: bool = False) -> bool:
    """Write `text` to `path` unless it exists (O_EXCL: never over a file made meanwhile)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    except FileExistsError:
        report.kept.append(path.name)
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    report.created.append(path.name)
    return True


def _names_templates(env_file: Path) -> bool:
    """Whether a kept `.env` sets NEWSLETTER_TEMPLATES_DIR already."""
    return bool(dotenv_values(env_file).get(ENV_PREFIX + "TEMPLATES_DIR"))


def _make_folder(path: Path, report: InitReport) -> None:
    if path.is_dir():
        report.kept.append(path.name + "/")
        return
    path.mkdir()
    report.created.append(path.name + "/")


def _copy_templates(folder: Path, report: InitReport) -> None:
    """Copy the packaged templates into `folder/templates/`, file by file, keeping any
    that are there already."""
    target = folder / TEMPLATES_FOLDER
    for source in sorted(PACKAGED_TEMPLATES.rglob("*.j2")):
        relative = source.relative_to(PACKAGED_TEMPLATES)
        copy = target / relative
        name = f"{TEMPLATES_FOLDER}/{relative.as_posix()}"
        if copy.exists():
            report.kept.append(name)
            continue
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
        report.created.append(name)


def start_database(folder: Path) -> tuple[Path, bool]:
    """Create the database that the folder's settings name (relative to the folder);
    returns its path and whether it was made now."""
    settings = load_settings(_env_file=folder / ".env")
    path = settings.database_path
    if not path.is_absolute():
        path = folder / path
    existed = path.exists()
    Store(path).close()
    return path, not existed


def summary(report: InitReport) -> list[str]:
    """What `newsletter init` made and kept, one line each."""
    notes = {
        ".env": "a new secret key; every other setting listed with its default",
        "subscribers.yaml": "one example subscriber: replace it with your readers",
        "inbox/": "dumps arriving here are ingested by 'newsletter run'",
    }
    copied = [name for name in report.created if name.startswith(TEMPLATES_FOLDER + "/")]
    lines = [
        f"Created {_shown(report.folder, name)}" + (f" ({notes[name]})" if name in notes else "")
        for name in report.created
        if name not in copied
    ]
    if copied:
        where = _shown(report.folder, TEMPLATES_FOLDER + "/")
        lines.append(f"Created {where} ({len(copied)} templates to edit)")
    if report.kept:
        kept = ", ".join(_shown(report.folder, name) for name in report.kept)
        lines.append(f"Kept {kept}: already there, not overwritten")
    if report.templates_set is False and any(
        name.startswith(TEMPLATES_FOLDER + "/") for name in report.created + report.kept
    ):
        lines.append(
            f"  The kept .env does not name the templates: add NEWSLETTER_TEMPLATES_DIR="
            f"{TEMPLATES_FOLDER} to it to use the copy in {TEMPLATES_FOLDER}/"
        )
    return lines


def _shown(folder: Path, name: str) -> str:
    """`name` (relative to `folder`, a trailing / for a folder) as the user sees it."""
    return str(folder / name) + ("/" if name.endswith("/") else "")


def next_steps(folder: Path) -> list[str]:
    here = folder.resolve() == Path.cwd().resolve()
    return [
        "Next:",
        *([] if here else [f"  cd {folder}"]),
        "  1. edit .env: NEWSLETTER_FROM_ADDRESS, NEWSLETTER_BASE_URL, NEWSLETTER_SMTP_*",
        "  2. edit subscribers.yaml: your readers and their topics",
        "  3. newsletter check   settings, templates, subscribers, the SMTP server, the base URL",
        "  4. newsletter fetch   today's papers into inbox/",
        "  5. newsletter run     the service: ingests the inbox, sends at NEWSLETTER_SEND_TIME",
    ]
