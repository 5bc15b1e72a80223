"""Text from boxes is data: render untrusted text safely for each kind of output.

Anything a box (or whatever else is on its console) prints can reach people: a fault title, a
console excerpt, a reason in a summary. It may carry terminal escapes (an OSC "set window title",
clear-screen, a cursor-position query that makes the operator's terminal type its answer into
stdin), NUL and BEL bytes, HTML (``<script>``) or Markdown links and images. Every writer renders
such text through exactly one of these functions:

* :func:`for_terminal` -- control characters shown as ``\\x1b``-style escapes; nothing reaches the tty raw
  (rich markup is escaped too, so ``[red]`` is printed, not interpreted).
* :func:`for_markdown` -- escaped so nothing renders as HTML, a link, an image or emphasis.
* :func:`for_markdown_code` -- for a fenced code block: control characters escaped and the fence
  made longer than any backtick run inside.
* :func:`for_html` -- HTML-escaped, control characters replaced by visible escapes.
* :func:`for_xml` -- characters XML 1.0 cannot carry replaced (JUnit properties and messages).

Each also bounds the length (``limit`` characters, with a note of what was cut), so a 5 MB line
cannot flood a report. Example::

    from lab.textsafe import for_html, for_terminal

    line = "\\x1b]0;pwned\\x07<script>alert(1)</script>"
    for_terminal(line)   # '\\\\x1b]0;pwned\\\\x07<script>alert(1)</script>'
    for_html(line)       # '\\\\x1b]0;pwned\\\\x07&lt;script&gt;alert(1)&lt;/script&gt;'
"""

from __future__ import annotations

import html
import re

#: Default bound on one rendered text (characters); longer text is cut with a note.
DEFAULT_LIMIT = 20_000

# C0 controls but TAB and LF, DEL, C1 controls, and the Unicode line/paragraph separators and
# bidi overrides that can reorder what a reader sees (Trojan Source).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
# Markdown's ASCII punctuation that can start markup (CommonMark: any of these may be backslash-escaped).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


def _escape_control(m: re.Match[str]) -> str:
    c = m.group(0)
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _bound(text: str, limit: int | None) -> str:
    if limit is not None and len(text) > limit:
        return text[:limit] + f" [... {len(text) - limit} more characters cut]"
    return text


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return "" if value is None else str(value)


def escape_controls(value: object, *, keep_newlines: bool = True) -> str:
    """Control characters as visible ``\\xNN`` escapes (TAB kept; LF kept unless ``keep_newlines=False``)."""
    text = _CONTROL.sub(_escape_control, _text(value).replace("\r\n", "\n"))
    return text if keep_newlines else text.replace("\n", "\\n")


def for_terminal(value: object, *, limit: int | None = DEFAULT_LIMIT, markup: bool = True) -> str:
    """Text safe to print to a terminal (and, with ``markup=True``, through rich without markup).

    >>> for_terminal("ok\\x1b[2J\\x07")
    'ok\\\\x1b[2J\\\\x07'
    """
    text = _bound(escape_controls(value), limit)
    if markup:
        text = text.replace("[", "\\[")
    return text


def for_markdown(value: object, *, limit: int | None = DEFAULT_LIMIT, inline: bool = True) -> str:
    """Text that renders as itself in Markdown (GitHub/GitLab job summaries included): no HTML, links, images.

    ``<``, ``>`` and ``&`` become entities; every other character that could start markup
    (``[``, ``!``, ``|``, backticks, emphasis...) is backslash-escaped. ``inline=True`` (table
    cells, one-line fields) also shows newlines as ``⏎``.
    """
    text = _bound(escape_controls(value), limit)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    # Entities rather than backslashes for HTML's own characters: no renderer treats them as markup.
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if inline:
        text = text.replace("\n", " ⏎ ")
    return text


def for_markdown_code(value: object, *, limit: int | None = DEFAULT_LIMIT, info: str = "text") -> str:
    """A fenced code block holding the text verbatim (controls escaped), whatever backticks it contains."""
    text = _bound(escape_controls(value), limit)
    longest = max((len(m.group(0)) for m in re.finditer("`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def for_html(value: object, *, limit: int | None = DEFAULT_LIMIT) -> str:
    """HTML-escaped text (quotes too, so it is safe in attributes) with control characters made visible."""
    return html.escape(_bound(escape_controls(value), limit), quote=True)


def for_xml(value: object, *, limit: int | None = DEFAULT_LIMIT) -> str:
    """Text XML 1.0 can carry (JUnit): characters it forbids replaced by visible escapes.

    The XML writer (ElementTree, the JUnit plugin) still escapes ``<`` and ``&`` itself.
    """
    return _XML_BAD.sub(_escape_control, _bound(_text(value), limit))


__all__ = [
    "DEFAULT_LIMIT",
    "escape_controls",
    "for_html",
    "for_markdown",
    "for_markdown_code",
    "for_terminal",
    "for_xml",
]
