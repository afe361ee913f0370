"""The shared training loop: every registered model trains through ``model.rd_loss`` with the same recipe.

Two schedules, both with gradient-norm clipping at 1.0 and an aux Adam on the ``EntropyBottleneck`` quantiles:

- ``multistep`` (the GPU recipe): Adam, learning rate ×0.1 at 80 % and 95 % of the steps.
- ``wsd`` (warm-up, stable, decay; the CPU recipe for short budgets): a linear warm-up, a constant peak learning
  rate, then a cosine decay to ``min_lr_ratio`` of the peak over the last ``decay_fraction`` of the budget
  (steps or, with a time limit, minutes, whichever ends first). At the start of the decay the run saves
  ``stable.pt``: the next session resumes the stable branch from it, so a model keeps improving run after run,
  and each run's decayed ``last.pt`` is what gets exported.

``precision="bf16"`` runs forward and backward under CPU/CUDA autocast in bfloat16 (parameters, optimiser
and loss stay fp32); validation, export and coding are always fp32.

Several processes (``torchrun --nproc-per-node N -m invlab.train ...``): every rank draws the same full batch
(a pure function of seed and step) and trains on its share ``batch[rank::N]``; gradients are averaged across
ranks (``gloo`` on CPU, ``nccl`` on CUDA), so N processes take the steps one process would (up to the order
of float sums). Data-dependent initialisation (ActNorm) sees the full batch on every rank; the schedule's clock
is rank 0's; rank 0 logs, validates and checkpoints; every checkpoint first checks that the ranks' weights agree.

Resume from a checkpoint is exact for ``multistep`` (model, optimisers, scheduler, step and every RNG
state; each batch is a pure function of ``(seed, step)``, see :mod:`invlab.train.data`). The ``wsd`` decay
depends on wall-clock time when a time limit is set, so a run interrupted inside its decay resumes its
weights and step exactly but restarts the decay clock.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from invlab.errors import InvlabError, WeightFileError
from invlab.models import create_model, get_spec
from invlab.models.base import InvlabModel, eval_mode
from invlab.train.data import ImageFolder, dataset_hash
from invlab.weights import fit_weights, read_torch_file, state_tensors


@dataclass
class TrainConfig:
    model: str
    data: str
    val: str | None = None
    run_dir: str = "runs/default"
    model_config: dict[str, Any] = field(default_factory=dict)  # architecture overrides for create_model
    lmbda: float | None = None  # fixed-rate models: train this λ
    rate_index: int | None = None  # fixed-rate models: which weight file (NAME-q{i}) this run makes
    batch_size: int = 16
    crop: int = 256
    val_crop: int | None = None  # validation centre-crop size (default: ``crop``); fixed across runs to compare them
    lr: float = 1e-4
    aux_lr: float = 1e-3
    max_steps: int = 50_000
    milestones: tuple[float, ...] = (0.8, 0.95)
    clip: float = 1.0
    val_every: int = 2000
    log_every: int = 10
    ckpt_every: int = 1000
    time_limit_min: float | None = None
    seed: int = 0
    device: str = "cpu"
    precision: str = "fp32"  # "fp32" or "bf16" (autocast for forward/backward)
    schedule: str = "multistep"  # "multistep" or "wsd"
    warmup_steps: int = 0  # wsd: linear warm-up from 0 (counted from start_step / the resumed step)
    decay_fraction: float = 0.15  # wsd: the last fraction of the budget decays
    min_lr_ratio: float = 0.05  # wsd: final learning rate / peak
    init_from: str | None = None
    start_step: int = 0  # with init_from: continue the step count (data, anchors and LR schedule) from here
    init_partial: bool = False  # with init_from: take what fits from a related model (train/warm_start.py)
    progress: bool = True
    actnorm_init: str = "data"  # "data": ActNorm from the first batch's statistics; "identity": scale 1, bias 0


def default_run_dir(model: str, rate_index: int | None = None) -> Path:
    """Checkpoints live outside the work tree: ``$INVLAB_RUNS`` or ``~/.cache/invlab/runs/MODEL[-qI]``."""
    import os

    root = Path(os.environ.get("INVLAB_RUNS", Path.home() / ".cache" / "invlab" / "runs"))
    return root / (model + ("" if rate_index is None else f"-q{rate_index}"))


def wsd_factor(progress: float, warmup: float, decay_fraction: float, min_ratio: float) -> float:
    """Learning-rate multiplier of the warm-up/stable/decay schedule.

    ``progress`` in [0, 1] is the share of the budget spent; ``warmup`` in [0, 1] the warm-up's progress.
    """
    import math

    factor = min(1.0, max(warmup, 0.0))
    start = 1.0 - decay_fraction
    if decay_fraction > 0 and progress > start:
        t = min(1.0, (progress - start) / decay_fraction)
        factor *= min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t))
    return factor


FAST_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs that compute bf16 natively


def has_fast_bf16(device: str, cpu_flags: set[str] | None = None) -> bool:
    """Whether bf16 autocast is fast on ``device``: CUDA with bf16 support, or a CPU with AVX-512 bf16 / AMX.
    Elsewhere (e.g. an AVX2-only CPU) PyTorch emulates bf16: measured 20-35x slower per msinn-mini step."""
    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if cpu_flags is None:
        try:
            text = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        cpu_flags = {f for line in text.splitlines() if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return any(flag in cpu_flags for flag in FAST_BF16_CPU_FLAGS)


def resolve_precision(precision: str, device: str, cpu_flags: set[str] | None = None) -> str:
    """``auto`` -> ``bf16`` where :func:`has_fast_bf16`, else ``fp32``; ``fp32`` / ``bf16`` are kept as given."""
    if precision != "auto":
        return precision
    return "bf16" if has_fast_bf16(device, cpu_flags) else "fp32"


def check_crop_sizes(cfg: TrainConfig, model: InvlabModel) -> None:
    """Training and validation crops must be multiples of the model's total downsampling (``pad_multiple``).

    Coding pads every image to that multiple, but training feeds crops unpadded: a smaller or unaligned crop leaves
    latent grids of mismatched sizes and fails deep inside the entropy model. Raises ``InvlabError`` naming the fix.
    """
    multiple = int(model.pad_multiple)
    for option, size in (("--crop", cfg.crop), ("--val-crop", cfg.val_crop or cfg.crop)):
        if size < multiple or size % multiple:
            fit = max(multiple, size // multiple * multiple)
            raise InvlabError(f"{option} {size} does not fit {cfg.model}: training crops must be multiples of "
                              f"{multiple} (its total downsampling); use {option} {fit}")


def build_model(cfg: TrainConfig) -> tuple[InvlabModel, dict[str, Any]]:
    """The model to train and the full config that rebuilds it (``create_model(cfg.model, **config)``)."""
    config = dict(cfg.model_config)
    spec = get_spec(cfg.model)
    if spec.variable_rate:
        if cfg.lmbda is not None or cfg.rate_index is not None:
            raise ValueError(f"{cfg.model} is variable-rate: --lambda/--rate-index apply to fixed-rate models only")
    elif cfg.lmbda is not None or cfg.rate_index is not None:
        lam = cfg.lmbda if cfg.lmbda is not None else spec.lambdas[cfg.rate_index]
        config["lambdas"] = [float(lam)]
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, **config)
    if not spec.variable_rate:  # the config names its λ, so that export finds the weight file's index
        config.setdefault("lambdas", list(model.lambdas))
    return model, config


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Model weights from a training checkpoint or an exported weight file (fp16 cast back to fp32), read safely."""
    ckpt = read_checkpoint(path)
    if not isinstance(ckpt, dict) or not ("model" in ckpt or "state_dict" in ckpt):
        raise WeightFileError(f"{path}: neither a training checkpoint nor an invlab weight file")
    return state_tensors(ckpt["model"] if "model" in ckpt else ckpt["state_dict"], path)


def read_checkpoint(path: str | Path) -> Any:
    """A training checkpoint (or weight file), read with ``weights_only=True`` plus numpy's arrays (the RNG state)."""
    return read_torch_file(path, what="training checkpoint", numpy_arrays=True)


def _device_name(device: torch.device) -> str:
    """What trained: the GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return "cpu: " + line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "cpu"


def _rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _process_group(device: torch.device) -> tuple[int, int]:
    """(rank, world size): (0, 1) alone, else the torchrun process group (initialised once)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        if device.type == "cuda":  # nccl's collectives (and the closing barrier) run on this rank's own GPU
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def close_process_group(wait: bool = True) -> None:
    """End the torchrun process group, if one is open, before the interpreter exits (left to exit, gloo's
    threads can abort the process: "terminate called without an active exception"). ``wait``: every rank
    first waits for the others (not after an error, when the others may be inside another collective)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


class Trainer:
    """Train one model; ``run()`` returns ``"done"`` or ``"time_limit"`` (checkpoint written either way)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda" and "LOCAL_RANK" in os.environ:
            self.device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        self.rank, self.world = _process_group(self.device)
        if cfg.batch_size % self.world:
            raise ValueError(f"batch size {cfg.batch_size} does not split over {self.world} processes")
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_path = self.run_dir / "last.pt"
        self.log_path = self.run_dir / "log.jsonl"
        self.model, self.model_config = build_model(cfg)
        check_crop_sizes(cfg, self.model)
        resuming = self.ckpt_path.is_file() or (cfg.schedule == "wsd" and (self.run_dir / "stable.pt").is_file())
        if resuming:  # the checkpoint's weights replace any start below: load nothing twice
            pass
        elif cfg.init_from and cfg.init_partial:
            from invlab.train.warm_start import load_partial

            print(load_partial(self.model, load_state(cfg.init_from)).summary(), flush=True)
        elif cfg.init_from:
            state = load_state(cfg.init_from)  # an unreadable or unsafe file is refused as it is
            try:
                fit_weights(self.model, state, cfg.init_from, cfg.model)
            except WeightFileError as err:
                raise WeightFileError(f"{err}; weights of a related model load with --init-partial") from None
        if cfg.actnorm_init == "identity":
            from invlab.flows.actnorm import ActNorm

            for m in self.model.modules():
                if isinstance(m, ActNorm):
                    m.mark_initialized()
        elif cfg.actnorm_init != "data":
            raise ValueError(f"actnorm_init must be 'data' or 'identity', got {cfg.actnorm_init!r}")
        self.model.to(self.device).train()
        named = dict(self.model.named_parameters())
        aux_names = {n for n in named if n.endswith("quantiles")}
        self.params = [p for n, p in named.items() if n not in aux_names]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.lr)
        self.aux_optimizer = (torch.optim.Adam([named[n] for n in sorted(aux_names)], lr=cfg.aux_lr)
                              if aux_names else None)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=[int(f * cfg.max_steps) for f in cfg.milestones], gamma=0.1)
        self.train_data = ImageFolder(cfg.data, cfg.crop)
        self.val_batch = ImageFolder(cfg.val, cfg.val_crop or cfg.crop).centre_crops() if cfg.val else None
        self.step = cfg.start_step
        with warnings.catch_warnings():  # fast-forward the schedule; no optimiser step has run yet
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(cfg.start_step):
                self.scheduler.step()
        self.train_seconds = 0.0
        self.data_hash = dataset_hash(cfg.data)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        if cfg.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, not {cfg.precision!r}")
        if cfg.schedule not in ("multistep", "wsd"):
            raise ValueError(f"schedule must be multistep or wsd, not {cfg.schedule!r}")
        self.stable_path = self.run_dir / "stable.pt"
        self.spent_seconds = 0.0  # all training seconds, including decay branches that were set aside
        self.cpu_seconds = 0.0  # this process's CPU time over the same span (all its threads; rank 0's under DDP)
        self.resumed_from: str | None = None
        if cfg.schedule == "wsd" and self.stable_path.is_file():
            self._resume(self.stable_path)
        elif self.ckpt_path.is_file():
            self._resume(self.ckpt_path)
        self.first_step = self.step
        self.in_decay = False

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: Path | None = None) -> Path:
        path = path or self.ckpt_path
        self._check_ranks_agree()
        if self.rank:
            return path
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "aux_optimizer": self.aux_optimizer.state_dict() if self.aux_optimizer else None,
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "train_seconds": self.train_seconds,
            "spent_seconds": self.spent_seconds,
            "cpu_seconds": self.cpu_seconds,
            "precision": self.cfg.precision,
            "threads": torch.get_num_threads(),
            "device_name": _device_name(self.device),
            "rng": _rng_state(),
            "train_config": asdict(self.cfg),
            "model_name": self.cfg.model,
            "model_config": self.model_config,
            "data_hash": self.data_hash,
        }
        tmp = path.with_suffix(".tmp")
        torch.save(ckpt, tmp)
        tmp.replace(path)
        return path

    def _resume(self, path: Path) -> None:
        ckpt = read_checkpoint(path)
        if ckpt["model_name"] != self.cfg.model or ckpt["model_config"] != self.model_config:
            raise ValueError(f"{path} is a checkpoint of {ckpt['model_name']} {ckpt['model_config']}, "
                             f"not {self.cfg.model} {self.model_config}; use another --run-dir")
        self.model.load_state_dict(ckpt["model"])
        self.model.to(self.device)
        started = ckpt.get("train_config", {})
        if not self.cfg.init_from and started.get("init_from"):  # resumed without --init-from: the run still
            self.cfg = replace(self.cfg, init_from=started["init_from"],  # started there (export names that start)
                               start_step=started.get("start_step", 0), init_partial=started.get("init_partial", False))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.aux_optimizer:
            self.aux_optimizer.load_state_dict(ckpt["aux_optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step = ckpt["step"]
        self.train_seconds = ckpt["train_seconds"]
        self.spent_seconds = ckpt.get("spent_seconds", self.train_seconds)
        self.cpu_seconds = ckpt.get("cpu_seconds", 0.0)
        if path == self.stable_path and self.ckpt_path.is_file():  # count the set-aside decay branch too
            last = read_checkpoint(self.ckpt_path)
            self.spent_seconds = max(self.spent_seconds, last.get("spent_seconds", last["train_seconds"]))
            self.cpu_seconds = max(self.cpu_seconds, last.get("cpu_seconds", 0.0))
        _set_rng_state(ckpt["rng"])
        self.resumed_from = str(path)
        self._truncate_log()

    def _truncate_log(self) -> None:
        """Drop log records written after the checkpoint (a run killed between checkpoints)."""
        if self.rank or not self.log_path.is_file():
            return
        records = [json.loads(ln) for ln in self.log_path.read_text().splitlines()]
        lines = [json.dumps(r) for r in records if r["step"] <= self.step or r.get("phase") == "decay"]
        self.log_path.write_text("".join(ln + "\n" for ln in lines))

    def _log(self, record: dict[str, Any]) -> None:
        if self.rank:
            return
        with self.log_path.open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------------ steps
    def _rates(self, step: int, n: int) -> torch.Tensor:
        """One integer anchor per sample for a variable-rate model (zeros otherwise), drawn from the step."""
        if not self.model.variable_rate:
            return torch.zeros(n, device=self.device)
        rng = np.random.default_rng([self.cfg.seed, step, 1])
        anchors = rng.integers(0, len(self.model.lambdas), n)
        return torch.as_tensor(anchors, dtype=torch.float32, device=self.device)

    def _check_ranks_agree(self) -> None:
        """With several processes: raise unless every rank holds the same weights (a cheap checksum)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        total = torch.stack([p.detach().double().sum() for p in self.model.parameters()]).sum().reshape(1)
        low, high = total.clone(), total.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        if low.item() != high.item():
            raise RuntimeError(f"ranks disagree on the weights at step {self.step}: {low.item()} vs {high.item()}")

    def _average_gradients(self) -> None:
        import torch.distributed as dist

        grads = [p.grad for p in self.params if p.grad is not None]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def _share(self, x: torch.Tensor, rate: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's share of the full batch (initialising ActNorm on the full batch first, as one process would)."""
        from invlab.flows.actnorm import ActNorm

        if any(isinstance(m, ActNorm) and not bool(m.initialized) for m in self.model.modules()):
            with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                 enabled=self.cfg.precision == "bf16"):
                self.model(x, rate)
        return x[self.rank :: self.world], rate[self.rank :: self.world]

    def train_step(self) -> dict[str, torch.Tensor]:
        x = self.train_data.train_batch(self.cfg.seed, self.step, self.cfg.batch_size).to(self.device)
        rate = self._rates(self.step, x.shape[0])
        if self.world > 1:
            x, rate = self._share(x, rate)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16"):
            out = self.model(x, rate)
            losses = self.model.rd_loss(x, out, rate)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if self.world > 1:
            self._average_gradients()
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip)
        self.optimizer.step()
        if self.aux_optimizer:
            aux = self.model.aux_loss()
            self.aux_optimizer.zero_grad(set_to_none=True)
            aux.backward()
            self.aux_optimizer.step()
            losses["aux"] = aux
        if self.cfg.schedule == "multistep":
            self.scheduler.step()
        self.step += 1
        return losses

    def _mean_over_ranks(self, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        values = torch.stack([v.detach().float() for v in losses.values()])
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(values)
            values /= self.world
        return dict(zip(losses, values.tolist(), strict=True))

    def _clock(self, started: float) -> float:
        """Seconds since ``started`` on rank 0's clock (so every rank takes the same LR and stop decisions)."""
        elapsed = torch.tensor([time.monotonic() - started], dtype=torch.float64, device=self.device)  # nccl: on GPU
        if self.world > 1:
            import torch.distributed as dist

            dist.broadcast(elapsed, 0)
        return float(elapsed.item())

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean loss/bpp/PSNR over the fixed centre crops at every anchor (eval mode, RNG untouched), plus
        ``bpp@A`` / ``psnr@A`` at the lowest, middle and highest anchor A of a variable-rate model."""
        anchors = range(len(self.model.lambdas)) if self.model.variable_rate else [0]
        reported = sorted({anchors[0], anchors[len(anchors) // 2], anchors[-1]})
        totals: dict[str, float] = {}
        devices = [self.device] if self.device.type == "cuda" else []
        per_anchor: dict[str, float] = {}
        with eval_mode(self.model), torch.random.fork_rng(devices=devices):
            for a in anchors:
                at: dict[str, float] = {}
                for chunk in torch.split(self.val_batch, self.cfg.batch_size):
                    x = chunk.to(self.device)
                    rate = torch.full((x.shape[0],), float(a), device=self.device)
                    losses = self.model.rd_loss(x, self.model(x, rate), rate)
                    for k, v in losses.items():
                        at[k] = at.get(k, 0.0) + v.item() * x.shape[0]
                for k, v in at.items():
                    totals[k] = totals.get(k, 0.0) + v
                if a in reported and len(anchors) > 1:
                    crops = self.val_batch.shape[0]
                    per_anchor[f"bpp@{a}"] = at["bpp"] / crops
                    per_anchor[f"psnr@{a}"] = -10 * math.log10(max(at["mse"] / crops, 1e-10))
        n = len(anchors) * self.val_batch.shape[0]
        return {**{k: v / n for k, v in totals.items()}, **per_anchor}

    def budget_progress(self, elapsed_s: float) -> float:
        """Share of this run's budget spent: steps, or minutes where a time limit is set (whichever is further)."""
        cfg = self.cfg
        progress = self.step / cfg.max_steps if cfg.max_steps else 1.0
        if cfg.time_limit_min:
            progress = max(progress, elapsed_s / (60 * cfg.time_limit_min))
        return progress

    def _set_wsd_lr(self, elapsed_s: float) -> None:
        cfg = self.cfg
        progress = self.budget_progress(elapsed_s)
        if not self.in_decay and cfg.decay_fraction > 0 and progress > 1 - cfg.decay_fraction:
            self.in_decay = True
            self.save_checkpoint(self.stable_path)  # (rank 0 writes it)  # the stable branch the next run continues
        warm = (self.step - self.first_step + 1) / cfg.warmup_steps if cfg.warmup_steps else 1.0
        factor = wsd_factor(progress, warm, cfg.decay_fraction, cfg.min_lr_ratio)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * factor

    def run(self) -> str:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        seconds_before, spent_before = self.train_seconds, self.spent_seconds
        cpu_started, cpu_before = time.process_time(), self.cpu_seconds
        status = "done"
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not cfg.progress or self.rank > 0, desc=cfg.model)
        while self.step < cfg.max_steps:
            if cfg.schedule == "wsd":
                self._set_wsd_lr(self._clock(started))
            lr = self.optimizer.param_groups[0]["lr"]
            losses = self.train_step()
            elapsed = self._clock(started)
            self.train_seconds = seconds_before + elapsed
            self.spent_seconds = spent_before + elapsed
            self.cpu_seconds = cpu_before + time.process_time() - cpu_started
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                record = {"step": self.step, "split": "train", "lr": lr, "seconds": round(self.spent_seconds, 1),
                          "cpu_seconds": round(self.cpu_seconds, 1),
                          **({"phase": "decay"} if self.in_decay else {}), **self._mean_over_ranks(losses)}
                self._log(record)
                bar.set_postfix(loss=f"{record['loss']:.4f}", bpp=f"{record['bpp']:.3f}", psnr=f"{record['psnr']:.2f}")
            out_of_time = cfg.time_limit_min is not None and elapsed > 60 * cfg.time_limit_min
            if self.val_batch is not None and self.rank == 0 and (self.step % cfg.val_every == 0 or out_of_time
                                                                  or self.step == cfg.max_steps):
                self._log({"step": self.step, "split": "val", "seconds": round(self.spent_seconds, 1),
                           "cpu_seconds": round(self.cpu_seconds, 1),
                           **({"phase": "decay"} if self.in_decay else {}),
                           **({"at": "time_limit"} if out_of_time and self.step % cfg.val_every else {}),
                           **self.validate()})
            if self.step % cfg.ckpt_every == 0:
                self.save_checkpoint()
            if out_of_time:  # the last step was validated above: a run's curve ends where its training did
                status = "time_limit"
                break
        bar.close()
        self.save_checkpoint()
        return status
