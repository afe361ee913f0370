"""The JSONL result cache of a sweep: one record per (image, rate), appended as soon as it exists.

A record is ``{**labels, "image": stem, **measurement, **tags(image, rate)}``. ``labels`` name what was measured
(``rd``: the codec); ``tags`` are the settings a record must have been measured with to be reused (``evaluate``:
the weights hash and the thread count; the re-encoding study: the generations and the image's pixels). An
interrupted write leaves a torn last line: reading skips it and the next append starts on a fresh line, so the
cache stays valid JSONL and a rerun measures that point again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from invlab.eval.measure import Measurement


class ResultCache:
    """The records of ``path``, valid when their ``tags`` equal ``tags(image, rate)`` (every record without
    ``tags``)."""

    def __init__(self, path: str | Path, labels: dict[str, Any] | None = None,
                 tags: Callable[[str, float], dict[str, Any]] | None = None):
        self.path = Path(path)
        self.labels = dict(labels or {})
        self.tags = tags or (lambda image, rate: {})

    def read(self) -> list[dict[str, Any]]:
        """Every complete record in the file (a line cut short by an interruption is skipped)."""
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def usable(self, images: Collection[str], rates: Collection[float]) -> list[dict[str, Any]]:
        """The records of these images and rates measured with this cache's tags, in file order."""
        rates = set(rates)
        return [r for r in self.read() if r["image"] in images and r["rate"] in rates
                and all(r.get(k) == v for k, v in self.tags(r["image"], r["rate"]).items())]

    def done(self, images: Collection[str], rates: Collection[float]) -> set[tuple[str, float]]:
        """The (image, rate) points that need no measuring."""
        return {(r["image"], r["rate"]) for r in self.usable(images, rates)}

    def table(self, images: Collection[str], rates: Collection[float]) -> pd.DataFrame:
        """The usable records, one per (image, rate) (the last one written), sorted by rate, then image."""
        df = pd.DataFrame(self.usable(images, rates)).drop_duplicates(["image", "rate"], keep="last")
        return df.sort_values(["rate", "image"]).reset_index(drop=True)

    def record(self, image: str, measurement: Measurement) -> dict[str, Any]:
        """The cache line of one measured point."""
        return {**self.labels, "image": image, **measurement, **self.tags(image, measurement["rate"])}

    @contextlib.contextmanager
    def appending(self) -> Iterator[Callable[[str, Iterable[Measurement]], None]]:
        """``append(image, measurements)`` for the block: each call's records are written and flushed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write("\n" if self._torn() else "")

            def append(image: str, measurements: Iterable[Measurement]) -> None:
                fh.writelines(json.dumps(self.record(image, m)) + "\n" for m in measurements)
                fh.flush()

            yield append

    def _torn(self) -> bool:
        """Does the file end inside a line (a write cut short last time)?"""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return False
        with self.path.open("rb") as fh:
            fh.seek(-1, 2)
            return fh.read(1) != b"\n"

