"""Shipped weights: where they live, how they load, and the hash that ties a file to its weights.

Layout of ``weights/`` (override the folder with ``INVLAB_WEIGHTS``):

- variable-rate model ``NAME``: ``NAME.pt`` + ``NAME.json`` (metadata)
- fixed-rate family ``NAME``: ``NAME-q0.pt``, ``NAME-q1.pt``, ... each with its ``.json``

A ``.pt`` file holds ``{"state_dict": ..., "config": {...}}`` (fp16 tensors allowed; they are cast
back to fp32 on load). The metadata JSON records config, training steps, data hash, lambdas, the
commit that trained it and its Kodak RD.

Every file is read with ``torch.load(weights_only=True)`` (:func:`read_torch_file`): tensors, numbers, strings
and containers, nothing that runs code. Weights load strictly (:func:`fit_weights`): a file that misses a tensor
of the model, carries one the model lacks, or sizes one differently is refused with
:class:`~invlab.errors.WeightFileError`, never loaded in part.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from invlab.errors import MissingWeightsError, WeightFileError
from invlab.models import create_model
from invlab.models.registry import get_spec

if TYPE_CHECKING:  # torch is imported where tensors are handled, so that weight look-ups stay cheap
    import torch

    from invlab.models.base import InvlabModel

REPO_ROOT = Path(__file__).resolve().parents[1]


def weights_dir() -> Path:
    return Path(os.environ.get("INVLAB_WEIGHTS", REPO_ROOT / "weights"))


def weights_path(name: str, rate_index: int | None = None) -> Path:
    stem = name if rate_index is None else f"{name}-q{rate_index}"
    return weights_dir() / f"{stem}.pt"


def shipped_weights(name: str) -> list[Path]:
    """All weight files shipped for ``name`` (one for a variable-rate model, one per rate otherwise).

    ``name`` must be a registered model (:class:`~invlab.errors.UnknownModelError` otherwise): a name read from a
    file's header is checked before it becomes part of a path."""
    get_spec(name)
    folder = weights_dir()
    single = folder / f"{name}.pt"
    if single.is_file():
        return [single]
    return sorted(folder.glob(f"{name}-q*.pt"), key=lambda p: int(p.stem.rsplit("-q", 1)[1]))


def rate_indices(name: str) -> list[int]:
    """The rate indices a fixed-rate family ships weights for (``NAME-q{i}.pt``), e.g. [0, 2, 3]."""
    return [int(p.stem.rsplit("-q", 1)[1]) for p in shipped_weights(name) if "-q" in p.stem]


def ships_per_rate(name: str) -> bool:
    """Whether ``name`` ships weight files per rate index (``NAME-q{i}.pt``), even a single one: the rate then
    names the file's index (a family whose q2 is trained first codes at rate 2, not at "rate 0")."""
    return bool(rate_indices(name))


def has_weights(name: str) -> bool:
    return bool(shipped_weights(name))


def read_metadata(path: Path) -> dict[str, Any]:
    meta = path.with_suffix(".json")
    return json.loads(meta.read_text()) if meta.is_file() else {}


def state_dict_hash(state_dict: dict[str, torch.Tensor]) -> bytes:
    """First 8 bytes of a SHA-256 over the names and fp32 values of every tensor (order-independent)."""
    import torch

    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key]
        if not torch.is_tensor(tensor) or key.endswith(("_cdf", "_cdf_length", "_offset", "_quantized_cdf")):
            continue  # CDF tables are derived by update(); they do not identify the weights
        digest.update(key.encode())
        t = tensor.detach().cpu()
        t = t.float() if t.is_floating_point() else t
        digest.update(t.contiguous().numpy().tobytes())
    return digest.digest()[:8]


#: what a training checkpoint holds besides tensors and plain data: numpy's random state, an array (data, no code)
def _numpy_array_globals() -> list[Any]:
    import numpy as np

    return [np.core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))]


def read_torch_file(path: str | Path, what: str = "weight file", numpy_arrays: bool = False) -> Any:
    """The contents of a torch file, read with ``weights_only=True``: tensors, numbers, strings and containers
    (and numpy arrays where ``numpy_arrays``, as in training checkpoints). Nothing in the file runs.

    Raises :class:`~invlab.errors.WeightFileError` for a missing, truncated or foreign file, and for one whose
    pickle asks for any other object (a file that would run code when loaded the unsafe way).
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise WeightFileError(f"{path}: no such {what}")
    allowed = _numpy_array_globals() if numpy_arrays else []
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        objects = sorted(set(re.findall(r"GLOBAL ([\w.]+)|but got <class '([\w.]+)'>", str(err))))
        if not objects:
            raise WeightFileError(f"{path}: not a readable {what} (not a torch file, or a damaged one)") from None
        names = ", ".join(a or b for a, b in objects)
        raise WeightFileError(f"{path}: refused: this {what} asks to build {names}, not only tensors and settings; "
                              "loading it could run code from the file") from None
    except Exception as err:  # noqa: BLE001  (torch reports a damaged zip or pickle with many exception types)
        raise WeightFileError(f"{path}: not a readable {what} (truncated, or not a torch file: "
                              f"{type(err).__name__} {_first_line(err)})".replace(" )", ")")) from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else ""


def state_tensors(state: Any, source: str | Path) -> dict[str, torch.Tensor]:
    """``state`` checked to be a dict of named tensors, fp16 cast back to fp32 (weight files may store fp16)."""
    import torch

    if not isinstance(state, dict) or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise WeightFileError(f"{source}: its state dict is not a mapping of names to tensors")
    return {k: v.float() if v.dtype == torch.float16 else v for k, v in state.items()}


def read_weight_file(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict (fp32) and model config of an invlab weight file ``{"state_dict": ..., "config": ...}``."""
    ckpt = read_torch_file(path)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise WeightFileError(f"{path}: not an invlab weight file (a dict with 'state_dict' and 'config')")
    config = ckpt.get("config", {})
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise WeightFileError(f"{path}: its 'config' is not a mapping of option names to values")
    return state_tensors(ckpt["state_dict"], path), config


def first_names(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` names, and how many more (for one-line messages)."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def fit_weights(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path, name: str) -> None:
    """Load ``state`` into ``model`` exactly: every tensor the model has, none it lacks, every shape equal.

    The model's own ``load_state_dict`` runs (CompressAI's sizes the entropy models' table buffers from the
    file first; MSINN's widens a gain table with fewer anchors), strictly. A file that does not fit raises
    :class:`~invlab.errors.WeightFileError` naming the first missing / unexpected / resized tensors.
    """
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        parts = ([f"missing {first_names(missing)}"] if missing else []) + (
            [f"unexpected {first_names(unexpected)}"] if unexpected else [])
        raise WeightFileError(f"{source} does not fit {name}: {'; '.join(parts)} "
                              f"({len(expected)} tensors in the model, {len(state)} in the file)")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith("size mismatch")), lines[0] if lines else type(err).__name__)
        raise WeightFileError(f"{source} does not fit {name}: {first}") from None


def build_from_file(name: str, path: str | Path, **overrides: Any) -> InvlabModel:
    """``name`` built with the config of weight file ``path``, its weights loaded strictly.

    ``overrides`` change the config (e.g. ``postnet=None``): the file must still fit the model its own config
    builds, and the overridden model takes the tensors it keeps (a part an override removes is left out; one
    it adds is missing, and refused).
    """
    state, config = read_weight_file(path)

    def build(**options: Any) -> InvlabModel:
        try:
            return create_model(name, **options)
        except (TypeError, ValueError) as err:
            raise WeightFileError(f"{path}: its config does not build {name} ({_first_line(err)})") from None

    model = build(**{**config, **overrides})
    kept = set(model.state_dict())
    if overrides and not set(state) <= kept:  # an override removed a part: the file, whole, must still fit the
        fit_weights(build(**config), state, path, name)  # model it was made for (built only then: paper size is slow)
        state = {k: v for k, v in state.items() if k in kept}
    fit_weights(model, state, path, name)
    return model


def load_model(name: str, pretrained: bool = True, rate_index: int | None = None,
               path: str | Path | None = None, **overrides) -> InvlabModel:
    """A model ready for coding: eval mode, CPU, fp32, CDF tables built, ``weights_hash`` set.

    ``pretrained=False`` gives the deterministic untrained init (seed 0), for tests and demos;
    ``model.trained`` tells which one you have. ``path``: a weight file of ``name`` other than the shipped ones
    (read safely, loaded strictly: :func:`build_from_file`).
    """
    import torch

    get_spec(name)
    if path is None and pretrained:
        files = shipped_weights(name)
        if not files:
            raise MissingWeightsError(
                f"no trained weights for {name!r} in {weights_dir()} (train it with `invlab train {name}`, "
                "or pass pretrained=False / --untrained for the untrained demo model)"
            )
        if len(files) > 1 or rate_index is not None:  # no index: the first shipped (the rate space's default)
            chosen = files[0] if rate_index is None else weights_path(name, rate_index)
            if not chosen.is_file():
                raise MissingWeightsError(f"{chosen.name} not shipped; have {[f.name for f in files]}")
            files = [chosen]
        path = files[0]
    torch.manual_seed(0)
    if path is not None:
        model = build_from_file(name, path, **overrides)
        model.trained = True
        model.weights_file = str(path)
    else:
        model = create_model(name, **overrides)
        model.init_for_inference()
        model.trained = False
        model.weights_file = None
    model.eval()
    model.weights_hash = state_dict_hash(model.state_dict())
    model.update(force=True)
    return model


#: what the papers trained, for the budget line beside each CPU-trained model
PAPER_BUDGET = {
    "msinn": "the paper: 750 epochs of Flickr2W, about 1.9 M steps of batch 8 at 256²",
    "invcompress": "the paper: about 10 days on one RTX 2080 Ti per rate",
}


def cpu_hours_of(training: dict) -> float | None:
    """CPU-hours of every run behind a weight file (warm continuations included), from its metadata's training;
    None where it is unknown, or where the file was trained on a GPU alone (see :func:`gpu_budget`)."""
    hours = training.get("cpu_hours_total", training.get("cpu_hours"))
    if hours is None or (gpu_budget(training) and not hours):
        return None
    return float(hours)


def on_gpu(run: dict) -> bool:
    """Whether a run (a metadata ``training`` block or one of its ``earlier_runs``) ran on an accelerator."""
    return not str(run.get("device") or "cpu").startswith("cpu")


def gpu_budget(training: dict) -> str:
    """The accelerator wall time behind a weight file, its GPU runs only (this one and ``earlier_runs``), e.g.
    "8.7 GPU-min (NVIDIA H200)"; "? GPU-h (...)" where a GPU run's time is unknown; "" for CPU training alone."""
    runs = [r for r in [*training.get("earlier_runs", []), training] if on_gpu(r)]
    if not runs:
        return ""
    names = ", ".join(sorted({str(r.get("device_name") or r.get("device")) for r in runs}))
    hours = [r.get("wall_hours_all_runs") for r in runs]
    if any(h is None for h in hours):
        return f"? GPU-h ({names})"
    total = float(sum(hours))
    return f"{total * 60:.1f} GPU-min ({names})" if total < 1 else f"{total:.1f} GPU-h ({names})"


def fine_tune_start(training: dict) -> str:
    """Where a fine-tuned weight file started (its metadata's ``fine_tuned_from``), e.g. "fine-tuned from
    bmshj2018-hyperprior-mini q2 (9,908 steps, 1.3 CPU-hours)"; "" for a file trained from scratch."""
    base = training.get("fine_tuned_from")
    if not base:
        return ""
    index = f" q{base['rate_index']}" if base.get("rate_index") is not None else ""
    hours = f", {base['cpu_hours_total']:.1f} CPU-hours" if base.get("cpu_hours_total") is not None else ""
    hours += f", {base['gpu']}" if base.get("gpu") else ""
    how = "warm from (the parts that fit)" if training.get("init_partial") else "fine-tuned from"
    return f"{how} {base.get('model')}{index} ({base.get('steps') or 0:,} steps{hours})"


def official_phrase(official: dict[str, Any]) -> str:
    """How converted official weights are described everywhere: their source file and its SHA-256."""
    return f"official weights from {official['source']} (sha256 {official['sha256'][:12]}…), not trained here"


def file_line(name: str, file: str | Path) -> str:
    """One line on a weight file of the user's for ``name`` (the workbench's banner): converted official weights
    say so, others give their training budget from the metadata beside them, when there is any."""
    meta = read_metadata(Path(file))
    if meta.get("official"):
        return f"{name}: {official_phrase(meta['official'])} ({Path(file).name})"
    t = meta.get("training", {})
    if not t:
        return f"{name}: weights from {Path(file).name} (no metadata beside it)"
    hours = cpu_hours_of(t)
    where = f"{hours:.1f} CPU-hours" if hours is not None else gpu_budget(t) or "an unknown time"
    return f"{name}: weights from {Path(file).name}, trained {where}, {t.get('steps', 0):,} steps"


def budget_line(name: str, rate_index: int | None = None) -> str:
    """One honest line on how a shipped model was trained, from its metadata (e.g. for the workbench banner)."""
    files = [weights_path(name, rate_index)] if rate_index is not None else shipped_weights(name)
    if not files or not files[0].is_file():
        return f"{name}: no trained weights shipped (untrained numbers are not results)"
    meta = read_metadata(files[0])
    t = meta.get("training", {})
    if not t:
        return f"{name}: trained weights shipped (no training metadata)"
    hours = cpu_hours_of(t)
    runs = len(t.get("earlier_runs", [])) + 1
    n = t.get("threads")
    threads = (f"{runs} runs, " if runs > 1 else "") + (f"{n} thread{'s' if n != 1 else ''}, " if n else "")
    where = (f"{hours:.1f} CPU-hours ({threads}{t.get('precision', 'fp32')})" if hours is not None
             else gpu_budget(t) or "an unknown time")
    data = meta.get("data", {}).get("train", "?")
    family = meta.get("family", "")
    paper = PAPER_BUDGET.get(family, "")
    more = f" — {len(files)} weight files" if len(files) > 1 else ""
    start = fine_tune_start(t)
    if start:
        more = f" — {start}" + more
    return (f"{name}: trained {where}, {t.get('steps', 0):,} steps, {t.get('samples_seen', 0):,} samples of "
            f"'{data}'" + (f" ({paper})" if paper else "") + more)
