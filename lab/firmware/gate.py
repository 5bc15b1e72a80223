"""The firmware gate: may this build ship? One answer for CI, with the new faults named.

``stblab firmware gate IMAGE --rigs FILE [--select model=...] [--suite smoke]``

1. **Validate before touching a rig**: the image parses (not truncated, manifest intact, payload
   hash right), is signed by a key the rig file trusts (``firmware.trusted_keys``), and is built
   for the model of every selected rig. A refused image exits :data:`EXIT_REFUSED` with the reason.
2. **Flash** each selected rig: upload over SFTP to ``firmware.upload_dir`` (skipped when the box
   already holds a file with that sha256), run ``fwupdate`` on the console, watch the reboot on the
   console, log in and check that ``fw version`` reports the image's version and build id.
3. **Run the suite** on each flashed rig (pytest, one process per rig), filing device faults
   into the RMA database; JUnit and Allure results carry the build's version, build id and
   sha256 as properties.
4. **Summarise**: new faults (with their fault ids) apart from known ones and from infra errors.

Exit codes: 0 the build may ship (no new device fault, every selected rig ran); 1 new device
faults; 2 infra errors or a rig that did not run (never a pass); 3 test errors; 4 bad input
(rig file, options); 5 image refused; 6 internal error (a bug in stblab).

Example::

    stblab firmware gate build/fw-2.1.0.img --rigs rigs/emulated.yaml --select model=STB-4K-X1
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.emulated_lab import ensure_emulated
from lab.errors import DeviceFault, InfraError, RigFileError, TestError
from lab.firmware.image import FirmwareImage, ImageError, load_public_key, read_image
from lab.rig import Rig, load_rigs, select_rigs

EXIT_PASS, EXIT_NEW_FAULTS, EXIT_INFRA, EXIT_TEST_ERROR, EXIT_USAGE, EXIT_REFUSED = 0, 1, 2, 3, 4, 5
EXIT_INTERNAL = 6  # a bug in stblab itself: no verdict
REPO = Path(__file__).resolve().parents[2]
_FWUPDATE_REFUSED = r"fwupdate: (?:error|refused)[^\r\n]*|fwupdate: [^\r\n]*No such file"
SUITES = {
    "smoke": ["scenarios/test_boot.py", "scenarios/test_agree.py", "scenarios/test_zapping.py",
              "scenarios/test_standby.py"],
    "full": ["scenarios"],
}  # fmt: skip


@dataclass
class FlashResult:
    """How flashing one rig went."""

    rig: str
    ok: bool
    uploaded: bool = False
    version_before: str | None = None
    version_after: str | None = None
    build_after: str | None = None
    seconds: float = 0.0
    kind: str | None = None  # None, "device_fault", "infra_error" or "test_error"
    reason: str = ""
    symptom: str | None = None
    serial: str | None = None


@dataclass
class GateResult:
    """Everything the gate decided, as printed and written to ``gate.json``."""

    image: dict[str, Any]
    rigs: list[str]
    flashed: list[FlashResult] = field(default_factory=list)
    new_faults: list[dict[str, Any]] = field(default_factory=list)
    known_faults: list[dict[str, Any]] = field(default_factory=list)
    infra_errors: list[dict[str, Any]] = field(default_factory=list)
    test_errors: list[dict[str, Any]] = field(default_factory=list)
    passed: int = 0
    failed: int = 0
    rigs_not_run: list[str] = field(default_factory=list)
    run_dir: str = ""

    @property
    def exit_code(self) -> int:
        """The gate's exit code: infra errors (or a rig that did not run) first, then new faults, then test errors."""
        if self.infra_errors or self.rigs_not_run:
            return EXIT_INFRA
        if self.new_faults:
            return EXIT_NEW_FAULTS
        if self.test_errors:
            return EXIT_TEST_ERROR
        return EXIT_PASS

    def verdict(self) -> str:
        """One line for CI: may the build ship, and if not, why not."""
        return {
            EXIT_PASS: "PASS: the build may ship",
            EXIT_NEW_FAULTS: "FAIL: new device faults",
            EXIT_INFRA: "ERROR: the lab failed; no verdict on the build",
            EXIT_TEST_ERROR: "ERROR: a scenario is wrong; no verdict on the build",
        }[self.exit_code]

    def lines(self) -> list[str]:
        """The human summary: image, flash per rig, suite counts, faults by kind, then the verdict."""
        img = self.image
        out = [f"image {img['version']} build {img['build_id']} for {img['model']} sha256 {img['sha256'][:16]}..."]
        for f in self.flashed:
            how = f.reason or ("uploaded" if f.uploaded else "upload skipped (box had it)")
            if f.ok:
                out.append(f"  {f.rig}: flashed {f.version_before} -> {f.version_after} ({how}, {f.seconds:.1f} s)")
            else:
                out.append(f"  {f.rig}: NOT flashed ({f.kind}): {f.reason}")
        out.append(f"suite: {self.passed} passed, {self.failed} failed")
        for e in self.new_faults:
            out.append(f"  NEW fault #{e['fault_id']} on {e['rig']}: {e['reason']} ({e['test']})")
        for e in self.known_faults:
            out.append(f"  known fault #{e['fault_id']} on {e['rig']}: {e['reason']} ({e['test']})")
        for e in self.infra_errors:
            out.append(f"  infra error on {e['rig']}: {e['reason']}")
        for e in self.test_errors:
            out.append(f"  test error on {e['rig']}: {e['reason']} ({e['test']})")
        for r in self.rigs_not_run:
            out.append(f"  rig {r} did not run the suite")
        out.append(self.verdict())
        return out


def split_new_known(
    new: list[dict[str, Any]], known: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """ "Known" means known before this gate: a fault first filed by one rig in this run is new on
    every rig that shows it (the filing on the second rig finds it already there)."""
    fresh = {e["fault_id"] for e in new if e["fault_id"] is not None}
    return new + [e for e in known if e["fault_id"] in fresh], [e for e in known if e["fault_id"] not in fresh]


def trusted_keys_for(rigs: list[Rig], extra: list[Path] | None = None) -> list[Any]:
    """The public keys the selected rigs trust (their ``firmware.trusted_keys``) plus ``extra``."""
    paths: list[Path] = list(extra or [])
    for rig in rigs:
        if rig.firmware is not None:
            paths += [p for p in rig.firmware.trusted_keys if p not in paths]
    keys = []
    for p in paths:
        try:
            keys.append(load_public_key(p))
        except OSError as exc:
            raise RigFileError(f"trusted key {p}: cannot read it ({exc.strerror or exc})") from exc
        except ImageError as exc:  # a broken key file is the lab's input, not a fault of the image
            raise RigFileError(f"trusted key {p}: {exc}") from exc
    return keys


def validate(image_path: Path, rigs: list[Rig], extra_keys: list[Path] | None = None) -> FirmwareImage:
    """Refuse a bad image before any rig is touched; returns the parsed image.

    Raises :class:`ImageError` (``reason`` says why: truncated, unsigned, untrusted-key,
    bad-signature, payload-hash, wrong-model, ...).
    """
    try:
        image = read_image(image_path)
    except OSError as exc:
        raise ImageError("unreadable", f"{image_path}: {exc.strerror or exc}") from exc
    keys = trusted_keys_for(rigs, extra_keys)
    if not keys:
        raise ImageError("untrusted-key", "no trusted keys: name them in the rig file (firmware.trusted_keys)")
    for rig in rigs:
        image.verify(keys, model=rig.model)
    return image


def _sha256_remote(stb: Any, path: str) -> str | None:
    res = stb.ssh.run(f"sha256sum {shlex.quote(path)}", timeout=60)
    if res.exit_code != 0:
        return None
    m = re.match(r"([0-9a-f]{64})\b", res.output.strip())
    return m.group(1) if m else None


def flash(stb: Any, image_path: Path, image: FirmwareImage) -> FlashResult:
    """Install ``image`` on the box behind ``stb`` (an :class:`lab.device.Stb`) and check it runs.

    The upload is skipped when the box already holds a file with the image's sha256.
    """
    from lab.device import REBOOTING

    rig: Rig = stb.rig
    result = FlashResult(rig=rig.name, ok=False)
    t0 = time.monotonic()
    upload_dir = rig.firmware.upload_dir if rig.firmware else "/data"
    remote = f"{upload_dir.rstrip('/')}/fw-{image.sha256[:16]}.img"
    try:
        stb.to("shell")
        result.version_before = stb.firmware_version()
        result.serial = stb.serial_number()
        if result.version_before == image.version and stb.info().get("firmware_build") == image.build_id:
            result.version_after, result.build_after = image.version, image.build_id
            result.ok, result.reason = True, "already running this build: not reinstalled"
            result.seconds = time.monotonic() - t0
            return result
        stb.ssh.wait_for_reconnect(timeout=60)  # sshd may come up a little after the console login
        if _sha256_remote(stb, remote) != image.sha256:
            stb.ssh.put(image_path, remote)
            result.uploaded = True
        stb.drop_ssh()
        console = stb.console
        console.drain()
        console.sendline(f"fwupdate {remote}")
        m = console.expect([REBOOTING, _FWUPDATE_REFUSED], timeout=120)
        if m.index == 1:
            raise DeviceFault(f"box refused the image: {m.match.group(0).strip()}", rig=rig.name, symptom="fwupdate")
        stb.state = "booting"
        stb.login(timeout=stb.boot_timeout)
        result.version_after = stb.firmware_version()
        result.build_after = stb.info().get("firmware_build")
        if result.version_after != image.version:
            raise DeviceFault(
                f"box runs {result.version_after} after installing {image.version} (fell back to the other slot?)",
                rig=rig.name,
                symptom="firmware-not-running",
            )
        if result.build_after and result.build_after != image.build_id:
            raise DeviceFault(
                f"box runs build {result.build_after}, image is build {image.build_id}",
                rig=rig.name,
                symptom="firmware-not-running",
            )
        result.ok = True
    except DeviceFault as exc:
        result.kind, result.reason, result.symptom = "device_fault", exc.message, exc.symptom
    except InfraError as exc:
        result.kind, result.reason = "infra_error", str(exc)
    except TestError as exc:
        result.kind, result.reason = "test_error", str(exc)
    result.seconds = time.monotonic() - t0
    return result


def _file_install_fault(rig: Rig, image: FirmwareImage, fr: FlashResult, run: Path, rma_db: str | None) -> Any:
    """File a build that does not install (or does not run after installing) as a device fault."""
    from lab.rma import FaultReport, RmaStore

    console = run / "flash" / rig.name / "console.log"
    report = FaultReport(
        rig=rig.name,
        device_serial=fr.serial or f"{rig.name}-unknown",
        model=rig.model,
        test_id="stblab firmware gate::install",
        firmware_version=image.version,
        firmware_build_id=image.build_id,
        firmware_sha256=image.sha256,
        check={"scenario": "firmware-gate", "check": "install", "target": fr.symptom or "fwupdate"},
        message=fr.reason,
        symptom=fr.symptom,
        artifacts={"console.log": console} if console.exists() else {},
        occurrence_key=f"gate:{run.name}:{rig.name}:{image.sha256[:16]}",
    )
    try:
        with RmaStore.open(rma_db) as store:
            return store.file(report)
    except Exception:  # noqa: BLE001 - the gate's verdict must not depend on the database being up
        return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate a suite process that is still running (the gate was interrupted or failed)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def suite_args(suite: str) -> list[str]:
    """pytest arguments for a suite name (``smoke``, ``full``) or a path/expression.

    Paths that exist here are made absolute: the suite runs with the repository as its folder.
    """
    if suite in SUITES:
        return [str(REPO / a) for a in SUITES[suite]]
    return [str(Path(a).absolute()) if not a.startswith("-") and Path(a).exists() else a for a in shlex.split(suite)]


def _db_for_child(rma_db: str | None) -> str | None:
    """``rma_db`` as a child process in another folder must see it: a plain path made absolute."""
    if rma_db and "://" not in rma_db:
        return str(Path(rma_db).absolute())
    return rma_db


def _pytest_cmd(rig_file: Path, rig: str, run_dir: Path, suite: list[str], props: dict[str, str],
                rma_db: str | None) -> list[str]:  # fmt: skip
    cmd = [sys.executable, "-m", "pytest", *suite, "-p", "no:cacheprovider", "-q", "-rfE"]
    cmd += ["-p", "lab.firmware.properties"]
    cmd += ["--rigs", str(rig_file), "--rig", rig, "--emulate", "never", "--run-dir", str(run_dir)]
    cmd += ["--junitxml", str(run_dir / rig / "junit.xml"), "--alluredir", str(run_dir / "allure-results")]
    cmd += ["--summary", str(run_dir / rig / "summary.json"), "-o", f"junit_suite_name=gate-{rig}"]
    for k, v in props.items():
        cmd += ["--build-property", f"{k}={v}"]
    if rma_db:
        cmd += ["--rma-db", rma_db]
    return cmd


def run_gate(
    image_path: Path,
    rig_file: Path,
    *,
    select: str | None = None,
    suite: str = "smoke",
    run_dir: Path | None = None,
    rma_db: str | None = None,
    extra_keys: list[Path] | None = None,
    emulate: str = "auto",
    echo: Any = print,
) -> GateResult:
    """Validate, flash, test and summarise (see the module docstring). Raises ImageError when refused
    and RigFileError for bad input; everything else ends up in the returned :class:`GateResult`."""
    from lab.device import Stb
    from lab.plugin.summary import DEVICE_FAULT, INFRA_ERROR, TEST_ERROR, SessionSummary

    rig_file = Path(rig_file).absolute()  # the suite runs in the repository's folder, not this one
    rma_db = _db_for_child(rma_db)
    rigs = select_rigs(load_rigs(rig_file), select)
    image = validate(image_path, rigs, extra_keys)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = (run_dir or REPO / "reports" / f"gate-{stamp}").absolute()
    run.mkdir(parents=True, exist_ok=True)
    info = {
        "model": image.model,
        "version": image.version,
        "build_id": image.build_id,
        "sha256": image.sha256,
        "path": str(image_path),
    }
    result = GateResult(image=info, rigs=[r.name for r in rigs], run_dir=str(run))
    echo(f"gate: image {image.version} build {image.build_id} for {image.model} is valid; run folder {run}")

    with ensure_emulated(rig_file, rigs, emulate, echo=lambda m: echo(f"gate: {m}")):
        flashed: list[Rig] = []

        def flash_one(rig: Rig) -> FlashResult:
            echo(f"gate: flashing {rig.name} ...")
            try:
                with Stb(rig, run_dir=run / "flash") as stb:
                    return flash(stb, image_path, image)
            except InfraError as exc:  # the console could not even be opened
                return FlashResult(rig=rig.name, ok=False, kind="infra_error", reason=str(exc))
            except TestError as exc:  # e.g. a rig without a serial console: one rig's problem, not a crash
                return FlashResult(rig=rig.name, ok=False, kind="test_error", reason=str(exc))
            except DeviceFault as exc:  # a death string while the console opened or closed
                return FlashResult(rig=rig.name, ok=False, kind="device_fault", reason=exc.message,
                                   symptom=exc.symptom)  # fmt: skip

        with ThreadPoolExecutor(max_workers=max(1, len(rigs))) as pool:  # rigs flash in parallel
            results = list(pool.map(flash_one, rigs))
        for rig, fr in zip(rigs, results, strict=True):
            result.flashed.append(fr)
            if fr.ok:
                flashed.append(rig)
            else:
                entry = {"rig": rig.name, "test": "flash", "reason": fr.reason, "fault_id": None}
                if fr.kind == "device_fault":
                    filed = _file_install_fault(rig, image, fr, run, rma_db)
                    entry["fault_id"] = filed.fault_id if filed else None
                    known = filed is not None and not filed.is_new and filed.fault_id is not None
                    (result.known_faults if known else result.new_faults).append(entry)
                elif fr.kind == "test_error":
                    result.test_errors.append(entry)
                else:
                    result.infra_errors.append(entry)
        props = {"firmware.version": image.version, "firmware.build_id": image.build_id,
                 "firmware.sha256": image.sha256, "firmware.model": image.model}  # fmt: skip
        with contextlib.ExitStack() as stack:  # on any way out, no suite process is left running
            procs: dict[str, subprocess.Popen[bytes]] = {}
            for rig in flashed:
                (run / rig.name).mkdir(parents=True, exist_ok=True)
                cmd = _pytest_cmd(rig_file, rig.name, run, suite_args(suite), props, rma_db)
                log = stack.enter_context(open(run / rig.name / "pytest.log", "wb"))
                env = dict(os.environ, STBLAB_BUILD=json.dumps(props))
                proc = stack.enter_context(
                    subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
                )
                stack.callback(_stop, proc)
                procs[rig.name] = proc
                echo(f"gate: running suite '{suite}' on {rig.name}")
            codes = {name: proc.wait() for name, proc in procs.items()}
        for name, code in codes.items():
            path = run / name / "summary.json"
            if not path.exists():
                result.rigs_not_run.append(name)
                reason = f"pytest exited {code} without a summary"
                result.infra_errors.append({"rig": name, "test": "pytest", "reason": reason, "fault_id": None})
                continue
            s = SessionSummary.read(path)
            result.passed += s.passed
            result.failed += s.failed
            for e in s.entries:
                entry = {"rig": e.rig or name, "test": e.nodeid, "reason": e.reason, "fault_id": e.fault_id}
                if e.kind == DEVICE_FAULT:
                    (result.new_faults if e.fault_new or e.fault_id is None else result.known_faults).append(entry)
                elif e.kind == INFRA_ERROR:
                    result.infra_errors.append(entry)
                elif e.kind == TEST_ERROR:
                    result.test_errors.append(entry)
    result.new_faults, result.known_faults = split_new_known(result.new_faults, result.known_faults)
    for f in result.flashed:  # a rig the build broke has run: its fault is the result
        if not f.ok and f.kind != "device_fault" and f.rig not in result.rigs_not_run:
            result.rigs_not_run.append(f.rig)
    data = asdict(result) | {"exit_code": result.exit_code, "verdict": result.verdict()}
    (run / "gate.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return result
