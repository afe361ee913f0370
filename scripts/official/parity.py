"""How closely converted official weights reproduce the official code's numbers (the fixtures in
tests/fixtures/official): the largest differences of latents, likelihoods and reconstructions, and the estimated
bits on both sides. The tests hold these to 1e-5 / 1e-5 / 1e-4; this prints the measured values.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/official/parity.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from official_fixtures import converted_model  # noqa: E402


def _bits(likelihoods: torch.Tensor) -> float:
    return float(-torch.log2(likelihoods.double()).sum())


@torch.no_grad()
def invcompress(name: str) -> list[str]:
    fixture, model = converted_model("invcompress", name)
    x = fixture["x"].permute(2, 0, 1)[None].float() / 255
    y, y_hat = model.g_a(x), torch.round(fixture["y"])
    hyper = model.latent_codec.latent_codec["hyper"](fixture["y"])
    codec = model.latent_codec.latent_codec["y"]
    params = torch.cat([hyper["params"], codec.context_prediction(y_hat)], dim=1)
    scales, means = codec.entropy_parameters(params).chunk(2, 1)
    ours = {"y": codec.gaussian_conditional(fixture["y"], scales, means=means)[1], "z": hyper["likelihoods"]["z"]}
    theirs = fixture["likelihoods"]
    lik = max(float((ours[k] - theirs[k]).abs().max()) for k in ours)
    bits = (sum(_bits(v) for v in ours.values()), sum(_bits(v) for v in theirs.values()))
    rec = float((model.g_s(y_hat) - fixture["x_hat"]).abs().max())
    return [f"| {name} | - | {float((y - fixture['y']).abs().max()):.1e} | {lik:.1e} | {bits[0]:.2f} / {bits[1]:.2f} | "
            f"{rec:.1e} |"]


@torch.no_grad()
def msinn(name: str) -> list[str]:
    fixture, model = converted_model("msinn", name)
    x = fixture["x"].permute(2, 0, 1)[None].float() / 255
    latent = max(float((a - b).abs().max()) for a, b in zip(model.flow(x), fixture["y"], strict=True))
    rows = []
    for rate in fixture["rates"]:
        out, theirs = model(x, torch.tensor([float(rate)])), fixture["outputs"][rate]
        pairs = [(out["likelihoods"][f"y{5 - s}"], theirs["likelihoods"][f"y{s}"]) for s in range(5)]
        lik = max(float((a - b).abs().max()) for a, b in pairs)
        bits = (sum(_bits(a) for a, _ in pairs), sum(_bits(b) for _, b in pairs))
        rec = float((out["x_hat"] - theirs["x_hat"]).abs().max())
        rows.append(f"| {name} | {rate} | {latent:.1e} | {lik:.1e} | {bits[0]:.2f} / {bits[1]:.2f} | {rec:.1e} |")
    return rows


@torch.no_grad()
def anfic(name: str) -> list[str]:
    """Latent z2 (before rounding), the likelihoods of round(z2) and of the hyper-latent, the official
    ``estimate_bpp`` bits, x_hat with QE."""
    fixture, model = converted_model("anfic", name)
    x = fixture["x"].permute(2, 0, 1)[None].float() / 255
    latent = float((model._analyse(x, None)[1] - fixture["y"]).abs().max())
    out = model(x)
    lik = max(float((out["likelihoods"][k] - v).abs().max()) for k, v in fixture["likelihoods"].items())
    bits = (sum(_bits(v) for v in out["likelihoods"].values()), sum(fixture["bits"].values()))
    rec = float((out["x_hat"] - fixture["x_hat"]).abs().max())
    return [f"| {name} | - | {latent:.1e} | {lik:.1e} | {bits[0]:.2f} / {bits[1]:.2f} | {rec:.1e} |"]


def main() -> None:
    print("| fixture | rate | latents, max diff | likelihoods, max diff | estimated bits (invlab / official) | "
          "reconstruction, max diff |")
    print("|---|---|---|---|---|---|")
    for row in [*invcompress("invcompress-N128.pt"), *invcompress("invcompress-N192.pt"),
                *msinn("msinn-12.pt"), *msinn("msinn-8-postnet.pt"), *anfic("anfic.pt")]:
        print(row)


if __name__ == "__main__":
    main()
