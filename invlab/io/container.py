"""The invlab file container: a small versioned binary header, the entropy-coded streams, a CRC32.

Layout (all integers big-endian)::

    magic        4 bytes  b"INVL"
    version      u8       FORMAT_VERSION
    model        u8 length + UTF-8 name          (registered model name)
    weights      8 bytes  first 8 bytes of the SHA-256 of the weights that encoded the file
    height,width u32, u32 original image size (before padding)
    mode         u8       index into IMAGE_MODES ("RGB", "L", "RGBA", "LA")
    bitdepth     u8       8 or 16 (the input's; the codec itself works on 8 bits)
    rate         f64      the rate setting the encoder used
    recon        u8 flag + u32 CRC32 of the encoder's 8-bit RGB reconstruction (flag 0: not recorded), and with
                 flag 2 four u32 sums that tell float rounding from another picture (invlab.io.reconstruction)
    meta         u16 length + compact JSON object (model-specific shape information)
    streams      u8 count, then u32 length each
    payload      the streams, concatenated
    crc32        u32 over every byte before it

Version 3 (this one) adds the reconstruction's sketch (flag 2): a decoder whose output is not bit-identical can
tell float rounding (another CPU's kernels in the float synthesis) from a picture that is not the encoder's.
Version-2 files (the same layout, CRC only) still decode. Both code the streams with invlab's bounds-checked coder
(:mod:`invlab.entropy.rans`, each stream with a checksum of its symbols); version-1 files (CompressAI's unchecked
rANS) are refused with a message saying so.

:meth:`InvlabFile.from_bytes` validates every field before anything is allocated: sizes (> 0, within the
pixel limit), mode and bit depth, a finite rate, metadata that is a JSON object of bounded depth. The model
checks the rest (stream count, shapes against the image size, rate range) before it decodes.

The header costs about 45 bytes plus the model name and meta (about 0.001 bpp on a Kodak image);
bpp is always measured from the whole file, header included.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invlab.errors import (
    BitstreamError,
    CorruptBitstreamError,
    InvalidHeaderError,
    OutputExistsError,
    TruncatedBitstreamError,
)

MAGIC = b"INVL"
FORMAT_VERSION = 3
READABLE_VERSIONS = (2, 3)  # version 2: the reconstruction's CRC only
IMAGE_MODES = ("RGB", "L", "RGBA", "LA")
BIT_DEPTHS = (8, 16)
#: the largest image a file may announce unless the caller raises it (as for encoding)
MAX_PIXELS = 40_000_000
#: nesting depth allowed in the header metadata
MAX_META_DEPTH = 8


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value (stops counting past ``limit``)."""
    if limit < 0 or not isinstance(value, (dict, list)):
        return 0
    items = value.values() if isinstance(value, dict) else value
    return 1 + max((_depth(v, limit - 1) for v in items), default=0)


def _meta_nesting(raw: bytes) -> int:
    """Bracket nesting of raw JSON, outside strings (checked before parsing, so no recursion is deep)."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


@dataclass
class InvlabFile:
    """Everything an invlab file holds."""

    model: str
    weights_hash: bytes
    height: int
    width: int
    mode: str
    bitdepth: int
    rate: float
    streams: list[bytes]
    meta: dict[str, Any] = field(default_factory=dict)
    recon_crc: int | None = None  # CRC32 of the encoder's 8-bit RGB reconstruction (C order, H x W x 3)
    recon_sketch: tuple[int, ...] | None = None  # its four signed sums (invlab.io.reconstruction; with a CRC only)

    def to_bytes(self) -> bytes:
        """Serialise to the on-disk format."""
        name = self.model.encode("utf-8")
        meta = json.dumps(self.meta, separators=(",", ":"), sort_keys=True).encode("utf-8")
        if len(name) > 255:
            raise ValueError("model name longer than 255 bytes")
        if len(self.weights_hash) != 8:
            raise ValueError("weights_hash must be 8 bytes")
        if self.mode not in IMAGE_MODES:
            raise ValueError(f"mode {self.mode!r} not in {IMAGE_MODES}")
        if len(meta) > 0xFFFF or len(self.streams) > 255:
            raise ValueError("meta or stream count too large for the container")
        parts = [
            MAGIC,
            struct.pack(">B", FORMAT_VERSION),
            struct.pack(">B", len(name)),
            name,
            self.weights_hash,
            struct.pack(">IIBBd", self.height, self.width, IMAGE_MODES.index(self.mode), self.bitdepth, self.rate),
            self._recon_bytes(),
            struct.pack(">H", len(meta)),
            meta,
            struct.pack(">B", len(self.streams)),
            b"".join(struct.pack(">I", len(s)) for s in self.streams),
            *self.streams,
        ]
        body = b"".join(parts)
        return body + struct.pack(">I", zlib.crc32(body))

    def _recon_bytes(self) -> bytes:
        if self.recon_sketch is not None and self.recon_crc is None:
            raise ValueError("a reconstruction sketch needs its CRC")
        flag = 0 if self.recon_crc is None else 1 if self.recon_sketch is None else 2
        sketch = b"" if self.recon_sketch is None else struct.pack(">4I", *self.recon_sketch)
        return struct.pack(">BI", flag, self.recon_crc or 0) + sketch

    @classmethod
    def from_bytes(cls, data: bytes, max_pixels: int = MAX_PIXELS) -> InvlabFile:
        """Parse and verify a file; raise a :class:`BitstreamError` subclass if it is not sound.

        ``max_pixels``: refuse files announcing a larger image (the decoder's memory guard).
        """
        reader = _Reader(data)
        if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
            raise BitstreamError("not an invlab file (bad magic bytes)")
        reader.take(len(MAGIC))
        (version,) = reader.unpack(">B")
        if version == 1:
            raise BitstreamError(
                "this file is in invlab format 1 (CompressAI's unchecked rANS streams), which this invlab no longer "
                "decodes (it is not safe on crafted files); re-encode the image with this version"
            )
        if version not in READABLE_VERSIONS:
            raise BitstreamError(f"unsupported invlab format version {version} (this invlab reads versions "
                                 f"{', '.join(map(str, READABLE_VERSIONS))}; a newer invlab made it?)")
        (name_len,) = reader.unpack(">B")
        model = reader.take(name_len).decode("utf-8", errors="replace")
        weights_hash = reader.take(8)
        height, width, mode_idx, bitdepth, rate = reader.unpack(">IIBBd")
        has_recon, recon_crc = reader.unpack(">BI")
        if has_recon not in ((0, 1) if version == 2 else (0, 1, 2)):
            raise InvalidHeaderError(f"invalid reconstruction-checksum flag {has_recon}")
        recon_sketch = reader.unpack(">4I") if has_recon == 2 else None
        (meta_len,) = reader.unpack(">H")
        meta_raw = reader.take(meta_len)
        (n_streams,) = reader.unpack(">B")
        lengths = [reader.unpack(">I")[0] for _ in range(n_streams)]
        expected = reader.pos + sum(lengths) + 4
        if len(data) < expected:
            raise TruncatedBitstreamError(
                f"invlab file is truncated: {len(data)} bytes, the header announces {expected}"
            )
        if len(data) > expected:
            raise CorruptBitstreamError(f"invlab file has {len(data) - expected} unexpected trailing bytes")
        (crc,) = struct.unpack(">I", data[-4:])
        if zlib.crc32(data[:-4]) != crc:
            raise CorruptBitstreamError("invlab file is corrupt: checksum mismatch (a byte was changed)")
        streams = [reader.take(n) for n in lengths]
        if mode_idx >= len(IMAGE_MODES):
            raise InvalidHeaderError(f"invalid image mode index {mode_idx}")
        if bitdepth not in BIT_DEPTHS:
            raise InvalidHeaderError(f"invalid bit depth {bitdepth} (invlab files hold 8- or 16-bit images)")
        if height < 1 or width < 1:
            raise InvalidHeaderError(f"the file announces an image of {width}x{height} pixels")
        if height * width > max_pixels:
            raise InvalidHeaderError(
                f"the file announces a {width}x{height} image ({height * width / 1e6:.1f} MP), above the "
                f"{max_pixels / 1e6:.0f} MP limit; raise max_pixels (CLI: --max-pixels) if you trust it"
            )
        if not math.isfinite(rate):
            raise InvalidHeaderError(f"the file's rate is {rate}")
        if _meta_nesting(meta_raw) > MAX_META_DEPTH:
            raise InvalidHeaderError(f"header metadata is nested deeper than {MAX_META_DEPTH} levels")
        try:
            meta = json.loads(meta_raw.decode("utf-8")) if meta_raw else {}
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
            raise InvalidHeaderError(f"invalid header metadata: {err}") from None
        if not isinstance(meta, dict) or _depth(meta, MAX_META_DEPTH + 1) > MAX_META_DEPTH:
            raise InvalidHeaderError("header metadata must be a JSON object of bounded depth")
        return cls(model, weights_hash, height, width, IMAGE_MODES[mode_idx], bitdepth, rate, streams, meta,
                   recon_crc if has_recon else None, recon_sketch)

    def write(self, path: str | Path, overwrite: bool = False) -> int:
        """Write to ``path`` (refusing to replace an existing file unless ``overwrite``); return bytes written."""
        return write_bytes(path, self.to_bytes(), overwrite=overwrite)

    @classmethod
    def read(cls, path: str | Path, max_pixels: int = MAX_PIXELS) -> InvlabFile:
        return cls.from_bytes(Path(path).read_bytes(), max_pixels)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise TruncatedBitstreamError(
                f"invlab file is truncated: header field at byte {self.pos} needs {n} bytes, "
                f"only {len(self.data) - self.pos} left"
            )
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def write_bytes(path: str | Path, data: bytes, overwrite: bool = False) -> int:
    """Write ``data`` to ``path``; never replaces an existing file unless ``overwrite`` is true.

    The write goes to a temporary file first and is renamed into place, so an interrupted write
    never leaves a half-written file under the user's name.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} exists; refusing to overwrite it (use --force / overwrite=True)")
    tmp = path.with_name(f".{path.name}.invlab-tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return len(data)
