"""Impairment profiles: shipped files load, units parse, bad input gets a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.network.profile import Profile, ProfileError, list_profiles, load_profile, parse_profile, profile_params


def test_shipped_profiles_all_load_and_record() -> None:
    names = list_profiles()
    assert {"clean", "lossy-2pct", "burst-loss", "outage-5s"} <= set(names)
    for name in names:
        p = load_profile(name)
        rec = p.as_record()
        assert rec["name"] == name
        # the record round-trips: what is stored with a result rebuilds the same profile
        assert Profile.model_validate(rec) == p


def test_units_are_read_as_written() -> None:
    p = parse_profile(
        {
            "delay": "0.2s",
            "jitter": "500us",
            "loss": "2.5%",
            "rate": "20mbit",
            "outages": [{"start": "500ms", "duration": 5}],
        },
        name="x",
    )
    assert p.delay == 200.0 and p.jitter == 0.5 and p.loss == 2.5
    assert p.rate == 20_000.0
    assert p.outages[0].start == 0.5 and p.outages[0].duration == 5.0
    assert parse_profile({"burst": {"p": 1}}, name="b").burst.r == 99.0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        ({"loss": "120%"}, "loss", "less than or equal to 100"),
        ({"delay": "fast"}, "delay", "not a duration"),
        ({"delay": 5, "jitter": 10}, "(profile)", "jitter (10 ms) larger than delay"),
        ({"reorder": 5}, "(profile)", "reorder needs a delay"),
        ({"lose": 2}, "lose", "Extra inputs are not permitted"),
        ({"rate": "fast"}, "rate", "not a rate"),
        ({"outages": [{"start": 1}]}, "outages.0.duration", "Field required"),
        ({"burst": {"p": 1, "r": 0}}, "burst", "r must be > 0"),
    ],
)
def test_bad_profiles_name_key_and_problem(data: dict, key: str, words: str) -> None:
    with pytest.raises(ProfileError) as err:
        parse_profile(data, name="bad", source="rigs/profiles/bad.yaml")
    text = str(err.value)
    assert text.startswith("rigs/profiles/bad.yaml: key ")
    assert f"'{key}'" in text and words in text


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"unknown network profile 'nope' \(have: .*lossy-2pct"):
        load_profile("nope")
    bad = tmp_path / "broken.yaml"
    bad.write_text("loss: [1, 2\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(bad)


def test_profiles_dir_from_environment_and_pytest_params(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "lab-special.yaml").write_text("loss: 7%\nseed: 3\n")
    monkeypatch.setenv("STBLAB_PROFILES", str(tmp_path))
    assert load_profile("lab-special").loss == 7.0
    params = profile_params("clean", "lab-special")
    assert [p.id for p in params] == ["clean", "lab-special"]
    assert params[1].values[0].seed == 3


def test_clean_detection_and_seed() -> None:
    assert Profile().is_clean
    assert load_profile("clean").is_clean
    assert not load_profile("lossy-2pct").is_clean
    assert load_profile("lossy-2pct").with_seed(99).seed == 99
