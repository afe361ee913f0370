"""The invlab file container: round trip, and a clear error for every kind of damage."""

from __future__ import annotations

import pytest

from invlab.errors import BitstreamError, CorruptBitstreamError, OutputExistsError, TruncatedBitstreamError
from invlab.io.container import InvlabFile, write_bytes


def _file() -> InvlabFile:
    return InvlabFile("msinn-mini", b"\x01" * 8, 512, 768, "RGBA", 16, 3.25, [b"abc", b"", b"\x00" * 300],
                      {"shape": {"latents": [[32, 48]]}, "alpha": True})


def test_round_trip_keeps_every_field() -> None:
    f = _file()
    assert InvlabFile.from_bytes(f.to_bytes()) == f


def test_header_is_small() -> None:
    f = InvlabFile("tiny-flow", b"\x00" * 8, 512, 768, "RGB", 8, 1.0, [b"x" * 100], {})
    assert len(f.to_bytes()) - 100 < 60


@pytest.mark.parametrize("cut", [0, 3, 10, 30, -5, -1])
def test_truncated_file_raises_truncated(cut: int) -> None:
    data = _file().to_bytes()
    with pytest.raises(BitstreamError):
        InvlabFile.from_bytes(data[:cut])
    if cut < 0:
        with pytest.raises(TruncatedBitstreamError, match="truncated"):
            InvlabFile.from_bytes(data[:cut])


def test_every_flipped_byte_is_detected() -> None:
    data = _file().to_bytes()
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= 0x40
        with pytest.raises(BitstreamError):
            InvlabFile.from_bytes(bytes(damaged))


def test_payload_flip_is_reported_as_corrupt() -> None:
    data = bytearray(_file().to_bytes())
    data[-20] ^= 1
    with pytest.raises(CorruptBitstreamError, match="checksum"):
        InvlabFile.from_bytes(bytes(data))


def test_not_an_invlab_file() -> None:
    with pytest.raises(BitstreamError, match="not an invlab file"):
        InvlabFile.from_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)


def test_write_never_overwrites_unless_asked(tmp_path) -> None:
    path = tmp_path / "out.invl"
    path.write_bytes(b"user data")
    with pytest.raises(OutputExistsError):
        write_bytes(path, b"new")
    assert path.read_bytes() == b"user data"
    write_bytes(path, b"new", overwrite=True)
    assert path.read_bytes() == b"new"
