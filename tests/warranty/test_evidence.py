"""Evidence from ``diag --json``: thresholds, and values that must never become damage indicators."""

from lab.warranty.evidence import evidence_from_diag, evidence_from_dmesg, indicators_from


def _by_kind(diag: dict) -> dict:
    return {i.kind: i for i in evidence_from_diag(diag)}


def test_counters_become_indicators_only_at_their_threshold():
    items = _by_kind({"brownouts": 4, "overvoltage": 1, "overtemperature": "3"})
    assert items["brownouts"].indicator is None and items["brownouts"].value == "4"
    assert items["overvoltage"].indicator.klass == "electrical"
    assert items["overtemperature"].indicator.klass == "thermal"


def test_tamper_given_as_text_false_is_intact_not_an_indicator():
    for value in (False, 0, "false", "0", "intact"):
        item = _by_kind({"tamper": value})["tamper"]
        assert item.indicator is None and item.value == "intact", value
    assert _by_kind({"tamper": "true"})["tamper"].indicator.kind == "tamper"


def test_unreadable_values_are_kept_as_evidence_without_an_indicator():
    items = evidence_from_diag({"tamper": "maybe", "overvoltage": "lots", "brownouts": True})
    assert indicators_from(items) == []
    assert {i.kind: i.value for i in items} == {
        "tamper": "unreadable: 'maybe'",
        "overvoltage": "unreadable: 'lots'",
        "brownouts": "unreadable: True",
    }


def test_dmesg_lines_are_evidence_not_indicators():
    items = evidence_from_dmesg("[ 1.0] ok\n[ 2.0] PMIC: OVP triggered on VIN\n[ 3.0] tamper switch open\n")
    assert [(i.kind, i.value) for i in items] == [
        ("dmesg_overvoltage", "[ 2.0] PMIC: OVP triggered on VIN"),
        ("dmesg_tamper", "[ 3.0] tamper switch open"),
    ]
    assert indicators_from(items) == []
