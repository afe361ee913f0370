"""``invlab train``: train a registered model (resumable), and/or export its checkpoint as shipped weights.

    invlab train tiny-flow --data .traindata/train --val .traindata/val --max-steps 50000 --time-limit 8
    invlab train bmshj2018-hyperprior-mini --rate-index 2 --data ... --export
    invlab train tiny-flow --export                     # export runs/tiny-flow/last.pt only

Re-running the same command resumes exactly from ``RUN_DIR/last.pt``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from invlab.train.export import export_weights
from invlab.train.trainer import TrainConfig, Trainer, close_process_group, default_run_dir, resolve_precision


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="registered model name (see `invlab models`)")
    parser.add_argument("--data", help="folder of training images (PNG/WebP); omit to only --export")
    parser.add_argument("--val", help="folder of validation images (fixed centre crops)")
    parser.add_argument("--run-dir",
                        help="checkpoint + log folder (default $INVLAB_RUNS or ~/.cache/invlab/runs/MODEL[-qI])")
    parser.add_argument("--config", default="{}", help="JSON architecture overrides for the model factory")
    parser.add_argument("--lambda", dest="lmbda", type=float, help="fixed-rate models: the λ to train")
    parser.add_argument("--rate-index", type=int, help="fixed-rate models: weight file NAME-qI (picks its default λ)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop", type=int, default=256, help="training crop size (multiple of the model's padding)")
    parser.add_argument("--val-crop", type=int, help="validation centre-crop size (default: --crop)")
    parser.add_argument("--actnorm-init", choices=["data", "identity"], default="data",
                        help="ActNorm: data-dependent init from the first batch, or identity")
    parser.add_argument("--lr", type=float, default=1e-4, help="(peak) learning rate")
    parser.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32",
                        help="bf16: autocast forward/backward (about 2x faster on CPUs with AVX-512 bf16 or AMX, "
                             "10-30x slower on CPUs without: emulated); auto: bf16 only where the device has it")
    parser.add_argument("--schedule", choices=["multistep", "wsd"], default="multistep",
                        help="multistep: x0.1 at 80%% and 95%%; wsd: warm-up, constant, cosine decay at the end")
    parser.add_argument("--warmup-steps", type=int, default=0, help="wsd: linear warm-up steps")
    parser.add_argument("--decay-fraction", type=float, default=0.15,
                        help="wsd: the last fraction of the budget (steps or --time-limit) decays")
    parser.add_argument("--min-lr-ratio", type=float, default=0.05, help="wsd: final LR / peak")
    parser.add_argument("--aux-lr", type=float, default=1e-3)
    parser.add_argument("--max-steps", type=int, default=50_000, help="total steps (the LR drops at 80%% and 95%%)")
    parser.add_argument("--val-every", type=int, default=2000)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--ckpt-every", type=int, default=1000)
    parser.add_argument("--time-limit", type=float, help="minutes: checkpoint and exit cleanly after this long")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--init-from", help="start from these weights (checkpoint or weights .pt): staged fine-tuning")
    parser.add_argument("--start-step", type=int, default=0,
                        help="with --init-from: continue a run from a weights file at this step (fresh optimiser)")
    parser.add_argument("--init-partial", action="store_true",
                        help="with --init-from: weights of a related model (e.g. anfic-mini from anfic-mini-noctx): "
                             "take the tensors that fit, widen grown input channels with zeros, keep the old filters "
                             "in grown output channels (the same model at a greater width, --config), report the rest")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bar")
    parser.add_argument("--export", action="store_true", help="write weights/NAME[-qI].pt + .json from the checkpoint")
    parser.add_argument("--fp16", action="store_true", help="export: store parameters as fp16")
    parser.add_argument("--kodak", default=str(Path(__file__).resolve().parents[2] / "data" / "kodak"),
                        help="export: images for the kodak_rd metadata field ('' to skip)")
    parser.add_argument("--kodak-limit", type=int, help="export: evaluate on the first N images only")
    parser.add_argument("--eval-device", default="cpu", help="export: device of the Kodak evaluation")


def run(args: argparse.Namespace) -> int:
    if args.init_partial and not args.init_from:
        raise SystemExit("invlab train: --init-partial needs --init-from (the related model's weights)")
    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(args.model, args.rate_index)
    if args.data:
        cfg = TrainConfig(
            model=args.model, data=args.data, val=args.val, run_dir=str(run_dir), model_config=json.loads(args.config),
            lmbda=args.lmbda, rate_index=args.rate_index, batch_size=args.batch_size, crop=args.crop, lr=args.lr,
            aux_lr=args.aux_lr, max_steps=args.max_steps, val_every=args.val_every, log_every=args.log_every,
            ckpt_every=args.ckpt_every, time_limit_min=args.time_limit, seed=args.seed, device=args.device,
            init_from=args.init_from, start_step=args.start_step, init_partial=args.init_partial,
            progress=not args.no_progress,
            precision=resolve_precision(args.precision, args.device), schedule=args.schedule,
            warmup_steps=args.warmup_steps,
            decay_fraction=args.decay_fraction, min_lr_ratio=args.min_lr_ratio, val_crop=args.val_crop,
            actnorm_init=args.actnorm_init,
        )
        try:
            trainer = Trainer(cfg)
            status = trainer.run()
        except BaseException:
            close_process_group(wait=False)
            raise
        close_process_group()
        if trainer.rank:  # torchrun: rank 0 reports and exports
            return 0
        print(f"{args.model}: {status} at step {trainer.step}/{cfg.max_steps} "
              f"({trainer.train_seconds:.0f} s of training"
              + (f" on {trainer.world} processes" if trainer.world > 1 else "") + f"); checkpoint {trainer.ckpt_path}")
    elif not args.export:
        raise SystemExit("invlab train: give --data to train, or --export to export a finished run")
    if args.export:
        out = export_weights(run_dir / "last.pt", fp16=args.fp16, rate_index=args.rate_index,
                             kodak=args.kodak or None, kodak_limit=args.kodak_limit, device=args.eval_device)
        meta = json.loads(out.with_suffix(".json").read_text())
        print(f"exported {out} ({meta['storage']}, hash {meta['weights_hash']}, {meta['training']['steps']} steps)")
        for point in meta["kodak_rd"] or []:
            print(f"  rate {point['rate']:g}: {point['bpp']:.4f} bpp, {point['psnr']:.2f} dB "
                  f"({point['images']} images)")
    return 0
