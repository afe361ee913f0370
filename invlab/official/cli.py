"""Convert a seed paper's official checkpoint into an invlab weight file (invlab convert-official FAMILY CKPT OUT.pt).

invlab downloads nothing: get the checkpoint from the official repository (docs/models.md names them), convert it
once, then code with it like any weight file (invlab encode IN.png OUT.invl --model invcompress --weights OUT.pt).
The checkpoint is read without running code; a tensor left over or missing is an error. The metadata beside
OUT.pt (OUT.json) names the source file's SHA-256 and says that these are official weights, not trained here.
"""

from __future__ import annotations

import argparse

from invlab.official import CONVERTERS, convert_checkpoint


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "\n".join(__doc__.split("\n\n")[1:]).strip()
    parser.add_argument("family", choices=sorted(CONVERTERS), help="which paper's code made the checkpoint")
    parser.add_argument("checkpoint", help="the official checkpoint file (as the repository links it)")
    parser.add_argument("output", help="invlab weight file to write (.pt; its metadata goes beside it as .json)")
    parser.add_argument("--quality", type=int, default=None,
                        help="invcompress: the checkpoint's quality 1-8 (names its λ in the config and metadata)")
    parser.add_argument("--force", action="store_true", help="overwrite OUT.pt / OUT.json if they exist")


def run(args: argparse.Namespace) -> int:
    from invlab.weights import read_metadata

    options = {"quality": args.quality} if args.family == "invcompress" else {}
    out = convert_checkpoint(args.family, args.checkpoint, args.output, overwrite=args.force, **options)
    meta = read_metadata(out)
    sha = meta["official"]["sha256"][:16]
    print(f"{out}: {meta['model']} {meta['config']}, from {args.checkpoint} (sha256 {sha}…); "
          f"code with it: invlab encode IN.png OUT.invl --model {meta['model']} --weights {out}")
    return 0
