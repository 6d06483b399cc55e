"""NTU .skeleton parsing: the real upstream sample, round trips through the writer, and
the fast path agreeing with the line-by-line path."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from zsbench_ntu import synth
from zsbench_ntu import ntu_parse
from zsbench_ntu.ntu_parse import RawFormatError, _parse_fast, _parse_slow, parse_skeleton

needs_compiled = pytest.mark.skipif(ntu_parse._skeleton_c is None,
                                    reason="the optional C extension was not built")

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "upstream" / "ntu_samples" / \
    "S001C001P001R001A001.skeleton"
if not REAL.is_file():
    REAL = Path("/work/shared/upstream/ntu_samples/S001C001P001R001A001.skeleton")


@pytest.mark.skipif(not REAL.is_file(), reason="upstream NTU sample not available")
def test_real_sample_parses_with_exact_values():
    p = parse_skeleton(REAL)
    lines = REAL.read_text().splitlines()
    assert p.num_frames == int(lines[0]) == 103
    assert p.num_records == 103 and set(p.body_ids) == {"72057594037931101"}
    first = [float(v) for v in lines[4].split()[:3]]
    assert p.joints[0, 0].tolist() == np.float32(first).tolist()
    last_joint = [float(v) for v in lines[-1].split()[:3]] if lines[-1].strip() else None
    assert p.joints[-1, -1].tolist() == np.float32(last_joint).tolist()
    slow = _parse_slow(REAL.read_bytes(), str(REAL), False)
    assert np.array_equal(slow.joints, p.joints) and slow.body_ids == p.body_ids
    assert np.array_equal(slow.frame, p.frame)


@pytest.mark.parametrize("newline,final", [("\n", True), ("\r\n", True), ("\n", False),
                                           ("\r\n", False)])
def test_round_trip_reproduces_coordinates(tmp_path, newline, final):
    rng = np.random.default_rng(3)
    frames = synth.random_ntu_frames(rng, length=37, two_bodies=True)
    frames[5] = []                       # an empty frame in the middle
    path = synth.write_skeleton(tmp_path / "S001C001P001R001A001.skeleton", frames,
                                newline=newline, final_newline=final)
    p = parse_skeleton(path)
    expected = [(t, bid, xyz) for t, bodies in enumerate(frames) for bid, xyz in bodies]
    assert p.num_frames == 37 and p.num_records == len(expected)
    assert p.frame.tolist() == [e[0] for e in expected]
    assert p.body_ids == [e[1] for e in expected]
    assert np.array_equal(p.joints, np.stack([e[2] for e in expected]).astype(np.float32))


def test_trailing_spaces_and_tiny_values(tmp_path):
    rng = np.random.default_rng(4)
    xyz = synth.synth_body(3, rng)
    xyz[0, 0] = [1.5e-05, -2.5e-06, 0.0]
    text = synth.skeleton_text(synth.frames_from_tracks(3, [("7", 0, xyz)]))
    path = tmp_path / "x.skeleton"
    path.write_text("\n".join(ln + "  " for ln in text.split("\n")))
    p = parse_skeleton(path)
    assert np.array_equal(p.joints, xyz)


def test_body_ids_keep_all_digits(tmp_path):
    rng = np.random.default_rng(5)
    a, b = "72057594037931101", "72057594037931102"   # equal as float64
    assert float(a) == float(b)
    xyz = synth.synth_body(20, rng)
    frames = synth.frames_from_tracks(20, [(a, 0, xyz[:10]), (b, 10, xyz[10:])])
    p = parse_skeleton(synth.write_skeleton(tmp_path / "x.skeleton", frames))
    assert p.body_ids[:10] == [a] * 10 and p.body_ids[10:] == [b] * 10


def test_fast_and_slow_paths_agree_on_random_files(tmp_path):
    rng = np.random.default_rng(6)
    for k in range(8):
        frames = synth.random_ntu_frames(rng)
        raw = synth.skeleton_text(frames).encode()
        fast = _parse_fast(raw)
        assert fast is not None
        slow = _parse_slow(raw, "x", False)
        assert fast[0] == slow.num_frames and fast[2] == slow.body_ids
        assert np.array_equal(fast[3], slow.joints) and np.array_equal(fast[1], slow.frame)


def test_exponents_and_signs_take_the_fast_path_with_float_semantics(tmp_path):
    rng = np.random.default_rng(8)
    xyz = synth.synth_body(2, rng)
    lines = synth.skeleton_text(synth.frames_from_tracks(2, [("5", 0, xyz)])).split("\n")
    lines[4] = "1.5E-3 -0 +2.25 " + " ".join(lines[4].split()[3:])
    raw = "\n".join(lines).encode()
    fast = _parse_fast(raw)
    assert fast is not None
    assert fast[3][0, 0].tolist() == [np.float32(1.5e-3), 0.0, 2.25]
    assert np.signbit(fast[3][0, 0, 1])
    lines[5] = "1-2 0.5 0.5 " + " ".join(lines[5].split()[3:])
    assert _parse_fast("\n".join(lines).encode()) is None       # the slow path decides


def _same(a, b) -> bool:
    """Two fast-path results (num_frames, frames, ids, joints) are identical, bit for bit."""
    if a is None or b is None:
        return a is None and b is None
    return (a[0] == b[0] and a[2] == b[2] and np.array_equal(a[1], b[1])
            and a[3].dtype == b[3].dtype == np.float32
            and np.array_equal(a[3].view(np.uint32), b[3].view(np.uint32)))


@needs_compiled
@pytest.mark.parametrize("newline,final", [("\n", True), ("\r\n", False)])
def test_compiled_and_numpy_paths_agree_bit_for_bit(newline, final):
    rng = np.random.default_rng(11)
    for k in range(6):
        frames = synth.random_ntu_frames(rng, two_bodies=bool(k % 2))
        frames[min(3, len(frames) - 1)] = []
        raw = synth.skeleton_text(frames, newline=newline, final_newline=final).encode()
        fast = _parse_fast(raw)
        got = ntu_parse._parse_compiled(raw)
        assert fast is not None and _same(got, fast)
        order = list(dict.fromkeys(got[2]))             # IDs in order of first appearance
        assert got[4].tolist() == [order.index(b) for b in got[2]]


@needs_compiled
def test_compiled_path_converts_like_float():
    rng = np.random.default_rng(12)
    xyz = synth.synth_body(2, rng)
    lines = synth.skeleton_text(synth.frames_from_tracks(2, [("5", 0, xyz)])).split("\n")
    tokens = ["1.5E-3", "-0", "+2.25", ".5", "7.", "-0.000000000000000000123", "1e400",
              "0.1000000000000000055511151231257827", "123456789012345678901"]
    for k in range(0, len(tokens), 3):
        lines[4 + k] = " ".join(tokens[k:k + 3]) + " " + " ".join(lines[4 + k].split()[3:])
    got = ntu_parse._parse_compiled("\n".join(lines).encode())
    want = np.float32([float(t) for t in tokens])
    assert got is not None
    assert np.array_equal(got[3][0, [0, 3, 6]].ravel().view(np.uint32), want.view(np.uint32))


def _random_decimal(rng) -> str:
    """Decimal spellings float() accepts: 1-22 digits, optional sign, dot anywhere,
    leading zeros, sometimes an exponent."""
    digits = "".join(rng.choice(list("0123456789"), size=int(rng.integers(1, 23))))
    if rng.random() < 0.8:
        cut = int(rng.integers(0, len(digits) + 1))
        digits = digits[:cut] + "." + digits[cut:]
        if digits == ".":
            digits = "0."
    sign = rng.choice(["", "-", "+"], p=[0.5, 0.45, 0.05])
    exp = f"e{int(rng.integers(-30, 30))}" if rng.random() < 0.1 else ""
    return f"{sign}{digits}{exp}"


@needs_compiled
def test_compiled_conversion_matches_float_on_many_spellings():
    rng = np.random.default_rng(14)
    tokens = [_random_decimal(rng) for _ in range(40 * 25 * 3)]
    xyz = synth.synth_body(40, rng)
    lines = synth.skeleton_text(synth.frames_from_tracks(40, [("9", 0, xyz)])).split("\n")
    joint_lines = [i for i, ln in enumerate(lines) if len(ln.split()) == 12]
    assert len(joint_lines) == 1000
    for n, i in enumerate(joint_lines):
        lines[i] = " ".join(tokens[3 * n: 3 * n + 3] + lines[i].split()[3:])
    got = ntu_parse._parse_compiled("\n".join(lines).encode())
    assert got is not None
    with np.errstate(over="ignore"):
        want = np.asarray([float(t) for t in tokens], dtype=np.float64).astype(np.float32)
    bad = np.flatnonzero(got[3].ravel().view(np.uint32) != want.view(np.uint32))
    assert not len(bad), [tokens[i] for i in bad[:5]]


MUTATIONS = {
    "blank line inside": lambda ls: ls[:6] + [""] + ls[6:],
    "extra token on a joint line": lambda ls: ls[:5] + [ls[5] + " 1"] + ls[6:],
    "missing token on a body line": lambda ls: ls[:2] + [" ".join(ls[2].split()[:-1])] + ls[3:],
    "joint count 24": lambda ls: ls[:3] + ["24"] + ls[4:],
    "joint count written 025": lambda ls: ls[:3] + ["025"] + ls[4:],
    "letters in a value": lambda ls: ls[:7] + ["abc" + ls[7][3:]] + ls[8:],
    "nan value": lambda ls: ls[:7] + ["nan " + " ".join(ls[7].split()[1:])] + ls[8:],
    "number followed by junk": lambda ls: ls[:7] + ["1-2 " + " ".join(ls[7].split()[1:])] + ls[8:],
    "truncated": lambda ls: ls[:40],
    "content after the last frame": lambda ls: ls + ["5"],
    "negative body count": lambda ls: ls[:1] + ["-1"] + ls[2:],
    "leading spaces": lambda ls: ["  " + ln for ln in ls],
    "tab separators": lambda ls: [ln.replace(" ", "\t") for ln in ls],
    "non-ascii byte": lambda ls: ls[:9] + [ls[9] + " \u00e9"] + ls[10:],
}


@needs_compiled
@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_compiled_and_pure_paths_give_the_same_result_or_error(name, tmp_path, monkeypatch):
    """On malformed or unusual files the compiled path either declines (the slow path
    decides) or gives exactly the pure path's result; the public function gives the same
    result or the same error message either way."""
    rng = np.random.default_rng(13)
    frames = synth.random_ntu_frames(rng, length=4, two_bodies=True)
    lines = synth.skeleton_text(frames).split("\n")
    path = tmp_path / "S001C001P001R001A001.skeleton"
    path.write_bytes("\n".join(MUTATIONS[name](lines)).encode("utf-8"))

    def outcome():
        try:
            p = parse_skeleton(path)
        except RawFormatError as exc:
            return "error", str(exc)
        return "ok", (p.num_frames, p.frame.tolist(), p.body_ids, p.joints.tobytes())

    compiled = outcome()
    monkeypatch.setenv("ZSBENCH_PURE_PYTHON", "1")
    assert not ntu_parse.compiled_parser_enabled()
    assert outcome() == compiled
    raw = path.read_bytes()
    got = ntu_parse._parse_compiled(raw)
    if got is not None:
        slow = _parse_slow(raw, str(path), False)
        assert _same(got, (slow.num_frames, slow.frame, slow.body_ids, slow.joints))
