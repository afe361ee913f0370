"""Bounds-checked entropy coding over CompressAI's quantised CDF tables (rANS from ``constriction``).

CompressAI's C++ rANS decoder reads its input without bounds checks: a crafted or truncated stream makes
it read memory it does not own (segfaults, a different image on each run). This module keeps CompressAI's
*tables* (``quantized_cdf``, ``cdf_length``, ``offset``: the entropy parameters every model computes) and
codes with ``constriction``'s ANS coder, written in Rust: damaged input gives an error or wrong symbols,
never a crash. Wrong symbols are then caught by a checksum.

Three coders share one stream format and one coding rule:

- :class:`TableEncoder` (buffered; ``encode_with_indexes`` any number of times, then ``flush``),
- :class:`TableDecoder` (``set_stream``, ``decode_stream`` per call, then ``finish`` to verify),
- :class:`EntropyCoder`, a drop-in for the coder inside CompressAI's ``EntropyModel`` (one call each way);
  :func:`use_invlab_coder` installs it in every entropy model of a network.

Coding rule. Within one call the symbols are grouped by table index (ascending) and each group is coded
with one fixed categorical model, in position order (where all tables have one length, e.g. one mixture
table per symbol, they are coded in position order instead, each with its own row); a value outside its
table's range is coded as the table's last ("overflow") symbol plus an escape (a zig-zag varint). Because
of the grouping, **the decoder must decode in the same calls as the encoder encoded** (same sizes, same
order); every invlab coding walk does so, and a mismatch is detected, not decoded silently.

Stream layout (little-endian)::

    version   u8    STREAM_VERSION
    words     u32   number of ANS words, then the words (u32 each)
    escapes   zig-zag LEB128 varints, in decoding order
    crc32     u32   over the (value, table index) int32 pairs, in coding order

``finish`` checks that every word and escape was consumed and that the CRC matches: a decode whose symbols
differ from the encoder's (damage the container checksum cannot see, or another machine computing other
table indexes) raises :class:`~invlab.errors.SymbolMismatchError`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any

import constriction
import numpy as np
import torch

from invlab.errors import CorruptBitstreamError, SymbolMismatchError

STREAM_VERSION = 1
#: the largest |value| an escape may carry (int32 range, minus headroom)
MAX_ESCAPE = 2**30
_CATEGORICAL = constriction.stream.model.Categorical


def _as_int_array(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().reshape(-1).to(torch.int64).cpu().numpy()
    return np.asarray(values, dtype=np.int64).reshape(-1)


class _Tables:
    """CompressAI-style tables as numpy arrays, with one constriction model per table built on first use."""

    def __init__(self, cdfs: Any, cdf_lengths: Any, offsets: Any):
        if isinstance(cdfs, torch.Tensor):
            cdf = cdfs.detach().cpu().numpy().astype(np.int64)
        elif cdfs and isinstance(cdfs[0], (list, tuple)) and len({len(r) for r in cdfs}) > 1:
            width = max(len(r) for r in cdfs)
            cdf = np.array([list(r) + [r[-1]] * (width - len(r)) for r in cdfs], dtype=np.int64)
        else:
            cdf = np.asarray(cdfs, dtype=np.int64)
        self.cdf = cdf.reshape(len(cdf), -1) if cdf.size else np.zeros((0, 0), np.int64)
        self.lengths = _as_int_array(cdf_lengths)
        self.offsets = _as_int_array(offsets)
        n = self.cdf.shape[0]
        if len(self.lengths) != n or len(self.offsets) != n:
            raise ValueError(f"{n} CDFs but {len(self.lengths)} lengths and {len(self.offsets)} offsets")
        if n and (self.lengths.min() < 3 or self.lengths.max() > self.cdf.shape[1]):
            raise ValueError("CDF lengths must be in [3, table width]")
        self._models: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def uniform(self) -> bool:
        """All tables have one length: code in position order, each symbol with its own row (batched)."""
        return bool(len(self) and (self.lengths == self.lengths[0]).all())

    def pmf_rows(self, indexes: np.ndarray) -> np.ndarray:
        """(N, K) probabilities of uniform-length tables, one row per symbol."""
        width = int(self.lengths[0])
        pmf = np.diff(self.cdf[indexes, :width], axis=1).astype(np.float64)
        if (pmf < 0).any() or (pmf.sum(axis=1) <= 0).any():
            raise ValueError("a CDF is not a valid cumulative table")
        return pmf

    def model(self, index: int) -> Any:
        m = self._models.get(index)
        if m is None:
            pmf = np.diff(self.cdf[index, : self.lengths[index]]).astype(np.float64)
            if (pmf < 0).any() or pmf.sum() <= 0:
                raise ValueError(f"CDF {index} is not a valid cumulative table")
            m = self._models[index] = _CATEGORICAL(pmf, perfect=False)
        return m

    def check_indexes(self, indexes: np.ndarray) -> None:
        if indexes.size and (indexes.min() < 0 or indexes.max() >= len(self)):
            raise ValueError(f"table index outside [0, {len(self)})")


class _TableCache:
    """Reuse the tables of the last call when the caller passes the very same objects again (AR loops)."""

    def __init__(self):
        self._key: tuple[Any, Any, Any] | None = None
        self._tables: _Tables | None = None

    def get(self, cdfs: Any, cdf_lengths: Any, offsets: Any) -> _Tables:
        key = (cdfs, cdf_lengths, offsets)
        if self._key is None or any(a is not b for a, b in zip(self._key, key, strict=True)):
            self._tables, self._key = _Tables(cdfs, cdf_lengths, offsets), key
        return self._tables


_BATCHED = _CATEGORICAL(perfect=False)


def _groups(indexes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(positions sorted by table index, the unique indexes, group boundaries)."""
    order = np.argsort(indexes, kind="stable")
    unique, counts = np.unique(indexes, return_counts=True)
    return order, unique, np.concatenate([[0], np.cumsum(counts)])


def _pair_bytes(values: np.ndarray, indexes: np.ndarray) -> bytes:
    return np.stack([values, indexes], axis=1).astype("<i4").tobytes()


def _zigzag_varint(value: int) -> bytes:
    z = (value << 1) if value >= 0 else ((-value << 1) - 1)
    out = bytearray()
    while True:
        byte, z = z & 0x7F, z >> 7
        out.append(byte | (0x80 if z else 0))
        if not z:
            return bytes(out)


class TableEncoder:
    """Buffered encoder (CompressAI's ``BufferedRansEncoder`` interface): ``encode_with_indexes`` then ``flush``."""

    def __init__(self):
        self._calls: list[tuple[list[np.ndarray], list[tuple]]] = []  # per call: symbol groups, (model, args)
        self._escapes: list[int] = []
        self._crc = 0
        self._cache = _TableCache()

    def encode_with_indexes(self, symbols: Any, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any) -> None:
        values, idx = _as_int_array(symbols), _as_int_array(indexes)
        if values.shape != idx.shape:
            raise ValueError(f"{values.size} symbols but {idx.size} indexes")
        tables = self._cache.get(cdfs, cdf_lengths, offsets)
        tables.check_indexes(idx)
        self._crc = zlib.crc32(_pair_bytes(values, idx), self._crc)
        s = values - tables.offsets[idx]
        overflow = tables.lengths[idx] - 2
        escaped = (s < 0) | (s >= overflow)
        if np.abs(s[escaped]).max(initial=0) > MAX_ESCAPE:
            raise ValueError(f"a value beyond ±{MAX_ESCAPE} cannot be coded")
        s = np.where(escaped, overflow, s).astype(np.int32)
        if tables.uniform:
            if not idx.size:
                return
            self._escapes += [int(v) for v in (values - tables.offsets[idx])[escaped]]
            self._calls.append(([s], [(_BATCHED, tables.pmf_rows(idx))]))
            return
        order, unique, bounds = _groups(idx)
        ordered_escapes = (values - tables.offsets[idx])[order][escaped[order]]
        self._escapes += [int(v) for v in ordered_escapes]
        groups = [s[order[bounds[k] : bounds[k + 1]]] for k in range(len(unique))]
        self._calls.append((groups, [(tables.model(int(u)),) for u in unique]))

    def flush(self) -> bytes:
        coder = constriction.stream.stack.AnsCoder()
        for groups, models in reversed(self._calls):  # a stack: the last call is pushed first
            for symbols, model in zip(reversed(groups), reversed(models), strict=True):
                coder.encode_reverse(symbols, *model)
        words = coder.get_compressed().astype("<u4")
        escapes = b"".join(_zigzag_varint(v) for v in self._escapes)
        self._calls, self._escapes = [], []
        crc, self._crc = self._crc, 0
        return struct.pack("<BI", STREAM_VERSION, len(words)) + words.tobytes() + escapes + struct.pack("<I", crc)


class TableDecoder:
    """Decoder (CompressAI's ``RansDecoder`` streaming interface) that never reads past its stream."""

    def __init__(self):
        self._coder: Any = None
        self._cache = _TableCache()

    def set_stream(self, stream: bytes) -> None:
        stream = bytes(stream)
        if len(stream) < 9:
            raise CorruptBitstreamError(f"entropy-coded stream of {len(stream)} bytes is too short")
        version, n_words = struct.unpack_from("<BI", stream)
        if version != STREAM_VERSION:
            raise CorruptBitstreamError(
                f"entropy-coded stream of version {version} (this invlab reads {STREAM_VERSION})")
        end_words = 5 + 4 * n_words
        if end_words + 4 > len(stream):
            raise CorruptBitstreamError("entropy-coded stream is shorter than its word count says")
        words = np.frombuffer(stream, dtype="<u4", count=n_words, offset=5).astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except Exception as err:  # constriction refuses some malformed word sequences outright
            raise CorruptBitstreamError(f"entropy-coded stream is malformed: {err}") from None
        self._escapes = memoryview(stream)[end_words:-4]
        self._pos = 0
        (self._expected_crc,) = struct.unpack_from("<I", stream, len(stream) - 4)
        self._crc = 0

    def _next_escape(self) -> int:
        z, shift = 0, 0
        while True:
            if self._pos >= len(self._escapes) or shift > 35:
                raise CorruptBitstreamError("entropy-coded stream: escape values are missing or malformed")
            byte = self._escapes[self._pos]
            self._pos += 1
            z |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                value = (z >> 1) if not z & 1 else -((z + 1) >> 1)
                if abs(value) > MAX_ESCAPE:
                    raise CorruptBitstreamError("entropy-coded stream: escape value out of range")
                return value

    def decode_stream(self, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any) -> list[int]:
        if self._coder is None:
            raise CorruptBitstreamError("no entropy-coded stream set")
        idx = _as_int_array(indexes)
        tables = self._cache.get(cdfs, cdf_lengths, offsets)
        tables.check_indexes(idx)
        s = np.empty(idx.size, dtype=np.int64)
        order = np.arange(idx.size)
        try:
            if tables.uniform:
                if idx.size:
                    s[:] = self._coder.decode(_BATCHED, tables.pmf_rows(idx))
            else:
                order, unique, bounds = _groups(idx)
                for k, u in enumerate(unique):
                    n = int(bounds[k + 1] - bounds[k])
                    s[order[bounds[k] : bounds[k + 1]]] = self._coder.decode(tables.model(int(u)), n)
        except CorruptBitstreamError:
            raise
        except Exception as err:  # out of words, or data that is no valid ANS state
            raise CorruptBitstreamError(f"entropy-coded stream cannot be decoded: {err}") from None
        values = s + tables.offsets[idx]
        escaped = s == tables.lengths[idx] - 2
        if escaped.any():
            where = order[escaped[order]]  # escapes were written in coding order
            values[where] = [self._next_escape() + int(tables.offsets[idx[i]]) for i in where]
        self._crc = zlib.crc32(_pair_bytes(values, idx), self._crc)
        return values.tolist()

    def finish(self) -> None:
        """Verify that the stream was consumed exactly and its symbols are the encoder's."""
        if self._coder is None:
            raise CorruptBitstreamError("no entropy-coded stream set")
        if not self._coder.is_empty() or self._pos != len(self._escapes):
            raise CorruptBitstreamError("entropy-coded stream has data left after its last symbol")
        if self._crc != self._expected_crc:
            raise SymbolMismatchError(
                "decoded symbols differ from the encoder's (symbol checksum): the file is damaged in a way "
                "the container checksum cannot see, or this machine computes the entropy parameters differently"
            )
        self._coder = None


class EntropyCoder:
    """Drop-in for the coder of CompressAI's ``EntropyModel`` (one string per call, verified on decoding)."""

    name = "invlab-ans"

    def encode_with_indexes(self, symbols: Any, indexes: Any, cdfs: Any, cdf_lengths: Any, offsets: Any) -> bytes:
        encoder = TableEncoder()
        encoder.encode_with_indexes(symbols, indexes, cdfs, cdf_lengths, offsets)
        return encoder.flush()

    def decode_with_indexes(self, stream: bytes, indexes: Any, cdfs: Any, cdf_lengths: Any,
                            offsets: Any) -> list[int]:
        decoder = TableDecoder()
        decoder.set_stream(stream)
        values = decoder.decode_stream(indexes, cdfs, cdf_lengths, offsets)
        decoder.finish()
        return values

    def __reduce__(self):  # pickles as itself (CompressAI's own pickling would revert to its C++ coder)
        return (EntropyCoder, ())


def use_invlab_coder(module: torch.nn.Module) -> torch.nn.Module:
    """Make every CompressAI ``EntropyModel`` inside ``module`` code with :class:`EntropyCoder`."""
    from compressai.entropy_models import EntropyModel

    for m in module.modules():
        if isinstance(m, EntropyModel) and not isinstance(m.entropy_coder, EntropyCoder):
            m.entropy_coder = EntropyCoder()
    return module


def coders_in(module: torch.nn.Module) -> Sequence[Any]:
    """The entropy coders of every ``EntropyModel`` in ``module`` (tests check they are all invlab's)."""
    from compressai.entropy_models import EntropyModel

    return [m.entropy_coder for m in module.modules() if isinstance(m, EntropyModel)]
