"""Can an encoder undo MSINN's post-net? Given the decoder's 8-bit picture z = round8(x̃ + 0.3·P(x̃)), a stable
re-encoder would need x̃ back. This measures, on one image at one rate (the eval-mode forward, which is the
decoder's output):

- the Lipschitz constant of 0.3·P at x̃ (largest singular value of its Jacobian, by power iteration): the plain
  fixed-point iteration x̃ ← z − 0.3·P(x̃) converges only below 1;
- what a solver reaches: the damped iteration x̃ ← x̃ − ½(x̃ + 0.3·P(x̃) − z) and L-BFGS on ‖x̃ + 0.3·P(x̃) − z‖²,
  each started at z: the largest residual left (levels) and how far its x̃ lies from the true one (RMS, levels);
- whether the symbols come back: the share of symbols that re-encoding the solver's x̃ changes (vs re-encoding z,
  and vs the true x̃ in float, the bound: what is left is the LRP's and the float arithmetic's).

    python -m benchmarks.postnet_inverse --json results/reencoding/postnet-inverse-msinn-mini.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from invlab.codecs.learned import LearnedCodec
from invlab.io.images import load_image, to_tensor, to_uint8
from invlab.models.base import eval_mode
from invlab.models.msinn.postnet import POSTNET_WEIGHT
from invlab.widgets.sources import center_crop

LEVELS = 255.0


def lipschitz(residual, x: torch.Tensor, iterations: int = 20) -> float:
    """Largest singular value of the Jacobian of ``residual`` at ``x`` (power iteration on JᵀJ)."""
    v = torch.randn_like(x, generator=torch.Generator().manual_seed(0))
    v /= v.norm()
    sigma = 0.0
    for _ in range(iterations):
        _, jv = torch.autograd.functional.jvp(residual, x, v)
        _, jtjv = torch.autograd.functional.vjp(residual, x, jv)
        sigma = jv.norm().item()
        v = jtjv / jtjv.norm()
    return sigma


def damped(post, z: torch.Tensor, iterations: int = 200, step: float = 0.5) -> torch.Tensor:
    x = z.clone()
    with torch.no_grad():
        for _ in range(iterations):
            x = x - step * (x + POSTNET_WEIGHT * post(x) - z)
    return x


def lbfgs(post, z: torch.Tensor, iterations: int = 300) -> torch.Tensor:
    flat = z.clone().reshape(-1).requires_grad_(True)
    solver = torch.optim.LBFGS([flat], max_iter=iterations, tolerance_grad=1e-12, tolerance_change=1e-14,
                               history_size=20, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        solver.zero_grad()
        x = flat.view_as(z)
        value = (x + POSTNET_WEIGHT * post(x) - z).pow(2).sum()
        value.backward()
        return value

    solver.step(loss)
    return flat.detach().view_as(z)


def measure(model_name: str, image: Path, crop: int, rate: float) -> dict:
    model = LearnedCodec(model_name).model(rate)
    rgb = center_crop(load_image(image).rgb, crop)
    x = model.pad(to_tensor(rgb))
    rate_t = torch.tensor([rate])
    with eval_mode(model), torch.no_grad():
        out = model(x, rate_t)
        x_tilde = out["x_tilde"]
        z = to_tensor(to_uint8(out["x_hat"].clamp(0, 1)))
        symbols = model.scale_symbols(x, rate)  # the first generation's
    post = model.postnet
    with torch.enable_grad():
        sigma = lipschitz(lambda v: POSTNET_WEIGHT * post(v), x_tilde.clone())
        solutions = {"damped iteration": damped(post, z), "L-BFGS": lbfgs(post, z), "none (re-encode z)": z,
                     "the true x̃ (a bound: what a perfect solver finds)": x_tilde}
    total = sum(s.numel() for s in symbols.values())
    rows = []
    with torch.no_grad():
        for solver, x_found in solutions.items():
            again = model.scale_symbols(x_found, rate)  # x̃ stands where the image would: the INN's latents of it
            changed = sum(int((again[k] != symbols[k]).sum()) for k in symbols)
            rows.append({"solver": solver,
                         "residual max (levels)": float((x_found + POSTNET_WEIGHT * post(x_found) - z).abs().max()
                                                        * LEVELS),
                         "x̃ error RMS (levels)": float((x_found - x_tilde).pow(2).mean().sqrt() * LEVELS),
                         "symbols changed (%)": 100.0 * changed / total})
    return {"model": model_name, "image": image.stem, "crop": crop, "rate": rate,
            "lipschitz of 0.3·P at x̃": sigma, "rows": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="msinn-mini", help="an MSINN model, or MODEL@FILE")
    parser.add_argument("--image", type=Path, default=Path("data/kodak/kodim23.png"))
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--rate", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    result = measure(args.model, args.image, args.crop, args.rate)
    print(f"Lipschitz constant of 0.3·P at x̃: {result['lipschitz of 0.3·P at x̃']:.2f}")
    for row in result["rows"]:
        print("  ".join(f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in row.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
