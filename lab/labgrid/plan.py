"""A gate over many lab hosts: plan one CI job per host, then merge their results into one verdict.

``make_plan`` lists the places matching a ``labgrid://`` request (without locking them), groups
them by their ``host=`` tag and gives each host one job whose rig source is
``labgrid://COORD/?<filters>&host=<host>&count=<its places>``: network namespaces and the boxes'
cables live on their host, so a host's share runs there. With a test selection and ``spread``, the
selection is cut into one share per host (weighted by its places) instead of every host running
all of it.

``collect`` reads each host job's ``gate.json`` (written by ``stblab firmware gate``) and merges:
one verdict, new vs known faults across hosts (a fault id new on any host is new), and every
planned place without a result is *not run*, which is never a pass.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lab.errors import RigFileError
from lab.labgrid.request import PlaceRequest
from lab.outcome import ExitCode, worst

PLAN_VERSION = 1
# The gate's exit codes (lab.firmware.gate, lab.outcome's table): collect answers with the same table;
# a refused image is bad input (4), as for the gate itself.
EXIT_PASS, EXIT_NEW_FAULTS, EXIT_INFRA, EXIT_TEST_ERROR, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3, 4, 5
EXIT_REFUSED = EXIT_USAGE


@dataclass
class HostJob:
    """One CI job: the places of one lab host, its rig source URL and its share of the tests."""

    host: str
    places: list[str]
    rigs: str
    tests: list[str] = field(default_factory=list)


@dataclass
class GatePlan:
    """What ``gate plan`` decided, as written to ``gate-plan.json``."""

    coordinator: str
    request: str
    image: dict[str, Any]
    jobs: list[HostJob]
    version: int = PLAN_VERSION

    @property
    def places(self) -> list[str]:
        return [p for j in self.jobs for p in j.places]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def read(cls, path: Path) -> GatePlan:
        """Load ``gate-plan.json``; RigFileError names the file and the problem."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            jobs = [HostJob(**j) for j in data["jobs"]]
            return cls(data["coordinator"], data["request"], data.get("image", {}), jobs, data.get("version", 1))
        except FileNotFoundError as exc:
            raise RigFileError(f"{path}: no such plan") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise RigFileError(f"{path}: not a gate plan: {exc}") from exc


class ImageRefused(ValueError):
    """The image may not go on the planned places (``reason`` as the gate's: unsigned, wrong-model, ...)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def validate_image(image: Path, models: set[str], models_dir: Path, extra_keys: list[Path]) -> dict[str, Any]:
    """Validate the image once, before any host job starts, as the gate does on each host.

    It must parse (not truncated, manifest intact, payload hash right), be signed by a key the
    models' facts (``firmware.trusted_keys``) or ``extra_keys`` trust, and be built for every
    planned model. Returns what the plan records about it; raises :class:`ImageRefused`.
    """
    from lab.firmware.image import ImageError, load_public_key, read_image
    from lab.labgrid.models import load_facts

    try:
        parsed = read_image(image)
        key_files = list(extra_keys)
        for model in sorted(models):
            firmware = load_facts(models_dir, model).get("firmware") or {}
            key_files += [Path(k) for k in firmware.get("trusted_keys", [])]
        keys = [load_public_key(k) for k in dict.fromkeys(key_files)]
        if not keys:
            raise ImageRefused("untrusted-key", "no trusted keys: name them in the model facts or with --trusted-key")
        for model in sorted(models):
            parsed.verify(keys, model=model)
    except ImageError as exc:
        raise ImageRefused(exc.reason, f"{image}: {exc}") from exc
    except OSError as exc:
        raise ImageRefused("unreadable", f"{image}: {exc.strerror or exc}") from exc
    return {
        "path": str(image),
        "sha256": parsed.sha256,
        "model": parsed.model,
        "version": parsed.version,
        "build_id": parsed.build_id,
    }


def _spread(tests: list[str], weights: dict[str, int]) -> dict[str, list[str]]:
    """Cut ``tests`` into contiguous shares proportional to ``weights`` (every test exactly once)."""
    hosts = sorted(weights)
    total = sum(weights.values())
    out: dict[str, list[str]] = {h: [] for h in hosts}
    start, acc = 0, 0
    for h in hosts:
        acc += weights[h]
        end = round(len(tests) * acc / total)
        out[h] = tests[start:end]
        start = end
    return out


def make_plan(
    link: Any,
    request: PlaceRequest,
    *,
    image: Path | None = None,
    trusted_keys: list[Path] | None = None,
    tests: list[str] | None = None,
    spread: bool = False,
) -> GatePlan:
    """Plan one job per lab host over the places matching ``request`` (nothing is locked).

    With ``image`` it is validated once against the planned places' models (:func:`validate_image`).
    """
    places = link.places()
    want = request.filters
    matching = [p for p in places.values() if request.matches(p.name, p.tags)]
    if not matching:
        raise RigFileError(f"{request.url or request.coordinator}: no place matches {want}")
    by_host: dict[str, list[str]] = {}
    for p in matching:
        host = p.tags.get("host")
        if not host:
            raise RigFileError(f"labgrid place '{p.name}' at {request.coordinator}: tag 'host': missing")
        by_host.setdefault(host, []).append(p.name)
    shares = _spread(list(tests or []), {h: len(v) for h, v in by_host.items()}) if spread else {}
    jobs = []
    for host in sorted(by_host):
        names = sorted(by_host[host])
        sub = PlaceRequest(
            request.coordinator,
            {**want, "host": host},
            len(names),
            request.wait,
            request.prio,
            request.models,
            request.user,
        )
        jobs.append(HostJob(host, names, sub.to_url(), shares.get(host, list(tests or []))))
    facts: dict[str, Any] = {}
    if image is not None:
        models = {p.tags.get("model", "") for p in matching}
        facts = validate_image(image, models, request.models, list(trusted_keys or []))
    return GatePlan(request.coordinator, request.url or request.to_url(), facts, jobs)


def gitlab_child_pipeline(plan: GatePlan, *, plan_file: str = "gate-plan.json", image_arg: str = "$GATE_IMAGE") -> str:
    """A GitLab child pipeline: one job per lab host (tagged with the host's runner tag), then collect."""
    doc: dict[str, Any] = {"stages": ["gate", "collect"]}
    for job in plan.jobs:
        suite = f" --suite '{' '.join(job.tests)}'" if job.tests else ""
        doc[f"gate-{job.host}"] = {
            "stage": "gate",
            "tags": [job.host],
            "script": [f"stblab firmware gate {image_arg} --rigs '{job.rigs}' --run-dir gate-{job.host}{suite}"],
            "artifacts": {"when": "always", "paths": [f"gate-{job.host}/"]},
        }
    dirs = " ".join(f"gate-{j.host}" for j in plan.jobs)
    doc["gate-collect"] = {
        "stage": "collect",
        "when": "always",
        "needs": [{"job": f"gate-{j.host}", "artifacts": True} for j in plan.jobs],
        "script": [f"stblab labgrid gate-collect --plan {plan_file} {dirs}"],
    }
    return "## written by `stblab labgrid gate-plan`\n" + yaml.safe_dump(doc, sort_keys=False)


def github_matrix(plan: GatePlan) -> str:
    """A GitHub Actions matrix (``strategy.matrix: ${{ fromJSON(...) }}``): one entry per lab host."""
    include = [
        {"host": j.host, "rigs": j.rigs, "places": ",".join(j.places), "tests": " ".join(j.tests)} for j in plan.jobs
    ]
    return json.dumps({"include": include}, indent=2)


def write_plan(plan: GatePlan, out_dir: Path) -> list[Path]:
    """Write ``gate-plan.json``, ``gate-child-pipeline.yml`` and ``gate-matrix.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "gate-plan.json": plan.to_json(),
        "gate-child-pipeline.yml": gitlab_child_pipeline(plan),
        "gate-matrix.json": github_matrix(plan),
    }
    for name, text in files.items():
        (out_dir / name).write_text(text + "\n", encoding="utf-8")
    return [out_dir / n for n in files]


@dataclass
class Collected:
    """The merged verdict over every host's gate result (``gate.json`` as lab.firmware.gate writes it)."""

    places: list[str]
    hosts_with_result: list[str] = field(default_factory=list)
    new_faults: list[dict[str, Any]] = field(default_factory=list)
    known_faults: list[dict[str, Any]] = field(default_factory=list)
    infra_errors: list[dict[str, Any]] = field(default_factory=list)
    test_errors: list[dict[str, Any]] = field(default_factory=list)
    timed_out: list[dict[str, Any]] = field(default_factory=list)
    tests_not_run: list[dict[str, Any]] = field(default_factory=list)  # skipped or not run on a host
    not_run: list[str] = field(default_factory=list)  # planned places without a result
    host_codes: list[int] = field(default_factory=list)  # each host gate's own exit code
    passed: int = 0
    failed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """As the gate's (lab.outcome's table, the worst wins): any fault 1, lab failures and timed-out
        tests 2, test errors 3, planned work without a result 5; each host's own code counts too."""
        codes = [ExitCode(c) for c in self.host_codes if c in {int(e) for e in ExitCode}]
        if self.new_faults or self.known_faults:
            codes.append(ExitCode.DEVICE_FAULT)
        if self.infra_errors or self.timed_out or self.problems:
            codes.append(ExitCode.INFRA_ERROR)
        if self.test_errors:
            codes.append(ExitCode.TEST_ERROR)
        if self.not_run or self.tests_not_run or not self.hosts_with_result:
            codes.append(ExitCode.INCOMPLETE)
        return int(worst(codes))

    def verdict(self) -> str:
        code = self.exit_code
        if code == EXIT_NEW_FAULTS and not self.new_faults:
            return "FAIL: known device faults (no new ones); the build may not ship"
        return {
            EXIT_PASS: "PASS: the build may ship",
            EXIT_NEW_FAULTS: "FAIL: new device faults",
            EXIT_INFRA: "ERROR: the lab failed (or a test timed out); no verdict on the build",
            EXIT_TEST_ERROR: "ERROR: a scenario is wrong; no verdict on the build",
            EXIT_INCOMPLETE: "INCOMPLETE: planned rigs or tests did not run; no verdict on the build",
        }.get(code, "ERROR: no verdict on the build")

    def lines(self) -> list[str]:
        out = [
            f"{len(self.places)} planned place(s); results from hosts: {', '.join(self.hosts_with_result) or 'none'}"
        ]
        out.append(f"suite: {self.passed} passed, {self.failed} failed")
        out += [f"  NEW fault #{e.get('fault_id')} on {e.get('rig')}: {e.get('reason')}" for e in self.new_faults]
        out += [f"  known fault #{e.get('fault_id')} on {e.get('rig')}: {e.get('reason')}" for e in self.known_faults]
        out += [f"  infra error on {e.get('rig')}: {e.get('reason')}" for e in self.infra_errors]
        out += [f"  test error on {e.get('rig')}: {e.get('reason')}" for e in self.test_errors]
        out += [f"  timed out on {e.get('rig')}: {e.get('reason')} ({e.get('test')})" for e in self.timed_out]
        out += [
            f"  {str(e.get('outcome', 'not_run')).replace('_', ' ')} on {e.get('rig')}: {e.get('reason')} "
            f"({e.get('test')})"
            for e in self.tests_not_run
        ]
        out += [f"  place {p} did not run (no result)" for p in self.not_run]
        out += [f"  {p}" for p in self.problems]
        out.append(self.verdict())
        return out


def collect(plan: GatePlan, dirs: list[Path]) -> Collected:
    """Merge the ``gate.json`` files found under ``dirs`` against the plan."""
    result = Collected(places=plan.places)
    ran: set[str] = set()
    sha = plan.image.get("sha256")
    for d in dirs:
        for path in sorted(Path(d).rglob("gate.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                result.problems.append(f"{path}: unreadable gate result: {exc}")
                continue
            if sha and data.get("image", {}).get("sha256") not in (None, sha):
                result.problems.append(
                    f"{path}: result is for another image ({data['image'].get('sha256', '')[:16]}...)"
                )
                continue
            rigs = set(data.get("rigs", [])) - set(data.get("rigs_not_run", []))
            ran |= rigs & set(plan.places)
            host = next((j.host for j in plan.jobs if rigs & set(j.places)), None)
            if host and host not in result.hosts_with_result:
                result.hosts_with_result.append(host)
            if isinstance(data.get("exit_code"), int):
                result.host_codes.append(data["exit_code"])
            result.passed += int(data.get("passed", 0))
            result.failed += int(data.get("failed", 0))
            result.new_faults += data.get("new_faults", [])
            result.known_faults += data.get("known_faults", [])
            result.infra_errors += data.get("infra_errors", [])
            result.test_errors += data.get("test_errors", [])
            result.timed_out += data.get("timed_out", [])
            result.tests_not_run += data.get("not_run", [])
    new_ids = {f.get("fault_id") for f in result.new_faults if f.get("fault_id") is not None}
    moved = [f for f in result.known_faults if f.get("fault_id") in new_ids]  # new on one host = new
    result.known_faults = [f for f in result.known_faults if f not in moved]
    result.new_faults += moved
    result.not_run = [p for p in plan.places if p not in ran]
    return result


__all__ = [
    "Collected",
    "GatePlan",
    "HostJob",
    "ImageRefused",
    "collect",
    "github_matrix",
    "gitlab_child_pipeline",
    "make_plan",
    "validate_image",
    "write_plan",
]
