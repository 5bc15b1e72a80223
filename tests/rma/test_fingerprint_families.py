"""Fingerprint v3 rule by rule: what each family of crash report is titled, and what never changes a title."""

from __future__ import annotations

import re

import pytest

from lab.rma.crash import find_report
from lab.rma.crash.frames import SKIP_FILE, frame_of, guilty, pc_of, skipped
from lab.rma.crash.lines import clean
from lab.rma.fingerprint import fingerprint_log

ARM_OOPS = """\
Unable to handle kernel NULL pointer dereference at virtual address 00000000
Internal error: Oops: 17 [#1] PREEMPT SMP ARM
CPU: 0 PID: 1187 Comm: dvbplayer Tainted: G           O    4.9.113 #1
PC is at {func}+0x14/0x60 [stb_av]
LR is at decoder_stop+0x48/0x9c [stb_av]
"""


def title(text: str) -> str:
    fp = fingerprint_log(text)
    assert fp is not None, text
    return fp.title


@pytest.mark.parametrize("func", ["assign_and_init_hc", "bcm2835_sdhost_dma_complete", "deadbeef_flush", "fade_in"])
def test_function_names_starting_with_hex_letters_keep_their_first_letters(func: str) -> None:
    assert title(ARM_OOPS.format(func=func)) == f"BUG: unable to handle kernel NULL pointer dereference in {func}"
    assert pc_of(f"pc : {func}+0x98/0x2a0") == func
    assert pc_of(f"PC is at {func}+0x98/0x2a0") == func
    assert pc_of(f"pc : [<c0433d8c>] {func}+0x98/0x2a0") == func
    assert pc_of(f"epc   : 80123456 {func}+0x70/0x1c4 [brcm_dvr]") == func


def test_a_syslog_prefix_with_a_kernel_timestamp_keeps_the_crashing_function() -> None:
    lines = ARM_OOPS.format(func="dvb_flush").splitlines()
    text = "".join(f"Apr  2 10:00:00 stb kernel: [  12.3] {line}\n" for line in lines)
    assert title(text) == "BUG: unable to handle kernel NULL pointer dereference in dvb_flush"
    assert clean("Feb  2 14:32:58 openelec user.warn kernel: [ 4864.925991] PC is at put_page+0x9/0x1")[0] == (
        "PC is at put_page+0x9/0x1"
    )


SEGV = "segfault at 18 ip 00007f3a12c4e1d0 sp 00007ffd8b1c2e90 error 4 in libavcodec.so.58{v}[7f3a1276a000+1a1d000]"


@pytest.mark.parametrize(
    "line",
    [
        "[ 8123.44] dvbplayer[2210]: " + SEGV.format(v=".1.2"),
        "May 21 10:14:03 stb kernel: dvbplayer[2210]: " + SEGV.format(v=""),
        "> [Thu May 21 10:14:03 2026] kernel: dvbplayer[2210]: " + SEGV.format(v=""),
        "[ 1502.2] dvbplayer[2212]: unhandled level 3 translation fault (11) at 0x00000018, esr 0x92000007, "
        "in libavcodec.so.58[7f8a1c0000+1a1d000]",
    ],
)
def test_user_space_segfaults_are_titled_by_binary_and_library_however_they_are_carried(line: str) -> None:
    assert title(line + "\n") == "segfault in dvbplayer (libavcodec.so)"


def test_the_first_report_names_the_bug_not_the_panic_or_a_second_oops_it_causes() -> None:
    first = ARM_OOPS.format(func="fade_alpha_blend")
    second = "Unable to handle kernel paging request at virtual address 00000004\nPC is at gfx_release+0x1c/0x90\n"
    text = first + second + "Kernel panic - not syncing: Fatal exception\nRebooting in 10 seconds..\n"
    assert title(text) == "BUG: unable to handle kernel NULL pointer dereference in fade_alpha_blend"
    alone = fingerprint_log("[ 1.0] Kernel panic - not syncing: Fatal exception\n")
    assert alone is not None and alone.corrupted  # the report that caused it is lost


def test_lines_of_another_task_printed_in_between_are_ignored() -> None:
    text = (
        "[ 1.0][ T100] BUG: KASAN: use-after-free in igmp_start_timer+0xd2/0x110\n"
        "[ 1.0][ T200] WARNING: CPU: 0 PID: 200 at drivers/x.c:1 other_func+0x1/0x2\n"
        "[ 1.0][ T100] Read of size 8 at addr ffff88801e3b4a40 by task iptv/100\n"
        "[ 1.0][ T200] Call Trace:\n"
        "[ 1.0][ T200]  other_caller+0x1/0x2\n"
        "[ 1.0][ T100] Call Trace:\n"
        "[ 1.0][ T100]  kasan_report+0xb0/0x140\n"
        "[ 1.0][ T100]  igmp_start_timer+0xd2/0x110\n"
        "[ 1.0][ T100]  igmp_ifc_event+0x1bd/0x2a0\n"
    )
    fp = fingerprint_log(text)
    assert fp is not None and fp.title == "KASAN: use-after-free Read in igmp_start_timer"
    assert fp.frames[:2] == ("igmp_start_timer", "igmp_ifc_event")


def test_a_truncated_report_is_titled_but_never_shares_a_fingerprint_with_a_complete_or_another_truncated_one() -> None:
    cut_a = "[ 1.0] general protection fault: 0000 [#1] SMP KASAN\n[ 1.0] CPU: 1 PID: 18769 Comm: iptv-agent\n"
    cut_b = "[ 9.0] general protection fault: 0000 [#1] SMP KASAN\n[ 9.0] CPU: 0 PID: 301 Comm: epgd\n"
    cut_a2 = "[ 5.5] general protection fault: 0000 [#1] SMP KASAN\n[ 5.5] CPU: 0 PID: 77 Comm: iptv-agent\n"
    full = cut_a + "[ 1.0] RIP: 0010:igmp_group_lookup+0x6d/0x2c0\n"
    a, b, a2, f = (fingerprint_log(t) for t in (cut_a, cut_b, cut_a2, full))
    assert a and b and a2 and f
    assert a.corrupted and a.title == "general protection fault" and not f.corrupted
    assert a.hash != f.hash and a.hash != b.hash
    assert a.hash == a2.hash  # what is left of them reads the same: the same bug cut at the same place
    assert not {s.hash for s in a.signatures} & {s.hash for s in f.signatures}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WARNING: CPU: 0 PID: 1 at kernel/locking/lockdep.c:1 x+0x1/0x2\n", "WARNING in x"),
        ("WARNING: possible circular locking dependency detected\nstack backtrace:\nCall Trace:\n"
         " dump_stack+0x1/0x2\n lock_acquire+0x1/0x2\n __mutex_lock+0x1/0x2\n dvr_ioctl+0x1/0x2\n",
         "possible deadlock in dvr_ioctl"),
        ("[ INFO: suspicious RCU usage. ]\n", "suspicious RCU usage"),  # old lockdep banner, cut: corrupted
        ("BUG: workqueue lockup - pool cpus=0 node=0 flags=0x0 nice=0 stuck for 40s!\n", "BUG: workqueue lockup"),
        ("UBSAN: Undefined behaviour in net/x.c:12:3\nindex 7 is out of range for type 'u8 [4]'\nCall Trace:\n"
         " __ubsan_handle_out_of_bounds+0x1/0x2\n ir_decode+0x1/0x2\n",
         "UBSAN: array-index-out-of-bounds in ir_decode"),
        ("BUG: KCSAN: data-race in ring_read / ring_write\n", "KCSAN: data-race in ring_read / ring_write"),
        ("ANR in com.acme.tv (com.acme.tv/.Main)\nPID: 12\nReason: executing service com.acme.tv/.EpgService\n",
         "ANR in com.acme.tv: executing service com.acme.tv/.EpgService"),
        ("W/System.err( 12): java.io.IOException: no route\n"
         "W/System.err( 12): \tat com.acme.Net.get(Net.java:3)\n", None),
    ],
)  # fmt: skip
def test_family_rules(text: str, expected: str | None) -> None:
    fp = fingerprint_log(text)
    assert (fp.title if fp else None) == expected


def test_a_tombstone_is_titled_by_process_and_top_frame_past_the_abort_path() -> None:
    text = (
        "*** *** *** *** *** *** *** *** *** *** *** *** *** *** *** ***\n"
        "pid: 612, tid: 640, name: AudioOut_D  >>> /system/bin/audioserver <<<\n"
        "signal 6 (SIGABRT), code -1 (SI_QUEUE), fault addr --------\n"
        "backtrace:\n"
        "      #00 pc 0004e3c6  /apex/com.android.runtime/lib/bionic/libc.so (abort+166)\n"
        "      #01 pc 0005f2a1  /apex/com.android.runtime/lib/bionic/libc.so (__fortify_fatal(char const*, ...)+26)\n"
        "      #02 pc 00012a0d  /vendor/lib/hw/audio.primary.acme.so (out_write+252) (BuildId: 6d1e)\n"
    )
    fp = fingerprint_log(text)
    assert fp is not None and fp.title == "SIGABRT in audioserver: out_write (audio.primary.acme.so)"
    assert fp.guilty == "out_write" and "SIGABRT in out_write (audio.primary.acme.so)" in fp.alternatives


def test_the_skip_list_is_data_with_a_comment_per_entry_and_each_entry_compiles() -> None:
    entries = [ln for ln in SKIP_FILE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(entries) > 40 and "v3" in SKIP_FILE.name
    for entry in entries:
        pattern, sep, comment = entry.partition("#")
        assert sep and comment.strip(), f"entry without a comment: {entry!r}"
        re.compile(pattern.strip())
    assert skipped("kasan_report") and skipped("memcpy") and skipped("_raw_spin_lock_irqsave")
    assert not skipped("dvb_demux_feed_start") and not skipped("decoder_flush_queue")
    assert guilty(["dump_stack", "__warn", "warn_slowpath_fmt", "stb_vdec_release"]) == "stb_vdec_release"


@pytest.mark.parametrize(
    ("line", "func"),
    [
        (" dvb_usercopy+0xb9/0x180 [dvb_core]", "dvb_usercopy"),
        ("[<bf01a2f4>] (dvb_demux_feed_start [dvb_core]) from [<bf01b0a8>] (x+0x50/0xf4)", "dvb_demux_feed_start"),
        (" unwind_backtrace from show_stack+0x10/0x14", "unwind_backtrace"),
        (" __dump_stack lib/dump_stack.c:17 [inline]", "__dump_stack"),
        ("[c000000001b1fd50] [c0000000000c3a80] dvb_poll+0x1c/0x40", "dvb_poll"),
        ("<IRQ>  [<ffffffff816efb87>] _sched_show_task+0x31a/0x325", "_sched_show_task"),
        (" tasklet_action_common.constprop.4+0x68/0x100", "tasklet_action_common"),
        (" ? ip6_input+0x11f/0x560", None),
        ("RIP: 0010:close_ctree+0x911/0xd50", None),
    ],
)
def test_frames_of_every_architecture_and_kernel_generation(line: str, func: str | None) -> None:
    assert frame_of(clean(line)[0]) == func


def test_a_log_without_a_crash_and_ordinary_words_give_no_title() -> None:
    quiet = "[ 1.0] usb 1-1: new device\n[ 2.0] stb-app: INFO: all tuners locked\n[ 3.0] dvb: no BUG found\n"
    assert find_report(quiet) is None
    assert find_report("") is None
