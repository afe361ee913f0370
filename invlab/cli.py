"""The ``invlab`` command line: encode, decode, info, models, and the subcommands of other modules.

Subcommands living in other modules are imported lazily (``_EXTERNAL``); each such module defines
``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from invlab.errors import InvlabError

# name -> (module, one-line help)
_EXTERNAL = {
    "rd": ("invlab.eval.rd", "sweep codecs over a data set and write RD results + a BD table"),
    "train": ("invlab.train.cli", "train a registered model (resumable)"),
    "reencode": ("invlab.eval.reencode", "re-encoding (generation loss) study"),
    "evaluate": ("invlab.eval.evaluate", "Kodak RD of a learned model from real bitstreams"),
    "report": ("invlab.eval.report", "regenerate the README results table from results/"),
    "masks": ("invlab.widgets.masks", "figures of the masks M-ANFIC / MS-ANFIC choose (where bits go, per level)"),
}


def _cmd_encode(args: argparse.Namespace) -> int:
    from invlab.codecs.learned import LearnedCodec
    from invlab.io.container import write_bytes
    from invlab.io.images import load_image

    image = load_image(args.input, max_pixels=args.max_pixels)
    codec = LearnedCodec(args.model, pretrained=not args.untrained)
    if not codec.trained:
        print(f"warning: {args.model} has no trained weights here; using the untrained demo model", file=sys.stderr)
    t0 = time.perf_counter()
    data = codec.encode_image(image, args.rate)
    secs = time.perf_counter() - t0
    write_bytes(args.output, data, overwrite=args.force)
    bpp = 8 * len(data) / (image.height * image.width)
    print(f"{args.output}: {len(data)} bytes, {bpp:.4f} bpp, {image.width}x{image.height} {image.mode}, "
          f"model {args.model} rate {args.rate}, {secs:.2f} s")
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from invlab.codecs.learned import LearnedCodec
    from invlab.io.container import InvlabFile
    from invlab.io.images import save_image

    data = Path(args.input).read_bytes()
    header = InvlabFile.from_bytes(data)
    if Path(args.output).exists() and not args.force:
        raise InvlabError(f"{args.output} exists; refusing to overwrite it (use --force)")
    codec = LearnedCodec(header.model, pretrained=not args.untrained)
    t0 = time.perf_counter()
    image = codec.decode_image(data)
    secs = time.perf_counter() - t0
    save_image(args.output, image, overwrite=args.force)
    print(f"{args.output}: {image.width}x{image.height} {image.mode} ({image.bitdepth}-bit), "
          f"decoded with {header.model} in {secs:.2f} s")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from invlab.io.container import InvlabFile

    data = Path(args.input).read_bytes()
    f = InvlabFile.from_bytes(data)
    bpp = 8 * len(data) / (f.height * f.width)
    print(f"file        {args.input} ({len(data)} bytes, {bpp:.4f} bpp)")
    print(f"model       {f.model} (weights {f.weights_hash.hex()})")
    print(f"image       {f.width}x{f.height} {f.mode}, {f.bitdepth}-bit input")
    print(f"rate        {f.rate}")
    print(f"streams     {len(f.streams)}: {', '.join(str(len(s)) for s in f.streams)} bytes")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from invlab.models import count_parameters, create_model, get_spec, list_models
    from invlab.weights import has_weights

    for name in list_models():
        spec = get_spec(name)
        line = f"{name:22s} {spec.family:12s} {'trained' if has_weights(name) else 'no weights':11s}"
        if args.params:
            line += f" {count_parameters(create_model(name)) / 1e6:7.2f} M"
        print(f"{line}  {spec.description}")
    return 0


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; lazy subcommand modules are imported only when ``argv`` names them (or asks for help)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="invlab", description="Learned image compression with invertible transforms.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("encode", help="compress an image into an invlab file")
    p.add_argument("input", help="image file (PNG, JPEG, WebP, TIFF; 8/16-bit; RGB, grayscale, RGBA)")
    p.add_argument("output", help="invlab file to write")
    p.add_argument("--model", default="msinn-mini", help="registered model name (see `invlab models`)")
    p.add_argument("--rate", type=float, default=None,
                   help="rate setting: a real in the model's range (variable-rate) or a weight index")
    p.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    p.add_argument("--untrained", action="store_true", help="use the untrained demo model (no weights needed)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, help="refuse larger images (memory guard)")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decompress an invlab file into an image")
    p.add_argument("input")
    p.add_argument("output", help="image to write (.png keeps 16-bit inputs at 16 bits)")
    p.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    p.add_argument("--untrained", action="store_true", help="the file was made with --untrained")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("info", help="show an invlab file's header")
    p.add_argument("input")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("models", help="list registered models")
    p.add_argument("--params", action="store_true", help="also count parameters (builds each model)")
    p.set_defaults(func=_cmd_models)

    for name, (module, help_text) in _EXTERNAL.items():
        if argv and argv[0] != name and argv[0] not in ("-h", "--help"):
            sub.add_parser(name, help=help_text)  # not the chosen command: skip the import
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith("invlab"):
                continue  # that part of invlab is not built yet
            raise
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip().split("\n")[0])
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if getattr(args, "rate", 0) is None and args.command == "encode":
        from invlab.models import create_model

        args.rate = create_model(args.model).check_rate(None)
    try:
        return int(args.func(args) or 0)
    except InvlabError as err:
        print(f"invlab: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"invlab: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
