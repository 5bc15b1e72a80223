"""Text from boxes is data: warranty evidence, verdicts and the RMA command's output carry no raw
markup or terminal control, whatever the box printed."""

from __future__ import annotations

import re

from lab.warranty.evidence import MAX_VALUE, evidence_from_diag, evidence_from_dmesg
from lab.warranty.rules import Findings, Indicator, decide

HOSTILE = (
    "\x1b]0;pwned\x07\x1b[2J\x1b[6n\x00\x07<script>alert(1)</script><img src=x onerror=alert(2)>"
    "[click](http://evil.example) ![img](http://evil.example/x.png) | cell |"
)
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def test_evidence_values_from_a_box_are_bounded_and_show_control_bytes_as_escapes() -> None:
    diag = {
        "verified_boot": HOSTILE,
        "firmware": "x" * 5_000_000,
        "tamper": HOSTILE,
        "brownouts": HOSTILE,
        "reboot_reasons": {HOSTILE: 1, 3: 2},
    }
    items = evidence_from_diag(diag)
    for item in items:
        assert not RAW.search(item.value), item
        assert len(item.value) <= MAX_VALUE + 60
    dmesg = evidence_from_dmesg(("thermal shutdown " + HOSTILE + "\n") * 50 + "surge " + "y" * 5_000_000)
    assert dmesg and all(not RAW.search(i.value) and len(i.value) < 20 * 500 for i in dmesg)


def test_a_verdict_renders_box_text_as_text_in_every_output() -> None:
    ind = [
        Indicator("electrical", "overvoltage", HOSTILE, "ssh: diag"),
        Indicator("physical", "tamper", "tripped", HOSTILE),
    ]
    d = decide(Findings(reproduced=True, reproduced_on_reference=False, indicators=ind, faults=[HOSTILE] * 30))
    assert d.verdict == "user_damage"
    for out in (d.justification, d.as_text(), d.as_markdown(), d.as_html()):
        assert "\x1b" not in out and "\x00" not in out and "\x07" not in out
    assert "<script>" not in d.as_markdown() and "<img" not in d.as_markdown()
    assert "](http" not in d.as_markdown()  # no link renders
    assert "<script>" not in d.as_html() and "&lt;script&gt;" in d.as_html()
    assert "and 10 more" in d.justification and len(d.justification) < 20_000
