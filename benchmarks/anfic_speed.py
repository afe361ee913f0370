"""CPU encode/decode time of the ANFIC family minis: ANFIC (serial 5x5 AR context), M-ANFIC and MS-ANFIC.

Usage (1 thread, one Kodak image, 768x512)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/anfic_speed.py [--image data/kodak/kodim01.png]

Models without shipped weights run untrained (said in the table): the timing is then the real work of each
path (for M-/MS-ANFIC encoding includes the RD mask search, one estimation pass per level plus one), but
bytes/bpp and the mask choice are not meaningful. Each row also checks that decode == the encoder's reconstruction.
"""

from __future__ import annotations

import torch
from _common import best_time, run_one_image  # benchmarks/ is on sys.path when run as a script

from invlab.io.images import pad_to_multiple
from invlab.models import count_parameters
from invlab.weights import has_weights, load_model


def _entropy_model(model) -> str:
    if hasattr(model, "context_label"):
        return model.context_label
    return f"{model.num_levels} levels, {model.granularity} px quadtree, RDO {model.rdo!r}"


@torch.no_grad()
def bench(name: str, x: torch.Tensor, repeats: int) -> dict:
    trained = has_weights(name)
    model = load_model(name, pretrained=trained)
    x_pad, _ = pad_to_multiple(x, model.pad_multiple)
    t_enc, enc = best_time(lambda: model.compress(x_pad), repeats)
    t_dec, dec = best_time(lambda: model.decompress(enc["strings"], enc["shape"]), repeats)
    depth_map = enc.get("depth_map")
    n_bytes = sum(len(s) for s in enc["strings"])
    row = {
        "model": name,
        "entropy model": _entropy_model(model),
        "weights": "trained" if trained else "untrained",
        "params (M)": round(count_parameters(model) / 1e6, 3),
        "encode (s)": round(t_enc, 3),
        "decode (s)": round(t_dec, 3),
        "bpp": round(8 * n_bytes / (x.shape[-2] * x.shape[-1]), 3),
        "blocks per level": "-"
        if depth_map is None
        else "/".join(str(int((depth_map == n).sum())) for n in range(model.num_levels)),
        "decode == encoder recon": bool(torch.equal(dec["x_hat"], model.g_s(enc["y_hat"], depth_map))),
    }
    return row


def main() -> None:
    run_one_image(__doc__.splitlines()[0], ["anfic-mini", "manfic-mini", "msanfic-mini"], bench)


if __name__ == "__main__":
    main()
