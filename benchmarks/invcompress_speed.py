"""CPU encode/decode time of InvCompress for both entropy-context paths (serial AR vs checkerboard).

Usage (1 thread, one Kodak image, 768x512)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/invcompress_speed.py [--image data/kodak/kodim01.png]

Models without shipped weights run untrained (said in the table); the timing is then the real work of
each path, but bytes/bpp are not meaningful. Each row also checks that decode == the encoder's reconstruction.
"""

from __future__ import annotations

import torch
from _common import best_time, run_one_image, time_coding  # benchmarks/ is on sys.path when run as a script


@torch.no_grad()
def bench(name: str, x: torch.Tensor, repeats: int) -> dict:
    run = time_coding(name, x, repeats)
    t_fwd, _ = best_time(lambda: run.model(run.x), repeats)
    return {
        **run.row(name, x.shape[-2] * x.shape[-1]),
        "context": run.model.context_label,
        "eval forward (s)": round(t_fwd, 3),
        "decode == encoder recon": bool(torch.equal(run.dec["x_hat"], run.model.g_s(run.enc["y_hat"]).clamp(0, 1))),
    }


def main() -> None:
    run_one_image(__doc__.splitlines()[0], ["invcompress-mini", "invcompress-mini-cb"], bench)


if __name__ == "__main__":
    main()
