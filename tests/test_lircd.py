"""lircd.conf reader, encoder and decoder, on real published remote files and the project's own."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lab.lircd import Decoded, LircdError, Remote, UnknownKeyError, load_remote, load_remotes, parse_remotes

DATA = Path(__file__).parent / "data" / "remotes"
RC1 = DATA / "stblab-rc1.lircd.conf"


def all_remotes() -> list[Remote]:
    return [r for f in sorted(DATA.glob("*.conf")) for r in load_remotes(f)]


def _jitter(timings: list[int], rng: random.Random, frac: float) -> list[int]:
    return [max(1, round(v * (1 + rng.uniform(-frac, frac)))) for v in timings]


# ------------------------------------------------------------------------------------ parsing


def test_real_files_parse_with_every_remote_and_key() -> None:
    names = {r.name: r for r in all_remotes()}
    assert set(names) >= {
        "Apple_TV",
        "STBLAB_RC1",
        "Hauppauge",
        "hauppauge_pvr",
        "Hauppauge_350",
        "Hauppauge_WinTV_Nexus-S",
        "Hauppauge_HVR_1600",
        "Hauppauge_MVP",
        "mceusb",
        "mceusb_hauppauge",
        "vista_mce",
        "Philips_RC4491-01B_(TV)",
    }
    assert len(names["STBLAB_RC1"].keys) == 32
    assert names["STBLAB_RC1"].pre_data == 0x20DF and names["STBLAB_RC1"].pre_data_bits == 16
    assert names["STBLAB_RC1"].repeat_code == (9000, 2250)
    assert names["Apple_TV"].codes["KEY_PLAY"] == [0x77E1FA6E]
    # mceusb: comment lines ("#NoGap") inside codes are skipped, 94 keys remain
    assert len(names["mceusb"].keys) == 94 and "KEY_OK" in names["mceusb"]
    assert names["mceusb"].frequency == 38000


def test_toggle_bit_forms_all_give_the_same_mask() -> None:
    r = {x.name: x for x in load_remotes(DATA / "hauppauge.lircd.conf")}
    # "toggle_bit 2", "repeat_bit 2" (its old name) and "toggle_bit_mask 0x800" on 13-bit RC-5
    assert r["hauppauge_pvr"].toggle_bit_mask == 0x800
    assert r["Hauppauge"].toggle_bit_mask == 0x800
    assert r["Hauppauge_HVR_1600"].toggle_bit_mask == 0x800
    mce = {x.name: x for x in load_remotes(DATA / "mceusb.lircd.conf")}
    assert mce["mceusb"].toggle_bit_mask == 0x8000  # toggle_bit 22 of 37 bits
    assert mce["mceusb"].rc6_mask == 0x100000000


def test_key_named_hash_and_keys_listed_twice_as_lircd_reads_them() -> None:
    r = {x.name: x for x in load_remotes(DATA / "hauppauge.lircd.conf")}
    assert r["Hauppauge_350"].codes["#"] == [0x178E]
    assert r["Hauppauge_HVR_1600"].codes["*"] == [0x178A]
    nexus = r["Hauppauge_WinTV_Nexus-S"]
    assert nexus.keys.count("Back") == 1 and nexus.codes["Back"] == [0x179F]
    assert nexus.min_repeat == 1


def test_raw_codes_file_with_crlf_line_endings() -> None:
    (philips,) = load_remotes(DATA / "Philips_RC4491-01B_raw.lircd.conf")
    assert philips.is_raw and len(philips.keys) == 42
    assert philips.raw_codes["Power"][:6] == [2709, 831, 469, 831, 469, 383]
    assert philips.raw_codes["Power"][-2:] == [319, 554]
    assert philips.gap == 83764


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("begin remote\n name x\n bits 8\n one 1 x12\n", 4, "'one' needs 2 numbers"),
        ("begin remote\n name x\n bits 8\n one 5 5\n zero 5 5\n begin codes\n A 0x1\n end codes\n", 1, "never ended"),
        (
            "begin remote\n name x\n bits 4\n one 5 5\n zero 5 5\n begin codes\n A 0x1F\n end codes\nend remote\n",
            0,
            "wider",
        ),
        ("begin remote\n name x\n flags SPACE_ENC|WOBBLE\n", 3, "unknown flag(s) WOBBLE"),
        ("begin remote\n begin sideways\n", 2, "unknown section"),
        ("  A 0x10\n", 1, "outside 'begin remote'"),
        ("begin remote\n name x\n begin raw_codes\n 100 200 300\n", 4, "raw timings before any 'name KEY'"),
        ("begin remote\n name x\n begin raw_codes\n name A\n 100 abc\n", 5, "not a list of durations"),
        ("begin remote\n name x\n begin codes\n end raw_codes\n", 4, "'end raw_codes' without"),
        ("begin remote\n bits 8\n one 1 1\n zero 1 1\n begin codes\n A 1\n end codes\nend remote\n", 1, "no 'name'"),
        ("begin remote\n name x\n bits 8\nend remote\n", 1, "defines no keys"),
        ("begin remote\n name x\n eps 30\n eps 40\n", 4, "given twice (first on line 3)"),
        ("begin remote\n name x\n begin codes\n A zz\n", 4, "is not a number"),
    ],
)
def test_malformed_files_name_file_line_and_problem(tmp_path: Path, text: str, line: int, problem: str) -> None:
    f = tmp_path / "bad.lircd.conf"
    f.write_text(text)
    with pytest.raises(LircdError) as info:
        load_remotes(f)
    msg = str(info.value)
    assert msg.startswith(str(f) + (f":{line}:" if line else ":")), msg
    assert problem in msg


def test_missing_file_and_remote_selection_errors(tmp_path: Path) -> None:
    with pytest.raises(LircdError, match="cannot read remote file"):
        load_remotes(tmp_path / "nope.conf")
    with pytest.raises(LircdError, match="6 remotes .*name one"):
        load_remote(DATA / "hauppauge.lircd.conf")
    with pytest.raises(LircdError, match="no remote named 'X'.*Hauppauge_MVP"):
        load_remote(DATA / "hauppauge.lircd.conf", "X")
    assert load_remote(DATA / "hauppauge.lircd.conf", "Hauppauge_MVP").name == "Hauppauge_MVP"


# ------------------------------------------------------------------------------------ encoding


def _nec_bits(value: int, nbits: int) -> list[int]:
    out: list[int] = []
    for i in range(nbits - 1, -1, -1):
        out += [560, 1690] if (value >> i) & 1 else [560, 560]
    return out


def test_nec_frame_repeat_code_and_const_length_gap() -> None:
    rc = load_remote(RC1)
    t = rc.encode("KEY_OK", repeat=2)
    frame = [9000, 4500] + _nec_bits(0x20DF7986, 32) + [560]
    assert t[: len(frame)] == frame
    rest = t[len(frame) :]
    # CONST_LENGTH: frame + gap = 108000 us, for the full frame and for each repeat frame
    assert sum(frame) + rest[0] == 108_000
    assert rest[1:4] == [9000, 2250, 560]
    assert 9000 + 2250 + 560 + rest[4] == 108_000
    assert rest[5:] == [9000, 2250, 560]
    assert len(t) % 2 == 1  # ends with a pulse
    with_gap = rc.encode("KEY_OK", trailing_gap=True)
    assert len(with_gap) % 2 == 0 and sum(with_gap) == 108_000


def test_remote_without_repeat_code_resends_the_frame_after_a_plain_gap() -> None:
    apple = load_remote(DATA / "Apple_TV.lircd.conf")
    one = apple.encode("KEY_PLAY")
    t = apple.encode("KEY_PLAY", repeat=1)
    assert t == one + [38000] + one  # not CONST_LENGTH: the gap is the space itself
    assert one[:2] == [9000, 4500] and one[-1] == 527 and len(one) == 2 + 64 + 1


def test_rc5_biphase_with_plead_and_toggle_bit() -> None:
    pvr = load_remote(DATA / "hauppauge.lircd.conf", "hauppauge_pvr")
    t0 = pvr.encode("Power", toggle=0)
    t1 = pvr.encode("Power", toggle=1)
    # Manchester: every duration is a half bit or two merged halves (the plead merges with a pulse)
    assert set(t0) <= {811, 1622, 969, 1938, 1097, 2066}
    assert t0 != t1
    # 0x17FD = 1 0 1 1 ...: plead pulse, a 1 (space, pulse) and a 0 (pulse, space) merge their pulses
    assert t0[:4] == [1097, 811, 1938, 1622]
    assert pvr.decode_press(t0) == Decoded("Power", 0, 0)
    assert pvr.decode_press(t1) == Decoded("Power", 0, 1)
    # toggle=None sends the code as written (toggle bit clear in the file)
    assert pvr.encode("Power") == t0


def test_rc6_header_double_width_trailer_and_toggle() -> None:
    mce = load_remote(DATA / "mceusb.lircd.conf", "mceusb")
    t = mce.encode("KEY_OK", toggle=0)
    assert t[:4] == [2667, 889, 444, 444]  # leader, then the start bit as mark+space
    assert any(v in (888, 1332) for v in t)  # the double-width trailer bit merges into longer runs
    assert set(t) <= {2667, 889, 444, 888, 1332, 1776}
    t1 = mce.encode("KEY_OK", toggle=1)
    assert t1 != t
    assert mce.decode_press(t1) == Decoded("KEY_OK", 0, 1)


def test_min_repeat_is_always_sent() -> None:
    nexus = load_remote(DATA / "hauppauge.lircd.conf", "Hauppauge_WinTV_Nexus-S")
    single = nexus.encode("Ok", toggle=0)
    assert nexus.decode_press(single) == Decoded("Ok", 1, 0)  # one press + the remote's min_repeat 1


def test_raw_codes_encode_as_written() -> None:
    (philips,) = load_remotes(DATA / "Philips_RC4491-01B_raw.lircd.conf")
    assert philips.encode("Menu") == philips.raw_codes["Menu"]
    twice = philips.encode("Menu", repeat=1)
    assert twice == philips.raw_codes["Menu"] + [83764] + philips.raw_codes["Menu"]


def test_raw_code_ending_in_a_space_still_ends_frames_with_a_pulse() -> None:
    from lab.drivers.ir import ItachBlaster

    (rc,) = parse_remotes(
        "begin remote\n name R\n gap 50000\n begin raw_codes\n name A\n 900 450 560 560\n end raw_codes\nend remote\n"
    )
    assert rc.encode("A") == [900, 450, 560]
    assert rc.encode("A", repeat=1) == [900, 450, 560, 50000, 900, 450, 560]
    # an iTach sendir takes on/off pairs: an odd count is its error 010
    for _, body in ItachBlaster("127.0.0.1").sendir_commands(rc, "A", repeat=3, toggle=0):
        assert len(body.split(",")[3:]) % 2 == 0


def test_flag_semantics_on_a_small_remote() -> None:
    text = """
begin remote
  name t
  bits 4
  flags SPACE_ENC|REVERSE|NO_HEAD_REP
  header 1000 500
  one 100 300
  zero 100 100
  foot 700 800
  pre_data_bits 2
  pre_data 0x2
  post_data_bits 1
  post_data 0x1
  ptrail 100
  gap 5000
  begin codes
    A 0x1
  end codes
end remote
"""
    (r,) = parse_remotes(text)
    # REVERSE: each field least significant bit first. pre 0b10 -> 0,1; code 0b0001 -> 1,0,0,0; post 1.
    body = [100, 100, 100, 300] + [100, 300, 100, 100, 100, 100, 100, 100] + [100, 300]
    # then ptrail (pulse 100) and the foot pulse 700 merge into one 800 pulse; the foot space ends the frame
    full = r.encode("A")
    assert full == [1000, 500, *body, 800]
    # NO_HEAD_REP: the re-sent frame has no header; frames are separated by the plain gap
    rep = r.encode("A", repeat=1)
    assert rep == full + [5000] + full[2:]
    assert r.decode_press(rep) == Decoded("A", 1, None)


def test_repeat_header_and_space_first() -> None:
    text = """
begin remote
  name t
  bits 2
  flags SPACE_ENC|SPACE_FIRST|REPEAT_HEADER
  header 1000 500
  one 100 300
  zero 100 100
  plead 50
  repeat 2000 600
  ptrail 100
  gap 9000
  begin codes
    A 0x2
  end codes
end remote
"""
    (r,) = parse_remotes(text)
    # SPACE_FIRST: a 1 is space then pulse; plead 50 + nothing, then space 300 pulse 100, then 0: pulse 100 space 100
    assert r.encode("A") == [1000, 500, 50, 300, 200, 100, 100]
    rep = r.encode("A", repeat=1)
    assert rep[8:] == [1000, 500, 50 + 2000, 600, 100]  # REPEAT_HEADER: header before the repeat code


def test_unknown_key_suggests_close_names() -> None:
    rc = load_remote(RC1)
    with pytest.raises(UnknownKeyError) as info:
        rc.encode("KEY_OKK")
    assert isinstance(info.value, KeyError)
    assert "KEY_OK" in info.value.close
    assert "did you mean" in str(info.value) and "'KEY_OKK'" in str(info.value)
    with pytest.raises(UnknownKeyError) as info2:
        rc.encode("ok")
    assert "KEY_OK" in info2.value.close


def test_unsupported_encoding_is_a_clear_error() -> None:
    text = "begin remote\n name x\n bits 8\n flags RCMM\n one 5 5\n zero 5 5\n"
    text += " begin codes\n A 0x1\n end codes\nend remote\n"
    (r,) = parse_remotes(text, "x.conf")
    with pytest.raises(LircdError, match="RCMM not supported"):
        r.encode("A")
    assert r.decode([100, 100, 100]) is None


# ------------------------------------------------------------------------------------ decoding


def test_every_key_of_every_real_remote_round_trips_with_timing_jitter() -> None:
    rng = random.Random(7)
    for remote in all_remotes():
        for key in remote.keys:
            code = remote.codes.get(key) or remote.raw_codes.get(key)
            frac = 0.10 if remote.is_raw else 0.18
            got = remote.decode(_jitter(remote.encode(key, repeat=1), rng, frac))
            assert got is not None, (remote.name, key)
            # keys sharing one code (lircd allows it) decode to the first of them
            assert (remote.codes.get(got) or remote.raw_codes.get(got)) == code, (remote.name, key, got)


def test_garbage_and_other_remotes_decode_to_none() -> None:
    rc = load_remote(RC1)
    rng = random.Random(3)
    for _ in range(200):
        n = rng.choice([1, 3, 5, 33, 67, 68, 71])
        assert rc.decode([rng.randint(50, 20000) for _ in range(n)]) is None
    assert rc.decode([]) is None
    assert rc.decode([9000, -4500, 560]) is None
    assert rc.decode(["a", "b"]) is None  # type: ignore[list-item]
    assert rc.decode([9000, 4500, 560]) is None
    apple = load_remote(DATA / "Apple_TV.lircd.conf")
    assert rc.decode(apple.encode("KEY_OK")) is None  # same protocol, another remote's code
    ok = rc.encode("KEY_OK")
    assert rc.decode(ok[:-10]) is None  # truncated frame
    way_off = list(ok)
    way_off[10] = int(way_off[10] * 1.6)
    assert rc.decode(way_off) is None  # one duration far outside eps/aeps


def test_repeat_frames_counted_and_lone_repeats_attributed_to_the_held_key() -> None:
    rc = load_remote(RC1)
    assert rc.decode_press(rc.encode("KEY_UP", repeat=3)) == Decoded("KEY_UP", 3, None)
    lone = [9000, 2250, 560, 96190, 9000, 2250, 560]
    assert rc.decode(lone) is None
    assert rc.decode_press(lone) == Decoded(None, 2, None)
    assert rc.decode_press(lone, previous="KEY_UP") == Decoded("KEY_UP", 2, None)


def test_several_presses_in_one_burst_and_noise_between_them() -> None:
    rc = load_remote(RC1)
    burst = rc.encode("KEY_1", trailing_gap=True) + [300, 40000] + rc.encode("KEY_2", repeat=1)
    assert rc.decode_all(burst) == [Decoded("KEY_1", 0, None), Decoded("KEY_2", 1, None)]
    rc5 = load_remote(DATA / "hauppauge.lircd.conf", "Hauppauge_MVP")
    two = rc5.encode("KEY_OK", toggle=0, trailing_gap=True) + rc5.encode("KEY_OK", toggle=1)
    assert [d.toggle for d in rc5.decode_all(two)] == [0, 1]  # a new press flips the toggle bit
    held = rc5.encode("KEY_OK", toggle=1, repeat=4)
    assert rc5.decode_all(held) == [Decoded("KEY_OK", 4, 1)]
