"""The shared outcome vocabulary and exit-code table (lab.outcome)."""

from __future__ import annotations

import pytest

from lab.outcome import EXIT_CODE_TABLE, ExitCode, Outcome, exit_code_for, worst


def test_only_passed_is_good() -> None:
    assert [o for o in Outcome if o.good] == [Outcome.PASSED]


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        ([Outcome.PASSED, Outcome.PASSED], ExitCode.OK),
        ([], ExitCode.INCOMPLETE),  # nothing ran: never a pass
        ([Outcome.PASSED, Outcome.SKIPPED], ExitCode.INCOMPLETE),
        ([Outcome.PASSED, Outcome.NOT_RUN], ExitCode.INCOMPLETE),
        ([Outcome.PASSED, Outcome.TIMED_OUT], ExitCode.INFRA_ERROR),
        ([Outcome.TEST_ERROR, Outcome.SKIPPED], ExitCode.TEST_ERROR),
        ([Outcome.INFRA_ERROR, Outcome.TEST_ERROR], ExitCode.INFRA_ERROR),
        ([Outcome.DEVICE_FAULT, Outcome.INFRA_ERROR, Outcome.NOT_RUN], ExitCode.DEVICE_FAULT),
    ],
)
def test_exit_code_of_a_set_of_outcomes(outcomes: list[Outcome], code: ExitCode) -> None:
    assert exit_code_for(outcomes) is code


def test_outcomes_read_back_from_their_stored_strings() -> None:
    assert exit_code_for(["timed_out", "passed"]) is ExitCode.INFRA_ERROR  # type: ignore[list-item]


def test_bad_input_wins_over_everything_but_internal_errors() -> None:
    assert worst([ExitCode.DEVICE_FAULT, ExitCode.BAD_INPUT]) is ExitCode.BAD_INPUT
    assert worst([ExitCode.BAD_INPUT, ExitCode.INTERNAL_ERROR]) is ExitCode.INTERNAL_ERROR
    assert worst([]) is ExitCode.OK


def test_the_table_lists_every_exit_code_once() -> None:
    assert [row[0] for row in EXIT_CODE_TABLE] == [int(c) for c in ExitCode]
