"""pytest plugin: put the build under test on every result (``-p lab.firmware.properties``).

``--build-property KEY=VALUE`` (repeatable) adds a suite-level JUnit ``<property>``, a property
on each test case, an Allure label per key and the keys to Allure's ``environment.properties``,
so a result can always be traced back to the firmware build (version, build id, sha256).

Example::

    pytest scenarios -p lab.firmware.properties --build-property firmware.version=2.1.0 \\
        --junitxml out.xml --alluredir allure
"""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("stblab").addoption(
        "--build-property",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="firmware build property to record on every result (repeatable)",
    )


def _props(config: pytest.Config) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in config.getoption("build_property") or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise pytest.UsageError(f"--build-property {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def pytest_configure(config: pytest.Config) -> None:
    props = _props(config)
    if not props:
        return
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None:
        for key, value in props.items():
            xml.add_global_property(key, value)
    alluredir = config.getoption("allure_report_dir", None)
    if alluredir:
        path = Path(alluredir)
        path.mkdir(parents=True, exist_ok=True)
        env = path / "environment.properties"
        lines = env.read_text(encoding="utf-8").splitlines() if env.exists() else []
        keep = [ln for ln in lines if ln.split("=", 1)[0] not in props]
        env.write_text("\n".join(keep + [f"{k}={v}" for k, v in props.items()]) + "\n", encoding="utf-8")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    props = _props(item.config)
    for key, value in props.items():
        item.user_properties.append((key, value))
    if props:
        try:
            import allure
        except ImportError:  # allure-pytest is a dependency; stay usable without it
            return
        for key, value in props.items():
            allure.dynamic.label(key, value)
