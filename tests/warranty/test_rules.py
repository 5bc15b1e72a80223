"""Each warranty rule, and the guard rails around user damage."""

from lab.warranty.rules import RULESET_VERSION, Findings, Indicator, Verdict, decide

SURGE = Indicator("electrical", "overvoltage", "3 over-voltage events", "diag --json")
BROWNOUT = Indicator("electrical", "brownout", "7 brownouts", "diag --json")
TAMPER = Indicator("physical", "tamper", "tamper switch open", "diag --json")
UNOFFICIAL = Indicator("software", "unofficial_firmware", "verified boot: unverified", "diag --json")


def test_not_reproduced_is_no_fault_found_even_with_indicators():
    d = decide(Findings(reproduced=False, reproduced_on_reference=None, indicators=[SURGE, TAMPER]))
    assert d.verdict is Verdict.NO_FAULT_FOUND
    assert "alone do not make user damage" in d.justification
    assert d.ruleset == RULESET_VERSION


def test_fault_on_reference_unit_is_firmware_defect_whatever_the_indicators():
    d = decide(Findings(reproduced=True, reproduced_on_reference=True, indicators=[SURGE, TAMPER]))
    assert d.verdict is Verdict.FIRMWARE_DEFECT
    assert d.rule == "R2-reproduces-on-reference"


def test_two_independent_indicators_make_user_damage():
    d = decide(Findings(reproduced=True, reproduced_on_reference=False, indicators=[TAMPER, UNOFFICIAL]))
    assert d.verdict is Verdict.USER_DAMAGE
    assert "physical" in d.justification and "software" in d.justification


def test_two_indicators_of_one_class_count_once():
    d = decide(Findings(reproduced=True, reproduced_on_reference=False, indicators=[SURGE, BROWNOUT]))
    assert d.verdict is Verdict.MANUFACTURING_DEFECT
    assert d.needs_review


def test_single_indicator_is_never_user_damage():
    d = decide(Findings(reproduced=True, reproduced_on_reference=None, indicators=[TAMPER]))
    assert d.verdict is Verdict.MANUFACTURING_DEFECT
    assert d.needs_review and "no reference unit" in d.justification


def test_clean_unit_with_fault_only_here_is_manufacturing_defect():
    d = decide(Findings(reproduced=True, reproduced_on_reference=False, faults=["black screen after resume"]))
    assert d.verdict is Verdict.MANUFACTURING_DEFECT
    assert not d.needs_review
    assert "black screen after resume" in d.justification
