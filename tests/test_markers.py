"""The suite's ``emulator`` marker rule (tests/conftest.py): code that starts the emulator is marked,
text that only mentions it is not, so ``pytest -m "not emulator"`` keeps the tests that never start one."""

from __future__ import annotations

import textwrap

import pytest
from marking import code_of


def starts(source: str) -> bool:
    return code_of(textwrap.dedent(source)).starts()


#: Code that starts the emulator. (Module constants, not parametrize arguments: the rule reads a
#: test's decorators as its code, since a parametrized command is run by the test.)
STARTING = [
    'def t(tmp_path):\n    with EmulatedLab(tmp_path / "rigs.yaml"):\n        pass\n',
    "def t(tmp_path):\n    with support.start_lab(tmp_path) as lab:\n        pass\n",
    "def t(emulated_lab):\n    lab = emulated_lab()\n",
    "def t(rigs):\n    ensure_emulated(rigs, 'auto')\n",
    'def t(rigs):\n    run(["stblab", "emulate", str(rigs)])\n',
    'def t(rigs):\n    run([sys.executable, "-m", "lab.cli", "emulate", str(rigs)])\n',
    'def t(run_inner, rigs):\n    run_inner(rigs, "--emulate", "auto")\n',
    'def t(rigs):\n    run(f"stblab lab --rigs {rigs} --emulate always")\n',
    'def t(rigs):\n    run(["stblab", "lab", "--emulate=auto"])\n',
    'def t(rigs, mode):\n    run(["stblab", "lab", "--emulate", mode])\n',  # a value it cannot read
    "    def t(self, tmp_path):\n        with EmulatedLab(tmp_path):\n            pass\n",  # a method
]


@pytest.mark.parametrize("source", STARTING)
def test_code_that_starts_the_emulator_is_seen(source: str) -> None:
    assert starts(source)


#: Code that only mentions the emulator, or says not to start it.
MENTIONING = [
    'def t(rigs):\n    run(["stblab", "lab", "--rigs", str(rigs), "--emulate", "never"])\n',
    'def t(rigs):\n    run(["stblab", "lab", "--emulate=never"])\n',
    'def t(rigs):\n    run(f"stblab lab --rigs {rigs} --emulate never")\n',
    'def t(rigs):\n    """Not ``stblab emulate``, EmulatedLab(...), --emulate auto."""\n    load(rigs)\n',
    "def t(rigs):\n    load(rigs)  # EmulatedLab(rigs) would start one; start_lab( too\n",
    "def t(factory: Callable[..., EmulatedLab]) -> None:\n    factory.check()\n",  # a type, not a call
    "def t(:\n",  # does not parse: nothing seen
]


@pytest.mark.parametrize("source", MENTIONING)
def test_text_that_only_mentions_the_emulator_is_not(source: str) -> None:
    assert not starts(source)
