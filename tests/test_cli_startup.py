"""``stblab`` imports what a command needs when it needs it: bad input is answered before the job
runner (pytest), SQLAlchemy or the emulator's schema are loaded, and the lazy package faces
(``lab.jobs``, ``lab.emulator``) still give every public name.

Each command runs in a fresh interpreter (this one has pytest loaded already), through the real
entry point; the test reads ``sys.modules`` at exit, so it fails when an eager import comes back.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.firmware.image import build_image

REPO = Path(__file__).resolve().parents[1]

#: Runs ``stblab ARGS``, then prints which of the heavy modules the command imported.
PROBE = """
import atexit, json, sys
HEAVY = ("pytest", "sqlalchemy", "lab.jobs.runner", "lab.emulate_schema", "lab.rma", "invoke")
atexit.register(lambda: print(json.dumps([m for m in HEAVY if m in sys.modules]), file=sys.stderr))
from lab.cli import main
main(sys.argv[1:])
"""

BAD_YAML = "rigs:\n  - name: a\n    model: [\n"


def _stblab(tmp_path: Path, *args: str) -> tuple[int, str, list[str]]:
    """Exit code, the command's own stderr, and the heavy modules it imported."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=60)  # fmt: skip
    *said, loaded = proc.stderr.strip().splitlines()
    return proc.returncode, "\n".join(said), json.loads(loaded)


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["lab", "--rigs", "bad.yaml"], []),
        (["warranty", "check", "1", "--rig", "rma-1", "--rigs", "bad.yaml"], []),
        (["firmware", "gate", "missing.img", "--rigs", "bad.yaml"], []),
        (["firmware", "gate", "fw.img", "--rigs", "bad.yaml"], []),  # an image it reads, then the rig file
        (["emulate", "bad.yaml"], ["lab.emulate_schema"]),  # the emulator's own command reads it
        (["firmware", "--help"], []),
        (["warranty", "--help"], []),
    ],
    ids=" ".join,
)
def test_bad_input_and_help_answer_before_the_heavy_imports(tmp_path: Path, args: list[str], allowed: list[str]):
    (tmp_path / "bad.yaml").write_text(BAD_YAML)
    (tmp_path / "fw.img").write_bytes(build_image(model="STB-4K-X1", version="2.1.0", key=None))
    code, said, loaded = _stblab(tmp_path, *args)
    if "--help" in args:
        assert code == 0, said
    else:
        assert code != 0 and ("bad.yaml" in said or "missing.img" in said), said  # still the clear error
    assert set(loaded) <= set(allowed), f"stblab {' '.join(args)} imported {loaded}"


@pytest.mark.parametrize("package", ["lab.jobs", "lab.emulator"])
def test_lazy_package_faces_give_every_public_name(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
        assert name in dir(module)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018
