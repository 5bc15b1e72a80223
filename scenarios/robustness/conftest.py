"""Options and fixtures of the robustness scenarios (update power cuts, soak).

These scenarios are long (minutes to hours), so the main job leaves them out; run them with
``pytest scenarios/robustness --rigs FILE --rig NAME`` (options below), or ``stblab explore``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from iptv_net import iptv_link, lab_network  # noqa: F401 (fixtures of the scenarios under impairment)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stblab robustness")
    group.addoption("--update-image", metavar="FILE", default=None, help="signed image the update scenario installs")
    group.addoption(
        "--previous-image",
        metavar="FILE",
        default=None,
        help="signed image of the firmware the box runs before the update: the scenario alternates it with "
        "--update-image, so every cut writes a version other than the running one",
    )
    group.addoption("--cut-points", type=int, default=20, help="power cuts (seeded points) in the update scenario")
    group.addoption("--soak-minutes", type=float, default=30.0, help="length of the soak scenario")
    group.addoption("--soak-interval", type=float, default=20.0, help="seconds between soak samples")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The soak's time limit follows ``--soak-minutes`` (with five minutes for boots and the fit), so
    a 30-minute soak is not cut by the default per-test limit."""
    limit = config.getoption("--soak-minutes") * 60 + 300
    for item in items:
        if item.name.startswith("test_soak") and item.get_closest_marker("stb_timeout") is None:
            item.add_marker(pytest.mark.stb_timeout(limit))
            item.add_marker(pytest.mark.timeout(limit))  # pytest-timeout's outer limit too


@pytest.fixture
def update_image(request: pytest.FixtureRequest, rig: Any, tmp_path: Path) -> Path:
    """The image to install: ``--update-image``, or for an emulated rig one built and signed with
    the emulated vendor key (version 2.0.1)."""
    given = request.config.getoption("--update-image")
    if given:
        return Path(given)
    from lab.errors import TestError

    key = Path(rig.ssh.key).parent / "vendor_ed25519" if rig.emulated and rig.ssh else None
    if key is None or not key.exists():
        raise TestError("the update scenario needs --update-image FILE (a signed image for this model)")
    from lab.firmware import build_image, load_private_key

    path = tmp_path / "update-2.0.1.img"
    path.write_bytes(build_image(model=rig.model, version="2.0.1", key=load_private_key(key), build_id="b2001"))
    return path


@pytest.fixture
def previous_image(request: pytest.FixtureRequest, rig: Any, tmp_path: Path) -> Callable[[str], Path | None]:
    """``previous_image(version)``: a signed image of ``version`` (the firmware the box ran before
    the update) to alternate with the update image: ``--previous-image`` (its version must be
    ``version``), or for an emulated rig one built with the emulated vendor key; None when neither
    exists (then every cut rewrites the update image)."""
    from lab.errors import TestError
    from lab.firmware import build_image, load_private_key, parse_image

    given = request.config.getoption("--previous-image")

    def image(version: str) -> Path | None:
        if given:
            found = parse_image(Path(given).read_bytes()).version
            if found != version:
                raise TestError(f"--previous-image {given} is version {found}; the box ran {version} before the update")
            return Path(given)
        key = Path(rig.ssh.key).parent / "vendor_ed25519" if rig.emulated and rig.ssh else None
        if key is None or not key.exists():
            return None
        path = tmp_path / f"previous-{version}.img"
        build = "b" + "".join(c for c in version if c.isdigit())
        path.write_bytes(build_image(model=rig.model, version=version, key=load_private_key(key), build_id=build))
        return path

    return image
