"""The firmware gate: may this build ship? One answer for CI, with the new faults named.

``stblab firmware gate IMAGE --rigs FILE [--select model=...] [--suite smoke]``

1. **Validate before touching a rig**: the image parses (not truncated, manifest intact, payload
   hash right), is signed by a key the rig file trusts (``firmware.trusted_keys``), and is built
   for the model of every selected rig. A refused image exits :data:`EXIT_REFUSED` with the reason.
2. **Flash** each selected rig: upload over SFTP to ``firmware.upload_dir`` (skipped when the box
   already holds a file with that sha256), run ``fwupdate`` on the console, watch the reboot on the
   console, log in and check that ``fw version`` reports the image's version and build id.
   The suite is planned here too (collected per rig, tests a rig cannot run left out and listed): a
   selection that collects nothing or a path that does not exist is bad input, before any rig.
3. **Run the suite** on each flashed rig as one job (:mod:`lab.jobs`: one pytest process per rig,
   under ``--test-timeout``/``--rig-timeout``/``--job-timeout``), filing device faults into the RMA
   database; JUnit and Allure results carry the build's version, build id and sha256 as properties.
4. **Decide**: the build may ship only when every planned rig was flashed, ran every planned test
   and each one passed. Skipped, timed out, errored or not run is never "may ship".

Exit codes (lab.outcome's table): 0 the build may ship; 1 device faults (new or known) or a build
that does not install; 2 infra errors, timed-out tests; 3 test errors; 4 bad input (rig file,
options, an empty selection, a missing, unreadable or untrusted image); 5 incomplete (a rig that
did not run or finish, skipped or not-run tests); 6 internal error (a bug in stblab).

Example::

    stblab firmware gate build/fw-2.1.0.img --rigs rigs/emulated.yaml --select model=STB-4K-X1
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.emulated_lab import ensure_emulated
from lab.errors import DeviceFault, InfraError, RigFileError, TestError
from lab.firmware.image import FirmwareImage, ImageError, load_public_key, read_image
from lab.outcome import ExitCode, worst
from lab.rig import Rig, load_rigs, select_rigs

EXIT_PASS, EXIT_NEW_FAULTS, EXIT_INFRA, EXIT_TEST_ERROR = ExitCode.OK, ExitCode.DEVICE_FAULT, ExitCode.INFRA_ERROR, \
    ExitCode.TEST_ERROR  # fmt: skip
EXIT_USAGE = EXIT_REFUSED = ExitCode.BAD_INPUT  # an image the rigs do not trust is bad input
EXIT_INCOMPLETE = ExitCode.INCOMPLETE
EXIT_INTERNAL = ExitCode.INTERNAL_ERROR  # a bug in stblab itself: no verdict
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
    timed_out: list[dict[str, Any]] = field(default_factory=list)
    not_run: list[dict[str, Any]] = field(default_factory=list)  # skipped at run time or never started
    left_out: list[dict[str, Any]] = field(default_factory=list)  # left out of the plan: the rig cannot run them
    passed: int = 0
    failed: int = 0
    planned: int = 0
    counts: str = ""
    rigs_not_run: list[str] = field(default_factory=list)
    job_exit: int = 0
    all_passed: bool = False
    run_dir: str = ""

    @property
    def exit_code(self) -> int:
        """The gate's exit code (lab.outcome's table): 0 only when every planned rig was flashed, ran
        every planned test, and each passed."""
        codes = [ExitCode(self.job_exit)]
        if self.new_faults or self.known_faults:
            codes.append(ExitCode.DEVICE_FAULT)
        if self.infra_errors or self.timed_out:
            codes.append(ExitCode.INFRA_ERROR)
        if self.test_errors:
            codes.append(ExitCode.TEST_ERROR)
        if self.rigs_not_run or self.not_run:
            codes.append(ExitCode.INCOMPLETE)
        code = worst(codes)
        if code is ExitCode.OK and not self.all_passed:  # nothing wrong named, but nothing shown either
            code = ExitCode.INCOMPLETE
        return int(code)

    def verdict(self) -> str:
        """One line for CI: may the build ship, and if not, why not."""
        if self.exit_code == EXIT_NEW_FAULTS and not self.new_faults:
            return "FAIL: known device faults (no new ones); the build may not ship"
        verdicts: dict[int, str] = {
            EXIT_PASS: "PASS: the build may ship",
            EXIT_NEW_FAULTS: "FAIL: new device faults",
            EXIT_INFRA: "ERROR: the lab failed (or a test timed out); no verdict on the build",
            EXIT_TEST_ERROR: "ERROR: a scenario is wrong; no verdict on the build",
            EXIT_INCOMPLETE: "INCOMPLETE: planned tests did not run or were skipped; no verdict on the build",
        }
        return verdicts.get(self.exit_code, "ERROR: no verdict on the build")

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
        out.append(f"suite: {self.counts or f'{self.passed} passed, {self.failed} failed'}")
        for e in self.left_out:
            out.append(f"  left out on {e['rig']} (not counted): {e['test']}: {e['reason']}")
        for e in self.new_faults:
            out.append(f"  NEW fault #{e['fault_id']} on {e['rig']}: {e['reason']} ({e['test']})")
        for e in self.known_faults:
            out.append(f"  known fault #{e['fault_id']} on {e['rig']}: {e['reason']} ({e['test']})")
        for e in self.infra_errors:
            out.append(f"  infra error on {e['rig']}: {e['reason']}")
        for e in self.test_errors:
            out.append(f"  test error on {e['rig']}: {e['reason']} ({e['test']})")
        for e in self.timed_out:
            out.append(f"  timed out on {e['rig']}: {e['reason']} ({e['test']})")
        for e in self.not_run:
            out.append(f"  {e['outcome'].replace('_', ' ')} on {e['rig']}: {e['reason']} ({e['test']})")
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
    rig: Rig = stb.rig
    result = FlashResult(rig=rig.name, ok=False)
    t0 = time.monotonic()
    upload_dir = rig.firmware.upload_dir if rig.firmware else "/data"
    remote = f"{upload_dir.rstrip('/')}/fw-{image.sha256[:16]}.img"
    try:
        profile = stb.profile
        update = profile.firmware_update
        if update.method != "command":
            # "none": stblab cannot flash this model; "uboot" flashing is not driven by the gate yet.
            raise TestError(
                f"model {rig.model} ({profile.source or 'profile'}): firmware_update.method is "
                f"{update.method!r}; the gate installs images only with method 'command'"
            )
        if not (rig.firmware and rig.firmware.upload_dir):  # the rig file's folder wins over the model's
            remote = update.copy_to.format(name=f"fw-{image.sha256[:16]}.img")
        stb.to("shell")
        result.version_before = stb.firmware_version()
        if not result.version_before:
            raise TestError(f"rig {rig.name}: the firmware version cannot be read, so a gate cannot judge it")
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
        console.sendline(update.command.format(file=shlex.quote(remote)) if update.command else f"fwupdate {remote}")
        m = console.expect(
            [profile.console.boot.rebooting, update.refused or _FWUPDATE_REFUSED], timeout=update.timeout
        )
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


_VALUE_OPTIONS = {"-k", "-m", "--ignore", "--ignore-glob", "--deselect", "-p", "-o", "--rootdir", "-c"}


def suite_args(suite: str) -> list[str]:
    """pytest arguments for a suite name (``smoke``, ``full``) or a path/expression.

    Paths that exist here are made absolute: the suite runs with the repository as its folder.
    """
    if suite in SUITES:
        return [str(REPO / a) for a in SUITES[suite]]
    args = shlex.split(suite)
    out: list[str] = []
    positional = False
    for i, a in enumerate(args):
        takes_value = i > 0 and args[i - 1] in _VALUE_OPTIONS
        if not a.startswith("-") and not takes_value:
            positional = True
            # a path that exists here is made absolute; else it names a file of the repository,
            # where the suite runs (``scenarios/test_boot.py`` from any folder)
            a = str(Path(a).absolute()) if Path(a).exists() else a
        out.append(a)
    # only options (``-k zap``): they select from the smoke suite, never from the framework's tests/
    return out if positional else [str(REPO / a) for a in SUITES["smoke"]] + out


def _db_for_child(rma_db: str | None) -> str | None:
    """``rma_db`` as a child process in another folder must see it: a plain path made absolute."""
    if rma_db and "://" not in rma_db:
        return str(Path(rma_db).absolute())
    return rma_db


def run_gate(
    image_path: Path,
    rig_file: Path | str,
    *,
    select: str | None = None,
    suite: str = "smoke",
    run_dir: Path | None = None,
    rma_db: str | None = None,
    extra_keys: list[Path] | None = None,
    emulate: str = "auto",
    test_timeout: float | None = None,
    rig_timeout: float | None = None,
    job_timeout: float | None = None,
    echo: Any = print,
) -> GateResult:
    """Validate, plan, flash, test and decide (see the module docstring). Raises ImageError when
    refused, RigFileError and JobInputError for bad input; InfraError when labgrid places cannot be
    had; everything else is in the GateResult. ``rig_file`` may be a ``labgrid://`` URL (held here)."""
    from lab.jobs.rigsource import held_rigs

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run = (run_dir or REPO / "reports" / f"gate-{stamp}").absolute()
    with held_rigs(rig_file, run) as held:  # a labgrid:// source: the places are ours until the verdict
        return _gate_on(image_path, held, run, select=select, suite=suite, rma_db=rma_db, extra_keys=extra_keys,
                        emulate=emulate, test_timeout=test_timeout, rig_timeout=rig_timeout,
                        job_timeout=job_timeout, echo=echo)  # fmt: skip


def _record_flashes(result: GateResult, rigs: list[Rig], results: list[FlashResult], image: FirmwareImage,
                    run: Path, rma_db: str | None) -> list[Rig]:  # fmt: skip
    """Fold the flash results into the gate's result (an install fault is filed); returns the rigs flashed."""
    flashed: list[Rig] = []
    for rig, fr in zip(rigs, results, strict=True):
        result.flashed.append(fr)
        if fr.ok:
            flashed.append(rig)
            continue
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
    return flashed


def _gate_on(image_path: Path, held: Any, run: Path, *, select: str | None, suite: str, rma_db: str | None,
             extra_keys: list[Path] | None, emulate: str, test_timeout: float | None, rig_timeout: float | None,
             job_timeout: float | None, echo: Any) -> GateResult:  # fmt: skip
    """:func:`run_gate` on a rig file that is ours for the whole gate (``held``: lab.jobs.rigsource.HeldRigs)."""
    rig_file = Path(held.rig_file).absolute()  # the suite runs in the repository's folder, not this one
    rma_db = _db_for_child(rma_db)
    rigs = select_rigs(load_rigs(rig_file), select)
    image = validate(image_path, rigs, extra_keys)
    from lab.device import Stb  # the input is good: now the drivers and the job runner (pytest)
    from lab.jobs import JobSpec, make_plan, run_job, write_all

    run.mkdir(parents=True, exist_ok=True)
    info = {
        "model": image.model,
        "version": image.version,
        "build_id": image.build_id,
        "sha256": image.sha256,
        "path": str(image_path),
    }
    props = {"firmware.version": image.version, "firmware.build_id": image.build_id,
             "firmware.sha256": image.sha256, "firmware.model": image.model}  # fmt: skip
    extra = ["-p", "lab.firmware.properties"]
    for k, v in props.items():
        extra += ["--build-property", f"{k}={v}"]
    spec = JobSpec(
        rig_file=rig_file, rigs=[r.name for r in rigs], suite=suite_args(suite), run_dir=run, rma_db=rma_db,
        test_timeout=test_timeout, rig_timeout=rig_timeout, job_timeout=job_timeout, extra_args=extra,
        env={"STBLAB_BUILD": json.dumps(props)}, label="gate",
    )  # fmt: skip
    spec.validate()
    plans = make_plan(spec)  # bad input ("selects no tests", a missing path) before any rig is touched
    result = GateResult(image=info, rigs=[r.name for r in rigs], run_dir=str(run))
    result.left_out = [
        {"rig": p.rig, "test": n, "reason": why} for p in plans.values() for n, why in p.left_out.items()
    ]
    echo(f"gate: image {image.version} build {image.build_id} for {image.model} is valid; "
         f"{sum(len(p.tests) for p in plans.values())} test(s) planned; run folder {run}")  # fmt: skip

    with ensure_emulated(rig_file, rigs, emulate, echo=lambda m: echo(f"gate: {m}")):

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
        flashed = _record_flashes(result, rigs, results, image, run, rma_db)
        job = None
        if flashed:
            spec.rigs = [r.name for r in flashed]
            for rig in flashed:
                echo(f"gate: running suite '{suite}' on {rig.name}")
            job = run_job(spec, echo=echo, plans={r.name: plans[r.name] for r in flashed}, live=False)
            write_all(job, f"firmware gate {image.version} build {image.build_id}", label="gate")
    if job is not None:
        _fold_job(result, job)
    result.new_faults, result.known_faults = split_new_known(result.new_faults, result.known_faults)
    for f in result.flashed:  # a rig the build broke has run: its fault is the result
        if not f.ok and f.kind != "device_fault" and f.rig not in result.rigs_not_run:
            result.rigs_not_run.append(f.rig)
    for name, why in sorted(held.lost().items()):  # a rig not ours for the whole gate gives no verdict
        result.infra_errors.append({"rig": name, "test": "labgrid", "reason": why, "fault_id": None})
    result.all_passed = (job is not None and job.all_passed() and len(flashed) == len(rigs)
                         and not result.infra_errors)  # fmt: skip
    data = asdict(result) | {"exit_code": result.exit_code, "verdict": result.verdict()}
    (run / "gate.json").write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    return result


def _fold_job(result: GateResult, job: Any) -> None:
    """The job's per-test outcomes into the gate's lists (faults new/known, errors, not run)."""
    from lab.outcome import Outcome

    result.job_exit = int(job.exit_code())
    result.counts = job.first_line()
    result.planned = sum(len(r.planned) for r in job.rigs)
    for rig, t in job.tests():
        entry = {"rig": rig, "test": t.nodeid, "reason": t.reason, "fault_id": t.fault_id, "outcome": t.outcome.value}
        if t.outcome is Outcome.PASSED:
            result.passed += 1
        elif t.outcome is Outcome.DEVICE_FAULT:
            result.failed += 1
            (result.new_faults if t.fault_new or t.fault_id is None else result.known_faults).append(entry)
        elif t.outcome is Outcome.INFRA_ERROR:
            result.infra_errors.append(entry)
        elif t.outcome is Outcome.TEST_ERROR:
            result.test_errors.append(entry)
        elif t.outcome is Outcome.TIMED_OUT:
            result.timed_out.append(entry)
        else:
            result.not_run.append(entry)
    for p in job.problems:
        result.infra_errors.append({"rig": "", "test": p.nodeid, "reason": p.reason, "fault_id": None})
    for r in job.rigs:
        if not r.finished and r.rig not in result.rigs_not_run:
            result.rigs_not_run.append(r.rig)
