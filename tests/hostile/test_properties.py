"""Property-based: mutated rig files are either valid or a RigFileError naming the file (never
another exception), and console streams of any bytes give titles and renderings without raw
control characters or markup."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.errors import RigFileError
from lab.rig import load_rigs
from lab.rma.fingerprint import fingerprint
from lab.textsafe import for_html, for_markdown, for_terminal, for_xml

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def valid(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, dict[str, Any]]:
    from lab.emulator.testing import write_rig_file

    root = tmp_path_factory.mktemp("prop")
    path = write_rig_file(root, ["p1", "p2"])
    return root, path.read_bytes(), yaml.safe_load(path.read_text())


def _load(path: Path) -> None:
    try:
        load_rigs(path)
    except RigFileError as exc:
        assert str(path) in str(exc), exc  # the message names the file
        assert not CONTROL.search(str(exc)), repr(str(exc))  # and is safe to print


byte_edits = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete"]), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    min_size=1,
    max_size=6,
)


@SETTINGS
@given(edits=byte_edits)
def test_bytes_mutated_rig_files_are_valid_or_a_rig_file_error(valid, edits) -> None:  # noqa: ANN001
    root, data, _ = valid
    buf = bytearray(data)
    for kind, pos, blob in edits:
        i = pos % (len(buf) + 1)
        if kind == "flip" and buf:
            buf[i % len(buf)] ^= blob[0] or 1
        elif kind == "insert":
            buf[i:i] = blob
        else:
            del buf[i : i + len(blob)]
    path = root / "mutated.yaml"
    path.write_bytes(bytes(buf))
    _load(path)


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["socket://127.0.0.1:0", "http://h:99999", "rfc2217://[::1]:70000", "itach://x:1/9:9", "~"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


@SETTINGS
@given(data=st.data())
def test_structurally_mutated_rig_files_are_valid_or_a_rig_file_error(valid, data) -> None:  # noqa: ANN001
    root, _, doc = valid
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(doc) if p]
        where = data.draw(st.sampled_from(paths))
        parent = doc
        for k in where[:-1]:
            parent = parent[k]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            parent[data.draw(st.text(min_size=1, max_size=12))] = data.draw(values)  # an unknown key
        else:
            parent[where[-1]] = data.draw(values)
    path = root / "structured.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    _load(path)


console = st.lists(
    st.sampled_from(
        [
            b"\x1b]0;pwned\x07",
            b"\x1b[2J",
            b"\x1b[6n",
            b"\x00",
            b"\x07",
            b"<script>alert(1)</script>",
            b"[x](http://e/) ![i](http://e/i.png)",
            b"Kernel panic - not syncing: ",
            b"Unable to handle kernel NULL pointer dereference at virtual address 00000000\n",
            b"PC is at decoder_submit+0x1c/0x80\n",
            b"\xff\xfe\xc3",
            b"\n",
            b"\r\n",
            b"Out of memory: Killed process 12 (stb_app)\n",
        ]
    )
    | st.binary(max_size=64),
    max_size=40,
)


@SETTINGS
@given(chunks=console)
def test_any_console_stream_gets_a_title_and_renders_without_raw_control_or_markup(chunks: list[bytes]) -> None:
    log = b"".join(chunks).decode("utf-8", errors="replace")
    fp = fingerprint(console_log=log, test_id="scenarios/test_x.py::test_y")
    for text in (fp.title, log):
        assert not CONTROL.search(for_terminal(text))
        html = for_html(text)
        assert not CONTROL.search(html) and "<" not in html
        md = for_markdown(text)
        assert not CONTROL.search(md) and "<" not in md and "](" not in md.replace("\\](", "").replace("\\(", "")
        assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f]", for_xml(text))
