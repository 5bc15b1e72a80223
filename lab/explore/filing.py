"""Filing what the explorer found into the RMA database, with the reproducer as evidence."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab.explore.explorer import Found


def filer_for(db: str, stb: Any, seed: int) -> Callable[[Found], int | None]:
    """A callable that files one :class:`Found` for ``stb``'s rig and returns the fault id."""
    from lab.rma.report import FaultReport
    from lab.rma.store import RmaStore

    serial = stb.serial_number()
    version = stb.firmware_version()

    def file(found: Found) -> int | None:
        name = f"test_{found.finding.symptom.replace('-', '_')}_seed{seed}"
        test_id = f"explore::{name}"
        if found.scenario:
            path = found.scenario.resolve()
            with contextlib.suppress(ValueError):
                path = path.relative_to(Path.cwd())
            test_id = f"{path.as_posix()}::{name}"
        report = FaultReport(
            rig=stb.rig_name,
            device_serial=serial,
            model=stb.rig.model,
            test_id=test_id,
            firmware_version=version,
            seed=seed,
            outcome="device_fault",
            symptom=found.finding.symptom,
            message=found.finding.message,
            excerpt=found.finding.excerpt,
            console_log=found.finding.excerpt,  # titled like any crash (lab.rma.crash)
            params={
                "k": found.k,
                "n": found.n,
                "original_events": len(found.original),
                "minimal_events": len(found.minimal),
            },
            artifacts={name: path for name, path in found.evidence.items()},
        )
        with RmaStore.open(db) as store:
            result = store.file(report)
        return getattr(result, "fault_id", None)

    return file
