"""Render one subscriber's digest (subject, preheader, HTML, text) and build its message.

Three templates live in one directory (the project's `templates/`):

* `digest.mjml.j2`: MJML holding Jinja tags, autoescaped. mjml-python compiles it ONCE,
  when the renderer loads it, into HTML that still holds the Jinja tags; each email is
  then only a Jinja render of that HTML (about 0.1 ms). This is exact because MJML copies
  the content of `<mj-raw>` and of text elements verbatim: loop/if tags go inside
  `<mj-raw>` and `{{ placeholders }}` only in text, `href` or `src`, never in an attribute
  MJML computes with (such as a column width), which MJML would silently drop. The loader
  checks this: a Jinja tag that MJML dropped or changed is an error, not a broken email.
* `digest.txt.j2`: the text/plain alternative (no escaping, `trim_blocks`/`lstrip_blocks`).
* `subject.txt.j2`: one line; whitespace is collapsed after rendering.

A paper's block (its card: title, authors, stats, summary, links) is the same for every
reader who gets the paper, so both digest templates wrap it in a call block,
`{% call(card) paper_block(paper.card) %} ... {% endcall %}`, which may use only `card`
(the loader checks this). A plain `render` renders it in place; an issue's messages pass
`PaperBlocks` that render each block once per issue and leave a marker in its place
(`assembly.SharedBlocks`), so a message is joined from blocks encoded once.

Every template problem (missing file, Jinja syntax, MJML compile failure, unknown MJML
element, a Jinja tag mangled by MJML) raises `TemplateError` naming the file, the line
when known, and how to fix it. An edited template is picked up without a restart: `render`
compares the files' modification stamps (three `stat` calls) and reloads them when needed.

`message.build_message` turns a `Digest` into the bytes of a multipart/alternative message.
"""

from __future__ import annotations

import copy
import re
import textwrap
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import jinja2
import mjml
from jinja2 import nodes
from markupsafe import Markup

from newsletter.daily_pages import PageLink, day_page_url, source_pages, sources_text
from newsletter.dumps import Paper
from newsletter.errors import TemplateError
from newsletter.headline import SUBJECT_CHARS, headline_title, more_text, preheader_for
from newsletter.links import feedback_url as feedback_link
from newsletter.paper_card import PaperCard, paper_card
from newsletter.ranking import Pick
from newsletter.subscribers import Subscriber
from newsletter.wording import (
    excerpt,
    fit,
    format_date,
    format_short_date,
    join_words,
    one_line,
    plural,
    shorten,
)

HTML_TEMPLATE = "digest.mjml.j2"
TEXT_TEMPLATE = "digest.txt.j2"
SUBJECT_TEMPLATE = "subject.txt.j2"
TEMPLATE_NAMES = (HTML_TEMPLATE, TEXT_TEMPLATE, SUBJECT_TEMPLATE)

TEXT_WIDTH = 76  # wrap width of the excerpts in the text part
MAX_LINE_CHARS = 998  # RFC 5322 line limit, also kept inside the text part
DEFAULT_DIGEST_NAME = "Research Digest"

_MJML_HINT = (
    "check that every MJML element is closed and allowed where it stands; "
    "mjml-python rejects <mj-html-attributes> (use <mj-attributes>/<mj-class>), and a '<' "
    "inside a Jinja tag breaks the MJML parser (reverse the comparison)"
)


@dataclass(frozen=True)
class Digest:
    """One subscriber's rendered issue."""

    subject: str
    preheader: str
    html: str
    text: str


class PaperView(NamedTuple):
    """One pick as the templates show it: the reader's own parts (its number, the
    why-line) and the paper's `card`, which is the same for every reader (see
    `paper_card`). The other attributes read through to the card. A named tuple: an
    issue makes one per pick of every reader."""

    number: int
    why: str
    card: PaperCard
    more_url: str = ""  # "more like this" (feedback.py); "" where there is no reader
    less_url: str = ""

    @property
    def title(self) -> str:
        return self.card.title

    @property
    def url(self) -> str:
        return self.card.url

    @property
    def authors(self) -> str:
        return self.card.authors

    @property
    def published(self) -> str:
        return self.card.published

    @property
    def upvotes(self) -> int:
        return self.card.upvotes

    @property
    def upvotes_text(self) -> str:
        return self.card.upvotes_text

    @property
    def meta(self) -> str:
        return self.card.meta

    @property
    def excerpt(self) -> str:
        return self.card.summary


# ---------------------------------------------------------------------------------------
# Formatting helpers (also the Jinja filters; the text ones live in `wording`)


@lru_cache(maxsize=4096)
def wrap(text: str, width: int = TEXT_WIDTH, indent: str = "") -> str:
    """Jinja filter: wrap plain text at `width`, every line indented by `indent`. Long
    words (URLs) are not broken; `limit_lines` still bounds every line. Cached: the
    same papers go to many subscribers, and textwrap is most of a text render."""
    return textwrap.fill(
        one_line(text),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    )


PREHEADER_ROOM = 150  # characters of preview text the roomiest inbox shows
# Invisible characters after the preheader, so that a mail client's preview shows it and
# then nothing (not the start of the body): a combining grapheme joiner, a zero-width
# non-joiner and a no-break space per character left.
PADDING_UNIT = "&#847;&zwnj;&nbsp;"


@lru_cache(maxsize=256)
def preheader_padding(length: int) -> Markup:
    """The padding after a preheader of `length` characters (HTML entities, safe)."""
    return Markup(PADDING_UNIT * max(0, PREHEADER_ROOM - length))


@lru_cache(maxsize=8192)
def _one_line_why(why: str) -> str:
    return one_line(why)


_CARDS: dict[int, tuple[Paper, PaperCard]] = {}  # id(paper) -> (paper, its card)
_CARDS_KEPT = 8192


def card_of(paper: Paper) -> PaperCard:
    """`paper_card(paper)`, found by the paper's identity: hashing a paper (every field)
    for `paper_card`'s cache costs more than the rest of a paper's view, and an issue
    asks for the same paper objects again and again. The entry holds the paper, so its
    id is not reused while it is kept."""
    found = _CARDS.get(id(paper))
    if found is not None and found[0] is paper:
        return found[1]
    if len(_CARDS) >= _CARDS_KEPT:
        _CARDS.clear()
    card = paper_card(paper)
    _CARDS[id(paper)] = (paper, card)
    return card


def paper_view(number: int, pick: Pick, feedback_url: str = "") -> PaperView:
    """Format one pick for the templates; `feedback_url` (the start of the reader's
    feedback links, see links.py) adds its "more / less like this" links."""
    if not feedback_url:
        return PaperView(number, _one_line_why(pick.why), card_of(pick.paper))
    return PaperView(
        number,
        _one_line_why(pick.why),
        card_of(pick.paper),
        feedback_link(feedback_url, "more", pick.paper.key),
        feedback_link(feedback_url, "less", pick.paper.key),
    )


# ---------------------------------------------------------------------------------------
# Paper blocks

PAPER_BLOCK = "paper_block"  # the call block templates wrap a paper's card in


def inline_block(card: PaperCard, caller: Callable[[PaperCard], Any]) -> Any:
    """A paper block rendered in place (previews, archive pages, a single message)."""
    return caller(card)


@dataclass(frozen=True)
class PaperBlocks:
    """How the paper blocks of the HTML and of the text template are rendered: each is
    called as `block(card, caller)` and returns what stands in the output."""

    html: Callable[..., Any] = inline_block
    text: Callable[..., Any] = inline_block


IN_PLACE = PaperBlocks()


def _check_paper_blocks(env: jinja2.Environment, source: str, path: Path) -> None:
    """A paper block is rendered once per issue and shared by every reader who gets the
    paper: it may use only the card it is given (and what it sets itself). A block that
    used `paper.why` or `name` would give every reader the first reader's."""
    for call in env.parse(source).find_all(nodes.CallBlock):
        callee = call.call.node
        if not (isinstance(callee, nodes.Name) and callee.name == PAPER_BLOCK):
            continue
        inner = [found for node in call.body for found in node.find_all(nodes.Name)]
        allowed = {arg.name for arg in call.args}
        allowed |= {name.name for name in inner if name.ctx in ("store", "param")}
        if any(True for node in call.body for _ in node.find_all(nodes.For)):
            allowed.add("loop")  # the block's own loop
        for name in inner:
            if name.ctx == "load" and name.name not in allowed:
                raise TemplateError(
                    f"{path}:{name.lineno}: the {PAPER_BLOCK} block is rendered once per "
                    f"issue and shared by every reader, so it may use only "
                    f"{', '.join(sorted(a.name for a in call.args)) or 'its argument'}, not "
                    f"'{name.name}'; move what differs per reader (paper.number, paper.why, "
                    "the feedback links) after its {% endcall %}"
                )


_OVERLONG_LINE = re.compile(f"[^\n]{{{MAX_LINE_CHARS + 1}}}")


def limit_lines(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """Hard-split any line longer than `limit` characters (only unbroken giants are)."""
    if limit == MAX_LINE_CHARS and not _OVERLONG_LINE.search(text):
        return text
    out: list[str] = []
    for line in text.split("\n"):
        while len(line) > limit:
            out.append(line[:limit])
            line = line[limit:]
        out.append(line)
    return "\n".join(out)


# ---------------------------------------------------------------------------------------
# Template loading

_BLOCK_TAG = re.compile(r"\{%[-+]?\s*(.*?)\s*[-+]?%\}", re.DOTALL)
_VAR_TAG = re.compile(r"\{\{[-+]?\s*(.*?)\s*[-+]?\}\}", re.DOTALL)
_UNKNOWN_MJ = re.compile(r"<(mj-[a-z0-9-]+)", re.IGNORECASE)
_INLINE_STYLE = re.compile(r"<mj-style\b[^>]*\binline\s*=", re.IGNORECASE)
_MJML_POSITION = re.compile(r"position (\d+):(\d+)")


def _filters() -> dict[str, Callable[..., Any]]:
    return {
        "one_line": one_line,
        "shorten": shorten,
        "fit": fit,
        "headline_title": headline_title,
        "excerpt": excerpt,
        "wrap": wrap,
        "format_date": format_date,
        "format_short_date": format_short_date,
        "plural": plural,
        "join_words": join_words,
    }


def _html_environment() -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters.update(_filters())
    return env


def _text_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(_filters())
    return env


def _paper_names() -> str:
    """The attributes a template may use on a paper, for error messages."""
    card = ", ".join(f"card.{field.name}" for field in fields(PaperCard))
    return ", ".join(PaperView._fields) + f" ({card})"


def _line_at(source: str, offset: int) -> int:
    return source.count("\n", 0, max(0, min(offset, len(source)))) + 1


def _template_line(exc: BaseException) -> int | None:
    """The template line a render error was raised at: Jinja rewrites the traceback so
    that the innermost template frame is that line of "<template>" (templates here are
    compiled from strings)."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == "<template>"
    ]
    return lines[-1] if lines else None


def _normalise_tag(tag: str) -> str:
    return " ".join(tag.split())


def _first_difference(first: list[str], second: list[str]) -> str:
    """The first item where two lists that differ part ways."""
    for one, other in zip(first, second, strict=False):
        if one != other:
            return one
    longer = first if len(first) > len(second) else second
    return longer[min(len(first), len(second))]


@dataclass(frozen=True)
class _Templates:
    html: jinja2.Template
    html_source: jinja2.Template  # the MJML source as Jinja: to find an error's line
    text: jinja2.Template
    subject: jinja2.Template
    mjml_source: str
    compiled_html: str
    stamps: tuple[tuple[int, int], ...]


class Renderer:
    """Loads the three templates once (compiling the MJML once) and renders digests."""

    def __init__(self, templates_dir: Path, *, auto_reload: bool = True) -> None:
        self.templates_dir = Path(templates_dir)
        self.auto_reload = auto_reload
        self._templates = self._load()

    # -- loading ------------------------------------------------------------------------

    def _paths(self) -> tuple[Path, ...]:
        return tuple(self.templates_dir / name for name in TEMPLATE_NAMES)

    def _stamps(self) -> tuple[tuple[int, int], ...]:
        stamps: list[tuple[int, int]] = []
        for path in self._paths():
            try:
                info = path.stat()
            except FileNotFoundError as exc:
                raise TemplateError(self._missing(path)) from exc
            except OSError as exc:
                raise TemplateError(f"{path}: cannot read the template: {exc}") from exc
            stamps.append((info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def _missing(self, path: Path) -> str:
        return (
            f"{path}: template file not found; the templates directory must hold "
            f"{', '.join(TEMPLATE_NAMES)} (copy the missing one from the project's templates/)"
        )

    def _read(self, path: Path) -> str:
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise TemplateError(self._missing(path)) from exc
        except UnicodeDecodeError as exc:
            raise TemplateError(f"{path}: not UTF-8 text ({exc}); save it as UTF-8") from exc
        except OSError as exc:
            raise TemplateError(f"{path}: cannot read the template: {exc}") from exc

    @staticmethod
    def _parse(env: jinja2.Environment, source: str, path: Path) -> jinja2.Template:
        """Compile Jinja source; a syntax error names the file and line."""
        try:
            return env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"{path}:{exc.lineno}: Jinja syntax error: {(exc.message or '').rstrip('.')}; "
                "fix the tag at this line (each {% for %}/{% if %} needs its "
                "{% endfor %}/{% endif %})"
            ) from exc

    def _compile_mjml(self, source: str, path: Path) -> str:
        """MJML (with Jinja tags) -> HTML (with the same Jinja tags), checked."""
        inline = _INLINE_STYLE.search(source)
        if inline:
            line = _line_at(source, inline.start())
            raise TemplateError(
                f'{path}:{line}: mjml-python does not inline <mj-style inline="inline">; '
                "drop the inline attribute and style with <mj-attributes>/<mj-class>"
            )
        try:
            # fonts={}: MJML links Google Fonts for some family names (Roboto, Lato...): a
            # request to a third party on every open. The email uses system fonts only.
            compiled = mjml.mjml2html(source, disable_comments=True, fonts={})
        except ValueError as exc:
            where = f"{path}"
            found = _MJML_POSITION.search(str(exc))
            if found:
                where += f":{_line_at(source, int(found.group(1)))}"
            raise TemplateError(
                f"{where}: MJML cannot compile the template ({exc}); {_MJML_HINT}"
            ) from exc
        unknown = _UNKNOWN_MJ.search(compiled)
        if unknown:
            name = unknown.group(1)
            at = source.find("<" + name)
            where = f"{path}:{_line_at(source, at)}" if at >= 0 else f"{path}"
            raise TemplateError(
                f"{where}: unknown MJML element <{name}>; check its spelling against the MJML "
                "documentation (mj-section, mj-column, mj-text, mj-button, mj-raw, ...)"
            )
        source_blocks = [_normalise_tag(t) for t in _BLOCK_TAG.findall(source)]
        compiled_blocks = [_normalise_tag(t) for t in _BLOCK_TAG.findall(compiled)]
        if source_blocks != compiled_blocks:
            lost = _first_difference(source_blocks, compiled_blocks)
            at = next(
                (m.start() for m in _BLOCK_TAG.finditer(source) if _normalise_tag(m[1]) == lost),
                -1,
            )
            where = f"{path}:{_line_at(source, at)}" if at >= 0 else f"{path}"
            raise TemplateError(
                f"{where}: MJML dropped, moved or changed the Jinja tag {{% {lost} %}}; "
                "wrap every {% ... %} tag in its own <mj-raw> element, outside attributes"
            )
        compiled_vars = {_normalise_tag(t) for t in _VAR_TAG.findall(compiled)}
        for match in _VAR_TAG.finditer(source):
            if _normalise_tag(match[1]) not in compiled_vars:
                raise TemplateError(
                    f"{path}:{_line_at(source, match.start())}: MJML dropped or changed the "
                    f"placeholder {{{{ {_normalise_tag(match[1])} }}}}; put placeholders only in "
                    "text, href or src, never in an attribute MJML computes with (a width)"
                )
        return compiled

    def _load(self) -> _Templates:
        html_path, text_path, subject_path = self._paths()
        stamps = self._stamps()  # before reading: an edit during the read reloads again
        html_env = _html_environment()
        text_env = _text_environment()
        mjml_source = self._read(html_path)
        html_source = self._parse(html_env, mjml_source, html_path)  # errors at source lines
        _check_paper_blocks(html_env, mjml_source, html_path)
        compiled = self._compile_mjml(mjml_source, html_path)
        html = self._parse(html_env, compiled, Path(f"{html_path} (as compiled by MJML)"))
        text_source = self._read(text_path)
        text = self._parse(text_env, text_source, text_path)
        _check_paper_blocks(text_env, text_source, text_path)
        subject = self._parse(text_env, self._read(subject_path), subject_path)
        return _Templates(html, html_source, text, subject, mjml_source, compiled, stamps)

    def pinned(self) -> Renderer:
        """This renderer with the templates it holds now, never reloaded: every message of
        an issue uses the same templates, without three `stat` calls each."""
        pinned = copy.copy(self)
        pinned.auto_reload = False
        return pinned

    def reload_if_changed(self) -> bool:
        """Reload the templates if any file changed since loading; True if reloaded.

        A broken edit raises TemplateError and keeps the previous templates in use (the
        next call tries again)."""
        if self._stamps() == self._templates.stamps:
            return False
        self._templates = self._load()
        return True

    @property
    def compiled_html(self) -> str:
        """The MJML template compiled to HTML, Jinja tags still in it."""
        return self._templates.compiled_html

    @property
    def mjml_source(self) -> str:
        return self._templates.mjml_source

    # -- rendering ----------------------------------------------------------------------

    def render_context(
        self,
        *,
        subscriber: Subscriber,
        picks: Sequence[Pick],
        issue_date: date,
        unsubscribe_url: str,
        pages: Mapping[str, date] | None = None,
        digest_name: str = DEFAULT_DIGEST_NAME,
        archive_url: str = "",
        feed_url: str = "",
        in_browser: bool = False,
        past_issues: Sequence[PageLink] = (),
        manage_url: str = "",
        feedback_url: str = "",
    ) -> dict[str, Any]:
        """Everything the templates see, subject included (also for a preview page).

        `pages`: paper key -> the date of the Daily Papers page it came from (the footer
        names the pages of this reader's papers). `archive_url`: this issue's page on the
        web (the "view in browser" link, left out `in_browser`); `feed_url`: the reader's
        Atom feed. `in_browser`: the issue's own web page, which links the reader's
        `past_issues` instead."""
        if self.auto_reload:
            self.reload_if_changed()
        papers = [
            paper_view(number, pick, feedback_url) for number, pick in enumerate(picks, start=1)
        ]
        topics = [topic.topic for topic in subscriber.topics]
        preheader = preheader_for(subscriber, picks)
        sources = source_pages(
            (pick.paper.key for pick in picks), pages or {}, issue_date=issue_date
        )
        context: dict[str, Any] = {
            "digest_name": one_line(digest_name) or DEFAULT_DIGEST_NAME,
            "name": one_line(subscriber.name or ""),
            "email": subscriber.email,
            "topics": topics,
            "topics_text": join_words(topics),
            "papers": papers,
            "count": len(papers),
            "more": more_text(len(papers)),
            "subject_chars": SUBJECT_CHARS,
            "issue_date": issue_date,
            "issue_date_text": format_date(issue_date),
            "issue_date_short": format_short_date(issue_date),
            "day_page_url": day_page_url(issue_date),
            "preheader": preheader,
            "preheader_padding": preheader_padding(len(preheader)),
            "unsubscribe_url": unsubscribe_url,
            "archive_url": "" if in_browser else archive_url,
            "feed_url": feed_url,
            "in_browser": in_browser,
            "past_issues": list(past_issues) if in_browser else [],
            "sources": sources,
            "sources_text": sources_text(sources),
            "manage_url": manage_url,
            PAPER_BLOCK: inline_block,
        }
        subject = self._render(self._templates.subject, SUBJECT_TEMPLATE, context)
        context["subject"] = one_line(subject)
        return context

    def _render(
        self,
        template: jinja2.Template,
        name: str,
        context: dict[str, Any],
        *,
        source: jinja2.Template | None = None,
    ) -> str:
        """Render one template; an error names the file and, when known, the line (some
        errors depend on the data: `papers[1]` fails only for a one-paper digest).
        `source`: the template as the user wrote it, when `template` was compiled from it
        (MJML), to find the line there."""
        try:
            return template.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateError(
                f"{self._where(name, exc, context, source)}: cannot render: {exc}; use "
                f"only the names the renderer provides ({', '.join(sorted(context))}; each "
                f"paper has {_paper_names()}), and "
                "guard what not every digest has ({% if count > 1 %})"
            ) from exc
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise TemplateError(
                f"{self._where(name, exc, context, source)}: cannot render: {exc}; check "
                "the filters and expressions the template uses"
            ) from exc

    def _where(
        self,
        name: str,
        exc: BaseException,
        context: dict[str, Any],
        source: jinja2.Template | None,
    ) -> str:
        """`<templates>/<name>:<line>` of the template line that raised `exc` (the file
        alone when the line is unknown). The compiled HTML is one long line: its source
        holds the same Jinja tags in the same order (the loader checked), so rendering the
        source fails at the same tag, on the line the user wrote it."""
        line = _template_line(exc)
        if source is not None:
            try:
                source.render(context)
            except Exception as again:  # the same error, raised at the source line
                line = _template_line(again)
            else:
                line = None  # the source renders: no line to name
        path = self.templates_dir / name
        return f"{path}:{line}" if line is not None else f"{path}"

    def render_html_reference(self, context: dict[str, Any]) -> str:
        """The slow path the compiled template must equal: render Jinja on the MJML
        source, then compile that with MJML (for tests and for debugging templates)."""
        template = self._parse(
            _html_environment(), self._templates.mjml_source, self.templates_dir / HTML_TEMPLATE
        )
        try:
            return mjml.mjml2html(
                self._render(template, HTML_TEMPLATE, context), disable_comments=True, fonts={}
            )
        except ValueError as exc:
            raise TemplateError(
                f"{self.templates_dir / HTML_TEMPLATE}: the rendered MJML does not compile "
                f"({exc}); a value must have broken the markup, keep placeholders in text"
            ) from exc

    def render(
        self,
        *,
        subscriber: Subscriber,
        picks: Sequence[Pick],
        issue_date: date,
        unsubscribe_url: str,
        pages: Mapping[str, date] | None = None,
        digest_name: str = DEFAULT_DIGEST_NAME,
        archive_url: str = "",
        feed_url: str = "",
        in_browser: bool = False,
        past_issues: Sequence[PageLink] = (),
        manage_url: str = "",
        feedback_url: str = "",
        blocks: PaperBlocks = IN_PLACE,
    ) -> Digest:
        """Render one subscriber's digest; the picks appear in the order given (see
        `render_context` for the other arguments). `manage_url` and `feedback_url` (the
        start of the reader's feedback links) add the preferences link and each paper's
        "more / less like this" links. `blocks`: how the paper blocks are rendered (in
        place by default; with an issue's shared blocks, the HTML and text hold their
        markers, and are not yet line-limited: see `assembly.SharedBlocks`)."""
        context = self.render_context(
            subscriber=subscriber,
            picks=picks,
            issue_date=issue_date,
            unsubscribe_url=unsubscribe_url,
            pages=pages,
            digest_name=digest_name,
            archive_url=archive_url,
            feed_url=feed_url,
            in_browser=in_browser,
            past_issues=past_issues,
            manage_url=manage_url,
            feedback_url=feedback_url,
        )
        context[PAPER_BLOCK] = blocks.html
        html = self._render(
            self._templates.html, HTML_TEMPLATE, context, source=self._templates.html_source
        )
        context[PAPER_BLOCK] = blocks.text
        text = self._render(self._templates.text, TEXT_TEMPLATE, context)
        return Digest(
            subject=context["subject"],
            preheader=context["preheader"],
            html=html,
            text=limit_lines(text) if blocks is IN_PLACE else text,
        )
