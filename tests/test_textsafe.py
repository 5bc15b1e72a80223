"""Untrusted text from boxes rendered for terminals, Markdown, HTML and XML (lab.textsafe)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from lab.textsafe import for_html, for_markdown, for_markdown_code, for_terminal, for_xml

HOSTILE = (
    "\x1b]0;owned\x07\x1b[2J\x1b[6n\x00 boom\x9b31m <script>alert(1)</script><img src=x onerror=alert(2)> "
    "[click](http://evil.example) ![img](http://evil.example/a.png) | cell | `code` **bold** \u202eevil"
)
RAW_BYTES = ("\x1b", "\x00", "\x07", "\x9b", "\u202e")


def test_terminal_output_carries_no_control_byte_and_shows_what_was_there() -> None:
    out = for_terminal(HOSTILE)
    assert not any(b in out for b in RAW_BYTES)
    assert "\\x1b]0;owned\\x07" in out and "\\x00" in out
    assert "\\[click]" in out  # rich markup is not interpreted


def test_markdown_renders_nothing_as_html_link_or_image() -> None:
    out = for_markdown(HOSTILE)
    assert not any(b in out for b in RAW_BYTES)
    assert "<script>" not in out and "<img" not in out
    assert "](" not in out.replace("\\](", "").replace("\\]\\(", "")
    assert "&lt;script&gt;" in out and "\\!\\[img\\]" in out and "\\|" in out


def test_markdown_code_block_cannot_be_closed_from_inside() -> None:
    out = for_markdown_code("a\n```\n<b>x</b>\n````")
    fence = out.split("\n", 1)[0].removesuffix("text")
    assert len(fence) == 5 and out.endswith("\n" + fence)


def test_html_is_escaped_and_controls_visible() -> None:
    out = for_html(HOSTILE)
    assert "<script>" not in out and "<img" not in out and '"' not in out
    assert "&lt;script&gt;" in out and "\\x1b" in out
    assert not any(b in out for b in RAW_BYTES)


def test_long_text_is_bounded_with_a_note() -> None:
    out = for_html("A" * 5_000_000, limit=1000)
    assert len(out) < 1100 and "4999000 more characters cut" in out


@given(st.text())
def test_xml_text_always_parses(text: str) -> None:
    el = ET.Element("property", value=for_xml(text))
    ET.fromstring(ET.tostring(el))  # raises on a character XML 1.0 cannot carry


@given(st.text())
def test_no_renderer_lets_a_control_character_through(text: str) -> None:
    for render in (for_terminal, for_markdown, for_html):
        out = render(text, limit=None)
        assert not any(ord(c) < 32 and c not in "\t\n" for c in out), render.__name__
        assert "\x7f" not in out and "\x1b" not in out
