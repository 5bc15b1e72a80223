"""What the emulated box prints: U-Boot banner and environment, kernel boot log, init, crashes.

Pure text builders (no I/O), so the box module keeps only the state machine.

Example::

    for line in kernel_boot_lines(model="STB-4K-X1", release="5.15.104-stb"):
        print(line)
"""

from __future__ import annotations

import random

UBOOT_VERSION = "U-Boot 2023.04-stb1 (Mar 14 2026 - 09:12:44 +0000)"
KERNEL_RELEASE = "5.15.104-stb"
KERNEL_DATE = "Fri Mar 14 09:40:02 UTC 2026"


def uboot_banner(model: str, revision: str, serial: str, slot: str, verified_boot: str = "ok") -> list[str]:
    """Lines U-Boot prints from reset up to the autoboot countdown."""
    secure = {"ok": "enabled, image signature OK", "failed": "FAILED: unofficial image", "disabled": "disabled"}
    return [
        "",
        UBOOT_VERSION,
        "",
        "CPU:   ARMv7 Cortex-A53 @ 1.5 GHz (4 cores)",
        f"Model: stblab {model} rev {revision}",
        "DRAM:  1 GiB",
        "Core:  62 devices, 21 uclasses, devicetree: separate",
        "MMC:   mmc@fe310000: 0",
        "Loading Environment from MMC... OK",
        "In:    serial@fe660000",
        "Out:   serial@fe660000",
        "Err:   serial@fe660000",
        f"serial#={serial}",
        "Net:   eth0: ethernet@fe2a0000",
        f"Secure boot: {secure.get(verified_boot, verified_boot)}",
        f"Boot slot: {slot}",
    ]


def uboot_help() -> list[str]:
    """``help`` at the U-Boot prompt."""
    return [
        "?         - alias for 'help'",
        "boot      - boot default, i.e., run 'bootcmd'",
        "help      - print command description/usage",
        "printenv  - print environment variables",
        "reset     - Perform RESET of the CPU",
        "saveenv   - save environment variables to persistent storage",
        "setenv    - set environment variables",
        "version   - print monitor, compiler and linker version",
    ]


def kernel_boot_lines(model: str, release: str, cmdline: str, rootpart: int = 5) -> list[str]:
    """Kernel messages from decompression to the root filesystem mount (without timestamps)."""
    return [
        "Booting Linux on physical CPU 0x0",
        f"Linux version {release} (builder@stblab) (arm-linux-gnueabihf-gcc (GCC) 12.2.0) #1 SMP PREEMPT {KERNEL_DATE}",
        "CPU: ARMv7 Processor [410fd034] revision 4 (ARMv7), cr=30c5383d",
        f"OF: fdt: Machine model: stblab {model}",
        "Memory policy: Data cache writealloc",
        f"Kernel command line: {cmdline}",
        "Memory: 1015808K/1048576K available (9216K kernel code, 1024K rwdata, 3072K rodata)",
        "SMP: Total of 4 processors activated (96.00 BogoMIPS).",
        "clocksource: arch_sys_counter: mask: 0xffffffffffffff max_cycles: 0x588fe9dc0",
        "NET: Registered PF_INET protocol family",
        "mmc0: new HS200 MMC card at address 0001",
        "mmcblk0: mmc0:0001 8GTF4R 7.28 GiB",
        "stb_hdmi: HDMI transmitter ready (EDID ok)",
        "stb_ir: IR receiver on gpio 23 (NEC)",
        "dvb_core: DVB demux registered",
        f"EXT4-fs (mmcblk0p{rootpart}): mounted filesystem with ordered data mode. Opts: (null)",
        f"VFS: Mounted root (ext4 filesystem) readonly on device 179:{rootpart}.",
        "Freeing unused kernel memory: 1024K",
        "Run /sbin/init as init process",
    ]


def init_lines(version: str, hostname: str) -> list[str]:
    """What init prints (not kernel messages: no timestamps)."""
    return [
        "Starting syslogd: OK",
        "Starting klogd: OK",
        "Running sysctl: OK",
        "Starting network: OK",
        "Starting sshd: OK",
        "Starting stb_app: OK",
        "",
        f"stblab STB firmware {version} ({hostname})",
    ]


def boot_fail_lines(release: str) -> list[str]:
    """A firmware that cannot start init: the kernel panics during boot."""
    return [
        "EXT4-fs error (device mmcblk0p5): ext4_lookup:1706: inode #2: comm swapper/0: deleted inode referenced",
        "Run /sbin/init as init process",
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000004",
        f"CPU: 0 PID: 1 Comm: init Not tainted {release} #1",
        "---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000004 ]---",
    ]


def oops_lines(model: str, release: str, rng: random.Random) -> list[str]:
    """A real-looking NULL-pointer Oops with a call trace, ending in a panic."""
    trace_id = f"{rng.getrandbits(64):016x}"
    return [
        "8<--- cut here ---",
        "Unable to handle kernel NULL pointer dereference at virtual address 00000004",
        "[00000004] *pgd=00000000",
        "Internal error: Oops: 17 [#1] PREEMPT SMP ARM",
        "Modules linked in: stb_hdmi(O) stb_ir(O) dvb_core",
        f"CPU: 1 PID: 412 Comm: stb_app Tainted: G           O      {release} #1",
        f"Hardware name: stblab {model} (Device Tree)",
        "PC is at stb_osd_menu_select+0x4c/0x1a0 [stb_hdmi]",
        "LR is at stb_input_event+0x98/0x120 [stb_ir]",
        "pc : [<bf01204c>]    lr : [<bf0200d8>]    psr: 60000013",
        "sp : c1a3de40  ip : 00000000  fp : c1a3de6c",
        "r3 : 00000000  r2 : 00000009  r1 : c2b81e00  r0 : 00000000",
        "Backtrace:",
        "[<bf01204c>] (stb_osd_menu_select [stb_hdmi]) from [<bf0200d8>] (stb_input_event+0x98/0x120 [stb_ir])",
        "[<bf0200d8>] (stb_input_event [stb_ir]) from [<c05a1e44>] (input_to_handler+0xa4/0xf8)",
        "[<c05a1e44>] (input_to_handler) from [<c05a3b10>] (input_pass_values+0x1b8/0x1e8)",
        "[<c05a3b10>] (input_pass_values) from [<c05a4cd0>] (input_handle_event+0x150/0x5a0)",
        "[<c05a4cd0>] (input_handle_event) from [<c05a5180>] (input_event+0x60/0x74)",
        "[<c05a5180>] (input_event) from [<bf020164>] (stb_ir_keydown+0x44/0x80 [stb_ir])",
        "[<bf020164>] (stb_ir_keydown [stb_ir]) from [<c0196a38>] (irq_thread_fn+0x28/0x7c)",
        "Code: e5943000 e3530000 0a000010 e5932004 (e5923004)",
        f"---[ end trace {trace_id} ]---",
        "Kernel panic - not syncing: Fatal exception in interrupt",
        "CPU0: stopping",
        "---[ end Kernel panic - not syncing: Fatal exception in interrupt ]---",
    ]


def oom_lines(total_kb: int, app_kb: int, *, name: str = "stb_app", pid: int = 412) -> list[str]:
    """The OOM killer choosing the largest process (by default the leaking UI application)."""
    return [
        f"{name} invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0",
        "Mem-Info:",
        f"active_anon:{app_kb // 4} inactive_anon:0 isolated_anon:0 free:1020 free_pcp:12 free_cma:0",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        f"[{pid:>7}]     0 {pid:>5} {app_kb // 4 + 9000:>8} {app_kb // 4:>8}   {app_kb:>8}"
        f"        0             0 {name}",
        f"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),task={name},pid={pid},uid=0",
        f"Out of memory: Killed process {pid} ({name}) total-vm:{app_kb + 36000}kB, anon-rss:{app_kb}kB, "
        "file-rss:5120kB, shmem-rss:0kB, UID:0 pgtables:1024kB oom_score_adj:0",
    ]


__all__ = [
    "KERNEL_DATE",
    "KERNEL_RELEASE",
    "UBOOT_VERSION",
    "boot_fail_lines",
    "init_lines",
    "kernel_boot_lines",
    "oom_lines",
    "oops_lines",
    "uboot_banner",
    "uboot_help",
]
