"""Fingerprints: one bug -> one title across boxes, firmware and architectures; different bugs apart."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lab.rma import fingerprint_check, fingerprint_log
from lab.rma.cli import app
from lab.rma.fingerprint import ALGORITHM_VERSION, ALGORITHMS, fingerprint, normalise, title_hash

from .conftest import LOGS, log_text

NULL_DEREF = "BUG: unable to handle kernel NULL pointer dereference"


def fp(name: str):
    result = fingerprint_log(log_text(name))
    assert result is not None, f"{name}: no crash found"
    return result


@pytest.mark.parametrize(
    ("log", "kind", "title"),
    [
        ("arm_oops_decoder.log", "oops", f"{NULL_DEREF} in mpeg_decode_slice"),
        ("emulator_oops_menu.log", "oops", f"{NULL_DEREF} in stb_osd_menu_select"),
        ("arm64_paging_hdmi.log", "oops", "BUG: unable to handle kernel paging request in hdmi_cec_rx"),
        ("oom_stb_app.log", "oom", "out of memory: killed stb_app"),
        ("segfault_dvbd.log", "segfault", "segfault in dvbd (libdvbpsi.so)"),
        ("softlockup.log", "lockup", "BUG: soft lockup in hdmi_hpd_poll"),
        ("panic_init.log", "panic", "kernel panic: Attempted to kill init! exitcode=0x00000004"),
        ("watchdog_only.log", "watchdog", "watchdog reset"),
        ("warning_ir.log", "warning", "WARNING in stb_ir_keydown"),
    ],
)
def test_each_crash_kind_gets_a_normalised_title(log: str, kind: str, title: str) -> None:
    result = fp(log)
    assert (result.kind, result.title) == (kind, title)
    assert result.algorithm_version == ALGORITHM_VERSION
    # nothing that changes between two hits of one bug survives in a title
    for s in [result.title, *result.alternatives]:
        assert not any(tok.isdigit() and len(tok) > 1 for tok in s.replace(":", " ").split())


def test_init_exit_code_names_the_bug() -> None:
    """0x00000004 (init killed by SIGILL) is another bug than 0x00007f00 (init exited 127): the code stays.

    The title that made every code ADDR is no alternative (it would file every init death in one fault):
    ``stblab rma retitle`` splits faults filed under it.
    """
    result = fp("panic_init.log")
    assert result.title.endswith("exitcode=0x00000004")
    assert not any(a.endswith("exitcode=ADDR") for a in result.alternatives)


def test_a_clean_log_has_no_title() -> None:
    assert fingerprint_log(log_text("clean_boot.log")) is None


def test_same_bug_with_other_addresses_pids_times_and_firmware_gets_the_same_fingerprint() -> None:
    a, b = fp("arm_oops_decoder.log"), fp("arm_oops_decoder_2.log")
    assert a.hash == b.hash
    assert a.signatures == b.signatures
    assert fp("oom_stb_app.log").hash == fp("oom_stb_app_2.log").hash


def test_arm_and_x86_reports_of_one_bug_meet() -> None:
    arm, x86 = fp("arm_oops_decoder.log"), fp("x86_oops_decoder.log")
    assert arm.title == x86.title
    assert "memory stack: mpeg_decode_slice < decoder_ioctl < do_vfs_ioctl" in arm.alternatives
    assert "memory stack: mpeg_decode_slice < decoder_ioctl < do_vfs_ioctl" in x86.alternatives


def test_a_report_that_lost_its_first_line_meets_through_an_alternative_title() -> None:
    full, cut = fp("arm_oops_decoder.log"), fp("trace_only_decoder.log")
    assert full.title != cut.title
    assert {s.hash for s in full.signatures} & {s.hash for s in cut.signatures}


def test_generic_panic_lines_do_not_name_the_bug() -> None:
    # Both logs end in "Kernel panic - not syncing: Fatal exception...": the oops before it names the bug.
    a, b = fp("arm_oops_decoder.log"), fp("emulator_oops_menu.log")
    assert "Fatal exception" not in a.title and "Fatal exception" not in b.title
    assert {s.hash for s in a.signatures}.isdisjoint({s.hash for s in b.signatures})


def test_different_bugs_stay_apart() -> None:
    names = [
        "arm_oops_decoder.log",
        "emulator_oops_menu.log",
        "arm64_paging_hdmi.log",
        "oom_stb_app.log",
        "oom_epg.log",
        "segfault_dvbd.log",
        "softlockup.log",
        "panic_init.log",
        "watchdog_only.log",
        "warning_ir.log",
    ]
    sigsets = {n: {s.hash for s in fp(n).signatures} for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert sigsets[a].isdisjoint(sigsets[b]), f"{a} and {b} would be filed as one fault"


def test_check_fingerprint_ignores_score_and_parameters_but_not_target() -> None:
    base = {"scenario": "scenarios/test_zap.py::test_zap[stb-a-seed1]", "check": "motion", "target": "channel 5"}
    a = fingerprint_check({**base, "detail": {"score": 0.01}})
    b = fingerprint_check(
        {**base, "scenario": "scenarios/test_zap.py::test_zap[stb-b-seed9]", "detail": {"score": 0.4}}
    )
    c = fingerprint_check({**base, "target": "channel 6"})
    d = fingerprint_check({**base, "check": "black"})
    assert a.hash == b.hash
    assert a.title == "check motion failed on channel 5 in scenarios/test_zap.py::test_zap"
    assert len({a.hash, c.hash, d.hash}) == 3
    with pytest.raises(ValueError, match="scenario"):
        fingerprint_check({"check": "motion"})


def test_console_crash_wins_over_the_check_that_noticed_it() -> None:
    result = fingerprint(
        console_log=log_text("emulator_oops_menu.log"),
        check={"scenario": "t::x", "check": "motion", "target": "screen"},
    )
    assert result.kind == "oops"
    assert (
        fingerprint(console_log=log_text("clean_boot.log"), check={"scenario": "t", "check": "black"}).kind == "check"
    )


def test_hash_includes_algorithm_version_so_a_new_algorithm_never_collides_with_old_hashes() -> None:
    assert len({title_hash("x", 1), title_hash("x", 2), title_hash("x", 3)}) == 3
    assert set(ALGORITHMS) == {1, 2, 3} and ALGORITHM_VERSION == 3


def test_normalise_strips_numbers_but_keeps_identifiers() -> None:
    assert normalise("i2c_transfer+0x1c/0x40 at 0xdeadbeef pid 1234 mt7601u") == "i2c_transfer at ADDR pid N mt7601u"


def test_title_command_prints_title_alternatives_and_fingerprint_for_files_and_stdin() -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["title", str(LOGS / "arm_oops_decoder.log"), str(LOGS / "clean_boot.log"), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out[0]["title"] == "BUG: unable to handle kernel NULL pointer dereference in mpeg_decode_slice"
    assert out[0]["fingerprint"] == fp("arm_oops_decoder.log").hash
    assert (out[0]["kind"], out[0]["guilty_frame"], out[0]["corrupted"]) == ("oops", "mpeg_decode_slice", False)
    assert out[0]["alternatives"] and out[0]["algorithm_version"] == 3
    assert out[1]["title"] is None and out[1]["fingerprint"] is None and out[1]["corrupted"] is False
    res = runner.invoke(app, ["title", "-"], input=log_text("x86_oops_decoder.log"))
    assert res.exit_code == 0
    assert "title        BUG: unable to handle kernel NULL pointer dereference in mpeg_decode_slice" in res.stdout
    assert "guilty frame mpeg_decode_slice" in res.stdout
    assert fp("x86_oops_decoder.log").hash in res.stdout
    res = runner.invoke(app, ["title", "/nonexistent/console.log"])
    assert res.exit_code == 2 and "cannot read /nonexistent/console.log" in res.stderr


def test_a_crash_at_the_end_of_a_long_noisy_log_is_found_on_the_right_line() -> None:
    noise = "".join(f"[{i / 100:12.6f}] usb 1-1: ordinary line {i} with Bug-free words\r\n" for i in range(50_000))
    result = fingerprint_log(noise + log_text("x86_oops_decoder.log") + noise)
    assert result is not None
    assert result.title == "BUG: unable to handle kernel NULL pointer dereference in mpeg_decode_slice"
    assert result.frames[:2] == ("mpeg_decode_slice", "decoder_ioctl")


def _console(lines: list[str], t0: float) -> str:
    return "".join(f"[{t0 + i * 0.000013:12.6f}] {line}\r\n" for i, line in enumerate(lines))


def test_the_emulated_boxes_crashes_file_as_one_fault_each() -> None:
    """The emulator's kernel panic, OOM kill and boot failure, as two boxes would print them."""
    import random

    from lab.emulator import bootlog

    oops_a = _console(bootlog.oops_lines("STB-4K-X1", "5.15.104-stb", random.Random(1)), 120.5)
    oops_b = _console(bootlog.oops_lines("STB-4K-X1", "5.15.110-stb", random.Random(2)), 3071.25)
    oom_a = _console(bootlog.oom_lines(512_000, 200_000), 88.0)
    oom_b = _console(bootlog.oom_lines(1_024_000, 640_000), 2201.0)
    boot = _console(bootlog.boot_fail_lines("5.15.104-stb"), 2.8)
    fps = {
        name: fingerprint_log(text)
        for name, text in {"oops_a": oops_a, "oops_b": oops_b, "oom_a": oom_a, "oom_b": oom_b, "boot": boot}.items()
    }
    assert all(fps.values())
    assert fps["oops_a"].hash == fps["oops_b"].hash and fps["oom_a"].hash == fps["oom_b"].hash
    assert len({fps["oops_a"].hash, fps["oom_a"].hash, fps["boot"].hash}) == 3
    assert fps["oops_a"].kind == "oops" and fps["oom_a"].kind == "oom" and fps["boot"].kind == "panic"
    assert not any(f.corrupted for f in fps.values())


def test_warnings_without_a_call_trace_at_different_places_stay_apart() -> None:
    a = fingerprint_log("[    1.000000] WARNING: CPU: 0 PID: 1 at drivers/gpu/foo.c:123\n")
    b = fingerprint_log("[    9.000000] WARNING: CPU: 1 PID: 7 at net/core/dev.c:55\n")
    a2 = fingerprint_log("[  300.000000] WARNING: CPU: 1 PID: 99 at drivers/gpu/foo.c:123\n")
    assert a is not None and b is not None and a2 is not None
    assert a.title == "WARNING at drivers/gpu/foo.c:N" and not a.corrupted
    assert a.hash != b.hash and a.hash == a2.hash
    assert not {s.hash for s in a.signatures} & {s.hash for s in b.signatures}
    # v1 and v2 hashes are never rewritten: filing still computes them to find faults stored under them
    assert fingerprint_log("[ 1.0] WARNING: CPU: 0 PID: 1 at x.c:1\n", 1).title == "WARNING"
    assert fingerprint_log("[ 1.0] WARNING: CPU: 0 PID: 1 at x.c:1\n", 2).title == "WARNING at x.c:N"
