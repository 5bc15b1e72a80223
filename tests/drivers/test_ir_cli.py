"""``stblab ir``: remote files from the shell, and presses on a rig through a real iTach socket."""

from __future__ import annotations

from pathlib import Path

from test_ir import ItachPeer
from typer.testing import CliRunner

from lab.drivers.ir_cli import app
from lab.lircd import load_remote

DATA = Path(__file__).parent.parent / "data" / "remotes"
RC1 = DATA / "stblab-rc1.lircd.conf"
runner = CliRunner()


def test_keys_encode_and_decode_round_trip() -> None:
    res = runner.invoke(app, ["keys", str(DATA / "hauppauge.lircd.conf"), "--remote", "Hauppauge_MVP"])
    assert res.exit_code == 0, res.output
    assert "Hauppauge_MVP: CONST_LENGTH|RC5, 38000 Hz, 34 keys" in res.output and "  KEY_OK" in res.output
    enc = runner.invoke(app, ["encode", str(RC1), "KEY_OK", "--repeat", "1"])
    assert enc.exit_code == 0
    timings = enc.output.split()
    assert timings[:2] == ["9000", "4500"]
    dec = runner.invoke(app, ["decode", str(RC1), *timings])
    assert dec.exit_code == 0 and dec.output.strip() == "STBLAB_RC1 KEY_OK repeats=1"
    piped = runner.invoke(app, ["decode", str(RC1)], input="pulse 9000\nspace 4500\n" + "\n".join(timings[2:]))
    assert piped.exit_code == 0 and "KEY_OK" in piped.output
    itach = runner.invoke(app, ["encode", str(RC1), "KEY_OK", "--itach"])
    assert itach.output.startswith("sendir,1:1,1,38000,1,1,342,171,")


def test_bad_input_gives_clear_errors_and_exit_codes(tmp_path: Path) -> None:
    res = runner.invoke(app, ["encode", str(RC1), "KEY_OKK"])
    assert res.exit_code == 2 and "did you mean KEY_OK" in res.output
    res = runner.invoke(app, ["keys", str(tmp_path / "none.conf")])
    assert res.exit_code == 2 and "cannot read remote file" in res.output
    res = runner.invoke(app, ["encode", str(DATA / "hauppauge.lircd.conf"), "Ok"])
    assert res.exit_code == 2 and "give --remote" in res.output
    res = runner.invoke(app, ["decode", str(RC1), "100", "200", "300"])
    assert res.exit_code == 1 and "no key" in res.output
    # a remote name the file lacks is bad input, not "the timings carry no key"
    res = runner.invoke(app, ["decode", str(RC1), "--remote", "NOPE", "9000", "4500", "560"])
    assert res.exit_code == 2 and "no remote named 'NOPE'" in res.output


def test_press_hold_and_check_on_a_rig(tmp_path: Path) -> None:
    peer = ItachPeer()
    try:
        rig_file = tmp_path / "rigs.yaml"
        rig_file.write_text(
            f"rigs:\n  - name: r1\n    model: M\n    ir: {{url: '{peer.url}', remote: '{RC1}', inter_press_delay: 0}}\n"
        )
        args = ["--rigs", str(rig_file), "--rig", "r1"]
        res = runner.invoke(app, ["press", *args, "KEY_MENU", "KEY_OK"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["hold", *args, "KEY_UP", "0.5"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["check", *args])
        assert res.exit_code == 0 and "iTach 1:1" in res.output
        rc = load_remote(RC1)
        assert [rc.decode_press(s.timings_us()).key for s in peer.sends] == ["KEY_MENU", "KEY_OK", "KEY_UP"]
        res = runner.invoke(app, ["press", *args, "KEY_NOPE"])
        assert res.exit_code == 2 and "no key 'KEY_NOPE'" in res.output
        res = runner.invoke(app, ["press", "--rigs", str(rig_file), "--rig", "r2", "KEY_OK"])
        assert res.exit_code == 2 and "no rig named 'r2'" in res.output
        peer.mode = "err"
        res = runner.invoke(app, ["press", *args, "KEY_OK"])
        assert res.exit_code == 3 and "ERR_1:1,009" in res.output
    finally:
        peer.close()
