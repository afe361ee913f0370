"""The shared training loop: every registered model trains through ``model.rd_loss`` with the same recipe.

Recipe (architectures.md §8.1): Adam 1e-4, learning rate ×0.1 at 80 % and 95 % of the steps, gradient-norm
clipping at 1.0, an aux Adam 1e-3 on the ``EntropyBottleneck`` quantiles, fp32 (TF32 allowed on CUDA).
Variable-rate models draw one integer anchor per sample; fixed-rate models train one λ.

Resume is exact: the checkpoint holds model, optimisers, scheduler, step and every RNG state, and each
batch is a pure function of ``(seed, step)`` (see :mod:`invlab.train.data`).
"""

from __future__ import annotations

import json
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from invlab.models import create_model
from invlab.models.base import FIXED_RATE_LAMBDAS, InvlabModel
from invlab.train.data import ImageFolder, dataset_hash

#: λ per rate index for fixed-rate families that do not set ``family_lambdas`` (design §8.1)
DEFAULT_FIXED_LAMBDAS = FIXED_RATE_LAMBDAS


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
    init_from: str | None = None
    start_step: int = 0  # with init_from: continue the step count (data, anchors and LR schedule) from here
    progress: bool = True


def family_lambdas(model: InvlabModel) -> tuple[float, ...]:
    """The λ of each weight file ``NAME-q{i}`` of a fixed-rate family."""
    return tuple(getattr(model, "family_lambdas", DEFAULT_FIXED_LAMBDAS))


def build_model(cfg: TrainConfig) -> tuple[InvlabModel, dict[str, Any]]:
    """The model to train and the full config that rebuilds it (``create_model(cfg.model, **config)``)."""
    config = dict(cfg.model_config)
    probe = create_model(cfg.model, **config)
    if probe.variable_rate:
        if cfg.lmbda is not None or cfg.rate_index is not None:
            raise ValueError(f"{cfg.model} is variable-rate: --lambda/--rate-index apply to fixed-rate models only")
    elif cfg.lmbda is not None or cfg.rate_index is not None:
        lam = cfg.lmbda if cfg.lmbda is not None else family_lambdas(probe)[cfg.rate_index]
        config["lambdas"] = [float(lam)]
    torch.manual_seed(cfg.seed)
    return create_model(cfg.model, **config), config


def load_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Model weights from a training checkpoint or an exported weight file (fp16 cast back to fp32)."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt["model"] if "model" in ckpt else ckpt["state_dict"]
    return {k: v.float() if torch.is_tensor(v) and v.dtype == torch.float16 else v for k, v in state.items()}


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


class Trainer:
    """Train one model; ``run()`` returns ``"done"`` or ``"time_limit"`` (checkpoint written either way)."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            torch.backends.cudnn.benchmark = True
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_path = self.run_dir / "last.pt"
        self.log_path = self.run_dir / "log.jsonl"
        self.model, self.model_config = build_model(cfg)
        if cfg.init_from:
            self.model.load_state_dict(load_state(cfg.init_from))
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
        self.val_batch = ImageFolder(cfg.val, cfg.crop).centre_crops() if cfg.val else None
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
        if self.ckpt_path.is_file():
            self._resume()

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        ckpt = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "aux_optimizer": self.aux_optimizer.state_dict() if self.aux_optimizer else None,
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "train_seconds": self.train_seconds,
            "rng": _rng_state(),
            "train_config": asdict(self.cfg),
            "model_name": self.cfg.model,
            "model_config": self.model_config,
            "data_hash": self.data_hash,
        }
        tmp = self.ckpt_path.with_suffix(".tmp")
        torch.save(ckpt, tmp)
        tmp.replace(self.ckpt_path)
        return self.ckpt_path

    def _resume(self) -> None:
        ckpt = torch.load(self.ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["model_name"] != self.cfg.model or ckpt["model_config"] != self.model_config:
            raise ValueError(f"{self.ckpt_path} is a checkpoint of {ckpt['model_name']} {ckpt['model_config']}, "
                             f"not {self.cfg.model} {self.model_config}; use another --run-dir")
        self.model.load_state_dict(ckpt["model"])
        self.model.to(self.device)
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.aux_optimizer:
            self.aux_optimizer.load_state_dict(ckpt["aux_optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.step = ckpt["step"]
        self.train_seconds = ckpt["train_seconds"]
        _set_rng_state(ckpt["rng"])
        self._truncate_log()

    def _truncate_log(self) -> None:
        """Drop log records written after the checkpoint (a run killed between checkpoints)."""
        if not self.log_path.is_file():
            return
        lines = [ln for ln in self.log_path.read_text().splitlines() if json.loads(ln)["step"] <= self.step]
        self.log_path.write_text("".join(ln + "\n" for ln in lines))

    def _log(self, record: dict[str, Any]) -> None:
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

    def train_step(self) -> dict[str, torch.Tensor]:
        x = self.train_data.train_batch(self.cfg.seed, self.step, self.cfg.batch_size).to(self.device)
        rate = self._rates(self.step, x.shape[0])
        out = self.model(x, rate)
        losses = self.model.rd_loss(x, out, rate)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip)
        self.optimizer.step()
        if self.aux_optimizer:
            aux = self.model.aux_loss()
            self.aux_optimizer.zero_grad(set_to_none=True)
            aux.backward()
            self.aux_optimizer.step()
            losses["aux"] = aux
        self.scheduler.step()
        self.step += 1
        return losses

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Mean loss/bpp/PSNR over the fixed centre crops at every anchor (eval mode, RNG untouched)."""
        self.model.eval()
        anchors = range(len(self.model.lambdas)) if self.model.variable_rate else [0]
        totals: dict[str, float] = {}
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for a in anchors:
                for chunk in torch.split(self.val_batch, self.cfg.batch_size):
                    x = chunk.to(self.device)
                    rate = torch.full((x.shape[0],), float(a), device=self.device)
                    losses = self.model.rd_loss(x, self.model(x, rate), rate)
                    for k, v in losses.items():
                        totals[k] = totals.get(k, 0.0) + v.item() * x.shape[0]
        self.model.train()
        n = len(anchors) * self.val_batch.shape[0]
        return {k: v / n for k, v in totals.items()}

    def run(self) -> str:
        cfg = self.cfg
        self.run_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        seconds_before = self.train_seconds
        status = "done"
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not cfg.progress, desc=cfg.model)
        while self.step < cfg.max_steps:
            losses = self.train_step()
            self.train_seconds = seconds_before + time.monotonic() - started
            bar.update(1)
            if self.step % cfg.log_every == 0 or self.step == cfg.max_steps:
                record = {"step": self.step, "split": "train", "lr": self.optimizer.param_groups[0]["lr"],
                          **{k: v.item() for k, v in losses.items()}}
                self._log(record)
                bar.set_postfix(loss=f"{record['loss']:.4f}", bpp=f"{record['bpp']:.3f}", psnr=f"{record['psnr']:.2f}")
            if self.val_batch is not None and (self.step % cfg.val_every == 0 or self.step == cfg.max_steps):
                self._log({"step": self.step, "split": "val", **self.validate()})
            if self.step % cfg.ckpt_every == 0:
                self.save_checkpoint()
            if cfg.time_limit_min is not None and time.monotonic() - started > 60 * cfg.time_limit_min:
                status = "time_limit"
                break
        bar.close()
        self.save_checkpoint()
        return status
