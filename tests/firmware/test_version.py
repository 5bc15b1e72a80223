"""Firmware versions order as versions (regressions and defect catalogues depend on it)."""

import pytest

from lab.firmware.version import FirmwareVersion as V
from lab.firmware.version import version_key


@pytest.mark.parametrize(
    ("low", "high"),
    [("2.9.1", "2.10.0"), ("2.1.0-rc1", "2.1.0"), ("R2.1.0.9", "R2.1.0.45"), ("2.1.0-beta2", "2.1.0-rc1"),
     ("2.1.0", "2.1.0.1"), ("2.1.0+b5", "2.1.1")],
)  # fmt: skip
def test_order_as_versions_and_as_database_keys(low: str, high: str) -> None:
    assert V(low) < V(high)
    assert version_key(low) < version_key(high)


def test_build_metadata_does_not_order() -> None:
    assert V("2.1.0+b5") == V("2.1.0")
    assert not V("2.1.0+b5") < V("2.1.0")
    assert version_key("2.1.0+b5") == version_key("2.1.0")


def test_text_without_any_version_is_refused() -> None:
    with pytest.raises(ValueError, match="not a firmware version"):
        V("???")
