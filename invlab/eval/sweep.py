"""The sweep: measure the (image, rate) points a result cache lacks, in this process or on ``dask.distributed``.

A job is one image (a file, or pixels held in memory under a name) and its missing rates; what a point measures
is the setup's ``task`` (default: :func:`~invlab.eval.measure.measure`, one encode + decode; the re-encoding
study's task codes many generations). Jobs run on a local cluster of ``workers`` processes with
``threads_per_worker`` torch threads each (explicit: oversubscribed torch was measured 10-30x slower here), or
on an existing cluster (``scheduler="tcp://host:8786"``); ``workers=1`` without a scheduler runs them here.
The cache stays the single source of truth: cached points are not resubmitted and records are appended as
they complete, so an interrupted or partly failed sweep resumes. A failed job is reported with its image and
rates after the others finish (then :class:`SweepError`). Codecs load once per worker process.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from invlab.codecs.base import Codec
from invlab.errors import InvlabError
from invlab.eval.cache import ResultCache
from invlab.eval.measure import Extras, Measurement, measure, warm_up
from invlab.io.images import load_image


class SweepError(InvlabError):
    """Some (image, rate) jobs of a sweep failed; the others were measured and cached (a rerun resumes)."""


#: what one (image, rate) point measures: (codec, pixels, rate) -> its record (a dict with at least ``rate``)
Task = Callable[[Codec, np.ndarray, float], dict[str, Any]]


@dataclass(frozen=True)
class Setup:
    """What every job of one sweep does: the codec, torch threads, the extras hook or another task, a warm-up
    per model."""

    codec: str
    pretrained: bool = True
    options: str = "{}"  # JSON of the learned codec's config overrides (e.g. '{"postnet": null}')
    threads: int = 1
    extras: Extras | None = None
    warm_up: bool = False  # one untimed round trip per model and process first (learned codecs)
    task: Task | None = None  # what a point measures (None: measure(codec, rgb, rate, extras))


@dataclass(frozen=True)
class Job:
    """One image and the rates to measure it at: a file (``image``: its path), or ``pixels`` held in memory
    (``image``: their name)."""

    setup: Setup
    image: str
    rates: tuple[float, ...]
    pixels: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> str:
        """The image's name in the result cache: a file's stem, or the in-memory image's name."""
        return image_key(self.image, self.pixels is not None)


def image_key(image: str | Path, in_memory: bool = False) -> str:
    """The name an image's records carry: the stem of its file, or the name of an in-memory image as given."""
    return str(image) if in_memory else Path(image).stem


def build_codec(name: str, pretrained: bool = True, options: dict[str, Any] | None = None) -> Codec:
    """The codec of ``name`` (see :func:`get_codec`); a learned one with config ``options`` if given."""
    from invlab.codecs.learned import LearnedCodec
    from invlab.codecs.registry import get_codec

    return LearnedCodec(name, pretrained, **options) if options else get_codec(name, pretrained=pretrained)


@cache
def loaded_codec(name: str, pretrained: bool = True, options: str = "{}") -> Codec:
    """:func:`build_codec`, once per process (``options`` as JSON)."""
    return build_codec(name, pretrained, json.loads(options))


def plan(setup: Setup, images: Sequence[str | Path] | Mapping[str, np.ndarray],
         rates: Sequence[float] | Mapping[str, Sequence[float]], results: ResultCache,
         redo: bool = False) -> list[Job]:
    """One job per image that lacks some of its rates in ``results`` (those rates, in the order given).

    ``images``: files, or in-memory pixels by name. ``rates``: the same for every image, or per image key
    (:func:`image_key`). ``redo``: measure every point again (the new records win; see ``ResultCache.table``)."""
    in_memory = isinstance(images, Mapping)
    keys = {image_key(p, in_memory): p for p in images}
    per_image = {k: tuple(rates[k] if isinstance(rates, Mapping) else rates) for k in keys}
    done = set() if redo else results.done(keys, {r for todo in per_image.values() for r in todo})
    jobs = []
    for key, image in keys.items():
        todo = tuple(r for r in per_image[key] if (key, r) not in done)
        if todo:
            pixels = images[image] if in_memory else None
            jobs.append(Job(setup, str(image), todo, pixels))
    return jobs


def run_job(job: Job, codec: Codec | None = None) -> list[Measurement]:
    """Measure one image at the job's rates with ``job.setup.threads`` torch threads (restored afterwards)."""
    import torch

    setup = job.setup
    codec = codec or loaded_codec(setup.codec, setup.pretrained, setup.options)
    rgb = job.pixels if job.pixels is not None else load_image(job.image).rgb
    previous = torch.get_num_threads()
    torch.set_num_threads(setup.threads)
    try:
        for rate in job.rates if setup.warm_up else ():
            warm_up(codec, rgb, rate)
        if setup.task is not None:
            return [setup.task(codec, rgb, rate) for rate in job.rates]
        return [measure(codec, rgb, rate, setup.extras) for rate in job.rates]
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def dask_client(workers: int = 1, threads_per_worker: int = 1, scheduler: str | None = None) -> Iterator[Any]:
    """A Dask client (a local cluster of ``workers`` processes, or ``scheduler``'s), or None to run in process."""
    if scheduler is None and workers <= 1:
        yield None
        return
    import dask.config
    from distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    env = {"OMP_NUM_THREADS": str(threads_per_worker), "MKL_NUM_THREADS": str(threads_per_worker)}
    # Dask's default MALLOC_TRIM_THRESHOLD_=65536 fixes glibc's mmap threshold, so every tensor is a fresh mmap:
    # measured 5x slower per Kodak image here (page faults). Workers keep glibc's defaults.
    glibc_defaults = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
    ours = dict(os.environ)  # the nanny writes its workers' variables into this process's environment too
    try:
        with (dask.config.set(glibc_defaults),
              LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           env=env) as cluster,
              Client(cluster) as client):
            yield client
    finally:  # undo only what changed (never an empty environment in between)
        for key in set(os.environ) - set(ours):
            del os.environ[key]
        for key, value in ours.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


#: jobs submitted by the last sweep (tests: a resumed sweep submits only what is missing)
SUBMITTED: list[Job] = []


def sweep(jobs: list[Job], results: ResultCache, client: Any = None, desc: str = "", progress: bool = True,
          codec: Codec | None = None) -> None:
    """Run ``jobs`` (on ``client`` if given, else here with ``codec``), appending each record as it arrives."""
    SUBMITTED[:] = jobs
    if not jobs:
        return
    bar = tqdm(total=sum(len(j.rates) for j in jobs), desc=desc, unit="pt", disable=not progress)
    failures: list[str] = []
    with results.appending() as append:
        for job, measured, error in _results(jobs, client, codec):
            if error is not None:
                failures.append(f"{Path(job.image).name} at rates {list(job.rates)}: {type(error).__name__}: {error}")
            else:
                append(job.key, measured)
            bar.update(len(job.rates))
    bar.close()
    if failures:
        raise SweepError(f"{desc}: {len(failures)} of {len(jobs)} jobs failed (the others are cached):\n  "
                         + "\n  ".join(failures))


def _results(jobs: list[Job], client: Any, codec: Codec | None
             ) -> Iterator[tuple[Job, list[Measurement] | None, BaseException | None]]:
    """(job, measurements, None) or (job, None, error) for every job, as they complete."""
    if client is None:
        for job in jobs:
            try:
                yield job, run_job(job, codec), None
            except Exception as err:  # reported with its image and rates; the other jobs go on
                yield job, None, err
        return
    from distributed import as_completed

    futures = {client.submit(run_job, job, pure=False): job for job in jobs}
    for future in as_completed(list(futures)):
        try:
            yield futures[future], future.result(), None
        except Exception as err:
            yield futures[future], None, err
