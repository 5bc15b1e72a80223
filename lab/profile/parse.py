"""Reading values out of command output: the parsers a profile's probes name."""

from __future__ import annotations

import json
import re
from typing import Any

from lab.profile.model import Probe


class ParseError(ValueError):
    """The output does not hold what the probe looks for (the message says what was missing)."""


def _json_doc(text: str) -> Any:
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        raise ParseError("no JSON document in the output")
    end = max(text.rfind("}"), text.rfind("]"))
    try:
        return json.loads(text[start : end + 1])
    except ValueError as exc:
        raise ParseError(f"invalid JSON: {exc}") from None


def _dig(doc: Any, path: str) -> Any:
    cur = doc
    for part in path.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            raise ParseError(f"JSON has no {path!r} (missing {part!r})")
    return cur


_KV = re.compile(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*[=:]\s*(.*?)\s*$")
_TOKEN = r"([A-Za-z_][\w.\-]*)=(\"[^\"]*\"|'[^']*'|\S*)"
_TOKENS_LINE = re.compile(rf"\s*{_TOKEN}(?:\s+{_TOKEN})+\s*")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def key_values(text: str) -> dict[str, str]:
    """``key=value`` / ``key: value`` lines, or several ``k=v`` on one line (``version=2.0 build=b7``);
    quotes around values removed; later keys win."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        if _TOKENS_LINE.fullmatch(line):
            for key, value in re.findall(_TOKEN, line):
                out[key] = _unquote(value)
            continue
        m = _KV.match(line)
        if m:
            out[m.group(1).strip("[]")] = _unquote(m.group(2))
    return out


def parse(probe: Probe, text: str) -> Any:
    """What ``probe`` reads from ``text``: a string, or a document (json/key=value without ``key``)."""
    if probe.parser == "text":
        value = text.strip()
        if probe.first_line:
            value = value.splitlines()[0].strip() if value else ""
        if not value:
            raise ParseError("empty output")
        return value
    if probe.parser == "json":
        doc = _json_doc(text)
        return doc if probe.key is None else _dig(doc, probe.key)
    if probe.parser == "key=value":
        kv = key_values(text)
        if probe.key is None:
            if not kv:
                raise ParseError("no key=value lines in the output")
            return kv
        if probe.key not in kv:
            raise ParseError(f"no {probe.key!r} among the keys {sorted(kv)[:12]}")
        return kv[probe.key]
    assert probe.pattern is not None  # validated: regex has a pattern
    m = re.search(probe.pattern, text, re.MULTILINE)
    if m is None:
        raise ParseError(f"output does not match {probe.pattern!r}")
    if probe.key is None and "value" not in m.groupdict():
        return m.groupdict()
    return m.group(probe.key or "value")
