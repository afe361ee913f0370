"""CPU encode/decode time of the ANFIC family minis: ANFIC (serial 5x5 AR context), M-ANFIC and MS-ANFIC.

Usage (1 thread, one Kodak image, 768x512)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/anfic_speed.py [--image data/kodak/kodim01.png]

Models without shipped weights run untrained (said in the table): the timing is then the real work of each
path (for M-/MS-ANFIC encoding includes the RD mask search, one estimation pass per level plus one), but
bytes/bpp and the mask choice are not meaningful. Each row also checks that decode == the encoder's reconstruction.
"""

from __future__ import annotations

import torch
from _common import run_one_image, time_coding  # benchmarks/ is on sys.path when run as a script


def _entropy_model(model) -> str:
    if hasattr(model, "context_label"):
        return model.context_label
    return f"{model.num_levels} levels, {model.granularity} px quadtree, RDO {model.rdo!r}"


@torch.no_grad()
def bench(name: str, x: torch.Tensor, repeats: int) -> dict:
    run = time_coding(name, x, repeats)
    model, enc, depth_map = run.model, run.enc, run.enc.get("depth_map")
    blocks = "-" if depth_map is None else "/".join(str(int((depth_map == n).sum())) for n in range(model.num_levels))
    return {
        **run.row(name, x.shape[-2] * x.shape[-1]),
        "entropy model": _entropy_model(model),
        "blocks per level": blocks,
        "decode == encoder recon": bool(torch.equal(run.dec["x_hat"], model.g_s(enc["y_hat"], depth_map))),
    }


def main() -> None:
    run_one_image(__doc__.splitlines()[0], ["anfic-mini", "manfic-mini", "msanfic-mini"], bench)


if __name__ == "__main__":
    main()
