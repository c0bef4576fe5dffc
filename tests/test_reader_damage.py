"""Property-based tests (hypothesis) of every reader on damaged files: truncations, flipped and inserted bytes,
random header counts. The only outcomes allowed are valid frames (each passing tpainn.data.checks.check_frame)
or a DataError, within a few seconds each: no other exception, no hang, no huge allocation."""

import signal
from contextlib import contextmanager
from pathlib import Path

import ase.io
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.frames import DEEPMD_FILES, labelled_water, n2p2_text, write_deepmd
from tpainn.data import DataError, read, read_deepmd, read_extxyz, read_n2p2, write_frames
from tpainn.data.checks import check_frame

TIME_LIMIT_S = 5
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


class ReaderTimeout(BaseException):
    """Not an Exception: a reader's own `except Exception` cannot turn a hang into a DataError."""


@contextmanager
def time_limit(seconds: float):
    """Interrupt the block after `seconds` of CPU time (not wall time: tests may share a loaded machine)."""

    def interrupt(signum, frame):
        raise ReaderTimeout(f"the reader ran for more than {seconds} CPU seconds")

    previous = signal.signal(signal.SIGPROF, interrupt)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def outcome(reader, path) -> str:
    """'frames' (all of them valid) or 'error' (a DataError naming the file); anything else fails the test."""
    with time_limit(TIME_LIMIT_S):
        try:
            frames = reader(path)
        except DataError as err:
            assert str(Path(path).name) in str(err) or str(path) in str(err), f"the message does not name the file: {err}"
            return "error"
    assert len(frames) > 0
    for i, atoms in enumerate(frames):
        check_frame(atoms, f"frame {i}")
    return "frames"


def water_frames(stress: bool = True) -> list:
    return labelled_water(3, stress=stress, seed=0, jitter=0.05)


# ------------------------------------------------------------------------------------------- damage


def damaged(data: bytes, draw, targets: np.ndarray | None = None) -> bytes:
    """`data` truncated, with bytes flipped (at positions drawn from `targets` if given), with bytes inserted, or
    several of these."""
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "flip+truncate"]))
    if "flip" in kind:
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, len(data) - 1) if targets is None else st.sampled_from(targets))
            data = data[:position] + bytes([draw(st.integers(0, 255))]) + data[position + 1 :]
    if kind == "insert":
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.binary(min_size=1, max_size=64)) + data[position:]
    if "truncate" in kind:
        data = data[: draw(st.integers(0, len(data) - 1))]
    return data


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def xyz_bytes(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("xyz") / "w.xyz"
    ase.io.write(path, water_frames(), format="extxyz")
    assert outcome(read_extxyz, path) == "frames"
    return path.read_bytes()


@given(data=st.data())
@SETTINGS
def test_extxyz_on_damaged_bytes(tmp_path, xyz_bytes, data):
    outcome(read_extxyz, write(tmp_path / "d.xyz", damaged(xyz_bytes, data.draw)))


@given(count=st.one_of(st.integers(-(10**15), 10**15), st.text(max_size=12)), frame=st.integers(0, 2))
@SETTINGS
def test_extxyz_with_a_random_atom_count(tmp_path, xyz_bytes, count, frame):
    lines = xyz_bytes.decode().splitlines(keepends=True)
    lines[frame * 5] = f"{count}\n"  # 3 atoms: each frame is 5 lines
    result = outcome(read_extxyz, write(tmp_path / "c.xyz", "".join(lines).encode("utf-8", "surrogatepass")))
    assert result == "error" or str(count).strip() == "3"


def test_extxyz_with_a_huge_atom_count_fails_at_once(tmp_path, xyz_bytes):
    path = write(tmp_path / "huge.xyz", b"999999999999" + xyz_bytes[1:])
    with pytest.raises(DataError, match="huge.xyz:1: frame 0: the header says 999999999999 atoms, but only"):
        with time_limit(2):
            read_extxyz(path)


@pytest.fixture(scope="module")
def n2p2_bytes() -> bytes:
    return n2p2_text(water_frames(stress=False)).encode()


@given(data=st.data())
@SETTINGS
def test_n2p2_on_damaged_bytes(tmp_path, n2p2_bytes, data):
    outcome(read_n2p2, write(tmp_path / "input.data", damaged(n2p2_bytes, data.draw)))


@given(line=st.integers(0, 26), text=st.text(max_size=40))
@SETTINGS
def test_n2p2_with_a_random_line(tmp_path, n2p2_bytes, line, text):
    lines = n2p2_bytes.decode().splitlines()
    lines[line] = text.replace("\n", " ").replace("\r", " ")
    outcome(read_n2p2, write(tmp_path / "input.data", ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")))


@given(data=st.data(), file=st.sampled_from(list(DEEPMD_FILES.values())))
@SETTINGS
def test_deepmd_on_a_damaged_file(tmp_path_factory, data, file):
    root = write_deepmd(tmp_path_factory.mktemp("dp"), water_frames())
    path = root / file
    path.write_bytes(damaged(path.read_bytes(), data.draw))
    outcome(read_deepmd, root)


@given(shape=st.lists(st.integers(0, 2**40), min_size=0, max_size=3), file=st.sampled_from(list(DEEPMD_FILES.values())[2:]))
@SETTINGS
def test_deepmd_npy_with_a_random_header_shape(tmp_path_factory, shape, file):
    """A header that promises more data than the file holds fails before anything is allocated for it."""
    root = write_deepmd(tmp_path_factory.mktemp("dp"), water_frames())
    path = root / file
    array = np.load(path)
    header = np.lib.format.header_data_from_array_1_0(array) | {"shape": tuple(shape)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(array.tobytes())
    outcome(read_deepmd, root)


@given(data=st.data())
@SETTINGS
def test_hdf5_on_damaged_bytes(tmp_path_factory, data):
    """Flips hit the bytes that are not zero: the file is mostly unused chunk space, its structure and frames
    (superblock, object headers, B-trees, attributes, the frames' values) are the rest."""
    source = tmp_path_factory.mktemp("h5") / "w.h5"
    write_frames(source, water_frames())
    original = source.read_bytes()
    path = source.with_name("d.h5")
    path.write_bytes(damaged(original, data.draw, targets=np.flatnonzero(np.frombuffer(original, np.uint8))))
    outcome(read, path)
