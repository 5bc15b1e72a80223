"""Filing what the explorer found into the RMA database, with the reproducer as evidence."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lab.explore.explorer import Found


def filer_for(db: str, stb: Any, seed: int) -> Callable[[Found], int | None]:
    """A callable that files one :class:`Found` for ``stb``'s rig and returns the fault id."""
    from lab.rma.report import FaultReport
    from lab.rma.store import RmaStore

    serial = stb.serial_number()
    version = stb.firmware_version()

    def file(found: Found) -> int | None:
        test_id = f"{found.scenario.as_posix()}::" if found.scenario else "explore::"
        test_id += f"test_{found.finding.symptom.replace('-', '_')}_seed{seed}"
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
