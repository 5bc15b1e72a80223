"""Logged steps: every action is recorded with its outcome, and secrets never reach the log."""

from __future__ import annotations

import logging

import pytest

from lab.steps import STEPS, step


class Console:
    rig_name = "stb-x"

    @step("serial")
    def login(self, user: str, password: str | None = None, timeout: float = 30) -> str:
        return user

    @step("serial")
    def run(self, cmd: str) -> None:
        raise TimeoutError(cmd)


def test_secret_arguments_are_masked_by_name_positional_or_keyword(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stblab.steps")
    con = Console()
    con.login("root", "hunter2")
    con.login("root", password="s3cret", timeout=5)
    text = caplog.text + " ".join(r.args for r in STEPS.records[-2:])
    assert "hunter2" not in text and "s3cret" not in text
    assert STEPS.records[-1].args == "'root', password=***, timeout=5"


def test_failed_step_is_recorded_with_its_exception_and_rig() -> None:
    with pytest.raises(TimeoutError):
        Console().run("sleep 99")
    rec = STEPS.records[-1]
    assert (rec.rig, rec.instrument, rec.action, rec.outcome) == ("stb-x", "serial", "run", "TimeoutError")
    assert rec.line().startswith("stb-x serial.run('sleep 99') TimeoutError in ")
