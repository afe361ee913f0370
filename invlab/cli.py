"""The ``invlab`` command line: encode, decode, info, models, and the subcommands of other modules.

Subcommands living in other modules are imported lazily (``_EXTERNAL``); each such module defines
``add_arguments(parser)`` and ``run(args) -> int``. ``--help``, ``models`` and ``info`` import neither torch
nor any codec library: the model and codec tables they need are plain data (``invlab.models.registry``,
``invlab.codecs.registry``); encode and decode import what the chosen codec needs.

Learned models and classical codecs share one name space (``--model``). A classical codec's output is
wrapped in an invlab file like a learned model's (the codec's own bitstream as its stream, about 40 bytes
of header), so ``decode`` and ``info`` read both.

Every user error ends in one line on stderr, ``invlab: error: ...``, and exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from invlab.codecs.registry import CLASSICAL_RATES, classical_rate_space, rate_space_of
from invlab.errors import BitstreamError, CorruptBitstreamError, InvlabError, MissingWeightsError, OutputExistsError
from invlab.io.container import MAX_PIXELS  # one pixel limit for encoding and decoding

if TYPE_CHECKING:
    from invlab.rates import RateSpace

# name -> (module, one-line help)
_EXTERNAL = {
    "rd": ("invlab.eval.rd", "sweep codecs over a data set and write RD results + a BD table"),
    "train": ("invlab.train.cli", "train a registered model (resumable)"),
    "reencode": ("invlab.eval.reencode", "re-encoding (generation loss) study"),
    "drift": ("invlab.eval.drift", "why a variable-rate model drifts under re-encoding: each cause switched off"),
    "evaluate": ("invlab.eval.evaluate", "Kodak RD of a learned model from real bitstreams"),
    "report": ("invlab.eval.report", "regenerate the results table (docs/results.md) from results/"),
    "masks": ("invlab.widgets.masks", "figures of the masks M-ANFIC / MS-ANFIC choose (where bits go, per level)"),
    "convert-official": ("invlab.official.cli", "a seed paper's official checkpoint as an invlab weight file"),
}

DEFAULT_MODEL = "msinn-mini"
_NO_WEIGHTS = bytes(8)  # the weights hash field of a classical codec's invlab file


class CliError(InvlabError):
    """A mistake in the command line (a name, a number, a path), said in the user's words."""


# ---------------------------------------------------------------------- checks shared by the commands
def _input_file(path: str, what: str) -> Path:
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{path} is a directory; give {what}")
    if not p.exists():
        raise CliError(f"{path}: no such file")
    return p


def _output_file(path: str, force: bool) -> Path:
    """Refuse a bad output path before any work is done (in particular before a model is loaded)."""
    p = Path(path)
    if p.is_dir():
        raise CliError(f"{path} is a directory; give a file name to write")
    if p.exists() and not force:
        raise CliError(f"{path} exists; refusing to overwrite it (use --force to replace it)")
    if not p.parent.is_dir():
        raise CliError(f"cannot write {path}: folder {p.parent} does not exist")
    return p


def _model_names() -> list[str]:
    from invlab.models import list_models

    return list_models()


def _check_codec_name(name: str) -> str:
    """``"classical"``, ``"compressai"`` or ``"learned"``; any other name is refused with the known names."""
    from invlab.codecs.registry import codec_kind
    from invlab.errors import UnknownCodecError

    try:
        return codec_kind(name)
    except UnknownCodecError as err:
        raise CliError(str(err)) from None


def _rate_pair(text: str) -> tuple[float, float]:
    """``"LOW,HIGH"`` -> (low, high) for ``--map-range``."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two rates), got {text!r}") from None
    return low, high


def _fmt(value: float) -> str:
    return f"{value:g}"


def _checked_rate(name: str, rate: float | None, untrained: bool = False, space: RateSpace | None = None) -> float:
    """``--rate`` checked against the codec's rate space (None -> its default), before anything is loaded (``space``:
    the rate space of a codec already loaded, e.g. from the user's weight file)."""
    from invlab.rates import RateError

    space = space or rate_space_of(name, pretrained=not untrained)
    try:
        return space.check(rate)
    except RateError:
        kind = {True: "a variable-rate model", False: "a fixed-rate family"}
        what = "" if classical_rate_space(name) else f" ({kind[space.continuous]})"
        raise CliError(f"--rate for {name}{what} is its {space.label}, {space.describe()}; got {_fmt(rate)}") from None


def _learned_codec(name: str, untrained: bool, weights: str | Path | None = None):
    """The codec of a learned model (its shipped weights, or ``weights``: the user's file for it), or of
    ``compressai:ARCH`` (``weights``: its checkpoint)."""
    from invlab.codecs.learned import LearnedCodec

    if _check_codec_name(name) == "compressai":
        from invlab.codecs.compressai_ckpt import compressai_codec

        return compressai_codec(name, weights)

    try:
        return LearnedCodec(name, pretrained=not untrained, weights=weights)
    except MissingWeightsError as err:  # the library's wording names its keyword; say the CLI's flag
        raise MissingWeightsError(str(err).replace("pass pretrained=False / --untrained", "pass --untrained")) from None


# ---------------------------------------------------------------------- classical codecs in an invlab file
def _encode_classical(codec, image, rate: float, source: Path) -> bytes:
    from invlab.io.container import InvlabFile

    name = codec.name
    try:
        streams = [codec.encode(image.rgb, rate)]
    except InvlabError:
        raise
    except Exception as err:  # the codec library's own error (e.g. an image too small for it)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise InvlabError(f"{name} could not encode {source}: {reason}") from None
    meta = {"classical": True}
    if image.alpha is not None:  # as a learned codec does: lossless alpha beside the colour
        streams.append(zlib.compress(image.alpha.tobytes(), 9))
        meta["alpha"] = True
    return InvlabFile(model=name, weights_hash=_NO_WEIGHTS, height=image.height, width=image.width,
                      mode=image.mode, bitdepth=image.bitdepth, rate=float(rate), streams=streams, meta=meta).to_bytes()


def _classical_decoder(f):
    from invlab.codecs.registry import get_codec

    if classical_rate_space(f.model) is None:
        raise BitstreamError(f"the file names an unknown classical codec {f.model!r}")
    return get_codec(f.model)


def _decode_classical(f, codec):
    import numpy as np

    from invlab.io.images import ImageData

    expected = 2 if f.meta.get("alpha") else 1
    if len(f.streams) != expected:
        raise CorruptBitstreamError(f"a {f.model} invlab file holds {expected} stream(s), this one {len(f.streams)}")
    try:
        rgb = codec.decode(f.streams[0])
    except InvlabError:
        raise
    except Exception as err:
        raise CorruptBitstreamError(f"cannot decode the {f.model} stream: {err}") from None
    if rgb.shape != (f.height, f.width, 3):
        raise CorruptBitstreamError(f"the {f.model} stream decodes to {rgb.shape[1]}x{rgb.shape[0]}, "
                                    f"the header says {f.width}x{f.height}")
    alpha = None
    if f.meta.get("alpha"):
        try:
            alpha = np.frombuffer(zlib.decompress(f.streams[1]), np.uint8).reshape(f.height, f.width).copy()
        except (zlib.error, ValueError) as err:
            raise CorruptBitstreamError(f"alpha stream is corrupt: {err}") from None
    return ImageData(np.ascontiguousarray(rgb), f.mode, f.bitdepth, alpha)


def _is_classical_file(f) -> bool:
    return bool(f.meta.get("classical"))


# ---------------------------------------------------------------------- commands
def _cmd_encode(args: argparse.Namespace) -> int:
    source = _input_file(args.input, "an image file")
    output = _output_file(args.output, args.force)
    kind = _check_codec_name(args.model)
    if args.stable:
        if kind != "learned":
            raise CliError(f"--stable is a mode of a learned model; {args.model} has none")
        from invlab.codecs.registry import STABLE_SUFFIX, check_stable_mode, split_weights

        check_stable_mode(split_weights(args.model)[0])
        args.model += STABLE_SUFFIX
    if args.weights and args.untrained:
        raise CliError("--weights and --untrained exclude each other")
    if args.weights and kind != "learned":
        raise CliError(f"--weights names a weight file of a learned model; {args.model} takes none"
                       + (" (write compressai:ARCH@CHECKPOINT)" if kind == "compressai" else ""))
    if (args.roi or args.rate_map) and kind != "learned":
        raise CliError(f"--roi and --rate-map need a learned model that takes a rate map; {args.model} does not")
    # before the image is read or a model loaded; a weight file of the user's says its own rates (loaded first)
    codec = None
    if args.weights:
        codec = _learned_codec(args.model, args.untrained, _input_file(args.weights, "a weight file"))
    rate = _checked_rate(args.model, args.rate, args.untrained, space=codec.rate_space if codec else None)

    from invlab.io.container import write_bytes
    from invlab.io.images import load_image

    image = load_image(source, max_pixels=args.max_pixels)
    if kind == "classical":
        from invlab.codecs.registry import get_codec

        codec = get_codec(args.model)
        t0 = time.perf_counter()
        data = _encode_classical(codec, image, rate, source)
        secs = time.perf_counter() - t0
        what = f"{args.model} {codec.rate_label} {_fmt(rate)}"
    else:
        codec = codec or _learned_codec(args.model, args.untrained)
        if not codec.trained:
            print(f"warning: {args.model} has no trained weights here; using the untrained demo model",
                  file=sys.stderr)
        rate_map, levels = _where_the_bits_go(args, codec, image, rate)
        t0 = time.perf_counter()
        data = codec.encode_image(image, rate, rate_map, levels)
        secs = time.perf_counter() - t0
        what = f"model {args.model} rate {_fmt(rate)}"
        if rate_map is not None and rate_map.uniform_rate is None:
            summary = rate_map.summary()
            what += f", rate map {_fmt(summary['min'])}–{_fmt(summary['max'])} (mean {_fmt(summary['mean'])})"
        if levels is not None:
            what += f", {int((levels >= 0).sum())} blocks at the levels asked for"
    write_bytes(output, data, overwrite=args.force)
    bpp = 8 * len(data) / (image.height * image.width)
    print(f"{output}: {len(data)} bytes, {bpp:.4f} bpp, {image.width}x{image.height} {image.mode}, "
          f"{what}, {secs:.2f} s")
    return 0


def _where_the_bits_go(args: argparse.Namespace, codec, image, rate: float):
    """(rate map, forced levels) that ``--rate-map`` / ``--roi`` ask for, checked against the image and the model:
    a rate per 16x16 block (MSINN), or the quadtree level of the blocks an ROI touches (M-ANFIC, MS-ANFIC)."""
    if not args.roi and not args.rate_map:
        return None, None
    from invlab.io.images import load_image
    from invlab.rate_map import RateMap, forced_levels, parse_roi

    model = codec.model(rate)
    rois = [parse_roi(text) for text in args.roi or []]
    if model.forced_levels and not args.rate_map:
        padded = tuple(-(-v // model.pad_multiple) * model.pad_multiple for v in (image.height, image.width))
        return None, forced_levels(rois, image.height, image.width, model.granularity, padded, model.num_levels)
    if not model.rate_maps:
        raise CliError(f"{args.model} codes one rate per image; --roi needs a model that takes a rate map (msinn-mini, "
                       "msinn-mini-12, msinn) or quadtree levels (manfic-mini, msanfic-mini: --roi X,Y,W,H:LEVEL), "
                       "--rate-map the former")
    if args.rate_map:
        space = codec.rate_space
        low, high = (space.low, space.high) if args.map_range is None else args.map_range
        picture = load_image(_input_file(args.rate_map, "a grey picture")).rgb
        rate_map = RateMap.from_picture(picture, image.height, image.width, low, high)
    else:
        rate_map = RateMap.uniform(image.height, image.width, rate)
    rate_map = rate_map.with_rois(rois, image.height, image.width)
    rate_map.check(codec.rate_space, image.height, image.width, f"{args.model}: ")
    return rate_map, None


def _cmd_decode(args: argparse.Namespace) -> int:
    source = _input_file(args.input, "an invlab file")
    output = _output_file(args.output, args.force)
    from invlab.io.container import InvlabFile

    data = source.read_bytes()
    header = InvlabFile.from_bytes(data, max_pixels=args.max_pixels)
    if header.bitdepth == 16 and output.suffix.lower() != ".png":
        raise CliError(f"{source} holds a 16-bit image; name the output .png (other formats have 8 bits)")
    if _is_classical_file(header):
        codec = _classical_decoder(header)
        t0 = time.perf_counter()
        image = _decode_classical(header, codec)
        by = f"{header.model} ({classical_rate_space(header.model).label} {_fmt(header.rate)})"
    else:
        from invlab.codecs.learned import check_header_model
        from invlab.codecs.registry import codec_kind
        from invlab.errors import UnknownCodecError

        try:
            codec_kind(check_header_model(header.model))
        except UnknownCodecError:
            raise CliError(f"{source} was made by model {header.model[:64]!r}, which this invlab does not know "
                           f"(see `invlab models`)") from None
        try:
            codec = _learned_codec(header.model, args.untrained, args.weights)
        except MissingWeightsError as err:
            raise MissingWeightsError(f"{err}; a file encoded with --weights FILE decodes with it too") from None
        t0 = time.perf_counter()
        image = codec.decode_image(data, max_pixels=args.max_pixels, keep_mismatch=args.keep_mismatch)
        by = header.model + (" in its stable re-encoding mode" if header.meta.get("options", {}).get("stable") else "")
    secs = time.perf_counter() - t0

    from invlab.io.images import save_image

    try:
        save_image(output, image, overwrite=args.force)
    except OSError as err:
        if err.filename:
            raise
        raise CliError(f"cannot write {output}: {err}") from None  # e.g. Pillow: "cannot write mode RGBA as JPEG"
    check = {(True, None): "bit-identical to the encoder's reconstruction",
             (None, None): "no reconstruction checksum in the file",
             (False, True): "within float rounding of the encoder's reconstruction (the same symbols; this CPU's "
                            "kernels rounded a few pixels the other way)",
             (False, None): "NOT bit-identical to the encoder's reconstruction (another machine's arithmetic?)",
             (False, False): "NOT the encoder's reconstruction, beyond float rounding: kept as asked (--keep-mismatch)"}
    print(f"{output}: {image.width}x{image.height} {image.mode} ({image.bitdepth}-bit), "
          f"decoded with {by} in {secs:.2f} s; {check[image.matches_encoder, image.within_float_rounding]}")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from invlab.io.container import InvlabFile

    source = _input_file(args.input, "an invlab file")
    data = source.read_bytes()
    f = InvlabFile.from_bytes(data, max_pixels=args.max_pixels)
    pixels = f.height * f.width
    bpp = f"{8 * len(data) / pixels:.4f} bpp" if pixels else "no pixels"
    print(f"file        {args.input} ({len(data)} bytes, {bpp})")
    if _is_classical_file(f):
        knob = classical_rate_space(f.model)
        print(f"codec       {f.model} (classical, no weights)")
        print(f"rate        {_fmt(f.rate)}" + (f" ({knob.label})" if knob else ""))
    else:
        print(f"model       {f.model} (weights {f.weights_hash.hex()})")
        print(f"rate        {_fmt(f.rate)}")
        options = f.meta.get("options", {})
        if isinstance(options, dict) and options:
            print("options     " + ", ".join(f"{k} {v}" for k, v in options.items())
                  + (" (the stable re-encoding mode)" if options.get("stable") is True else ""))
    print(f"image       {f.width}x{f.height} {f.mode}, {f.bitdepth}-bit input")
    print(f"streams     {len(f.streams)}: {', '.join(str(len(s)) for s in f.streams)} bytes")
    if f.meta.get("rate_map") is True and len(f.streams) >= 2:
        from invlab.rate_map import RateMap

        stream = f.streams[-2 if f.meta.get("alpha") else -1]
        summary = RateMap.from_bytes(stream, *RateMap.grid(f.height, f.width)).summary()
        cols, rows = summary["blocks"]
        print(f"rate map    {cols}x{rows} blocks of {summary['block']} px, rates {_fmt(summary['min'])}–"
              f"{_fmt(summary['max'])} (mean {_fmt(summary['mean'])}; shares {summary['shares']}), "
              f"{len(stream)} bytes")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from invlab.models import get_spec, list_models
    from invlab.weights import has_weights

    for name in list_models():
        spec = get_spec(name)
        rate = spec.rate_kind
        line = f"{name:25s} {spec.family:12s} {rate:8s} {'trained' if has_weights(name) else 'no weights':10s}"
        if args.params:
            from invlab.models import count_parameters, create_model

            line += f" {count_parameters(create_model(name)) / 1e6:7.2f} M"
        print(f"{line}  {spec.description}")
    print()
    print("classical codecs (same --model option; no weights):")
    for name, knob in CLASSICAL_RATES.items():
        print(f"{name:25s} {knob.label} {_fmt(knob.low)}-{_fmt(knob.high)}, default {_fmt(knob.default)} "
              f"({knob.note})")
    return 0


# ---------------------------------------------------------------------- parser
_ENCODE_EPILOG = """\
what --rate means depends on the codec:
  variable-rate learned models ({variable}): a real number in the model's range,
      [0, number of trained rate points - 1], fractional values included; default: the middle
  fixed-rate learned families ({fixed}): a weight index, 0, 1, 2, ...
      (one trained weight file NAME-q<index>.pt each); default: the first shipped index
  classical codecs: the codec's own knob, a number in its range:
{classical}
`invlab models` lists every name with its kind; a wrong --rate is refused with the valid range.
"""


def _encode_epilog() -> str:
    from invlab.models.registry import get_spec

    rows = [f"      {name:9s} {knob.label} {_fmt(knob.low)}-{_fmt(knob.high)} (default {_fmt(knob.default)}; "
            f"{knob.note})" for name, knob in CLASSICAL_RATES.items()]
    specs = [get_spec(name) for name in _model_names()]
    variable = ", ".join(s.name for s in specs if s.variable_rate)
    fixed = ", ".join(sorted({s.family for s in specs if not s.variable_rate}))
    return _ENCODE_EPILOG.format(classical="\n".join(rows), variable=variable, fixed=fixed)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; a lazy subcommand's module is imported only when ``argv`` names that subcommand."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="invlab", description="Learned image compression with invertible transforms.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("encode", help="compress an image into an invlab file (learned model or classical codec)",
                       description="Compress an image with a learned model or a classical codec into an invlab file.",
                       epilog=_encode_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="image file (PNG, JPEG, WebP, TIFF; 8/16-bit; RGB, grayscale, RGBA)")
    p.add_argument("output", help="invlab file to write")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"a learned model or a classical codec, by name (see `invlab models`; default "
                        f"{DEFAULT_MODEL}), or compressai:ARCH@CHECKPOINT for a CompressAI network with your weights")
    p.add_argument("--rate", type=float, default=None,
                   help="rate setting: a real in the model's range (variable-rate models), a weight index "
                        "(fixed-rate families), quality / QP / distance (classical codecs; see below)")
    p.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    p.add_argument("--untrained", action="store_true", help="use the untrained demo model (no weights needed)")
    p.add_argument("--weights", help="a weight file of the learned model to use instead of the shipped ones (e.g. "
                                     "converted official weights); read without running code, refused if it does "
                                     "not fit the model")
    p.add_argument("--roi", action="append", metavar="X,Y,W,H:RATE",
                   help="code the rectangle at X,Y (pixels, top left) of W x H at RATE, the rest at --rate (or the "
                        "--rate-map); repeat for several (later ones win); models with rate maps (MSINN). For "
                        "manfic-mini / msanfic-mini the number is a quadtree level (0 = finest) for the blocks the "
                        "rectangle touches; the RD search chooses the others")
    p.add_argument("--rate-map", metavar="PICTURE",
                   help="a grey picture of the image's size: each 16x16 block's mean level sets its rate, black the "
                        "lowest, white the highest (--map-range); models with rate maps (MSINN)")
    p.add_argument("--map-range", type=_rate_pair, metavar="LOW,HIGH",
                   help="the rates of black and white in --rate-map (default: the model's whole range)")
    p.add_argument("--stable", action="store_true",
                   help="code in the model's stable re-encoding mode (MSINN models; also --model NAME+stable): "
                        "encoding the decoded picture again gives it back, at some quality lost in the first "
                        "generation (the decoder leaves out what breaks the inverse)")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="refuse larger images (memory guard)")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decompress an invlab file into an image",
                       description="Decompress an invlab file (any learned model or classical codec) into an image.")
    p.add_argument("input", help="invlab file written by `invlab encode`")
    p.add_argument("output", help="image to write (.png keeps 16-bit inputs at 16 bits)")
    p.add_argument("--force", action="store_true", help="overwrite the output if it exists")
    p.add_argument("--untrained", action="store_true", help="the file was made with --untrained")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                   help="refuse files announcing a larger image (memory guard; default 40 MP)")
    p.add_argument("--weights", help="the weight file the invlab file was encoded with, where it was not a shipped "
                                     "one (`encode --weights`; compressai:ARCH: its checkpoint)")
    p.add_argument("--keep-mismatch", action="store_true",
                   help="write the picture even where it is not the encoder's beyond float rounding (by default "
                        "that is an error, exit 2: the symbols decoded but the synthesis differs)")
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("info", help="show an invlab file's header")
    p.add_argument("input")
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, help="refuse files announcing a larger image")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("models", help="list learned models (and the classical codecs)")
    p.add_argument("--params", action="store_true", help="also count parameters (builds each model)")
    p.set_defaults(func=_cmd_models)

    for name, (module, help_text) in _EXTERNAL.items():
        if not argv or argv[0] != name:
            sub.add_parser(name, help=help_text)  # not the chosen command: skip the import
            continue
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip().split("\n")[0])
        mod.add_arguments(p)
        p.set_defaults(func=mod.run)
    return parser


def _one_line(err: BaseException) -> str:
    """The message of a user error, on one line, in the CLI's words."""
    if isinstance(err, OSError) and not isinstance(err, InvlabError):
        where = f"{err.filename}: " if err.filename else ""
        reason = {FileNotFoundError: "no such file or folder", IsADirectoryError: "is a directory",
                  PermissionError: "permission denied"}.get(type(err), err.strerror or str(err))
        text = f"{where}{reason}"
    else:
        text = str(err) or type(err).__name__
    if isinstance(err, OutputExistsError):
        text = text.replace("(use --force / overwrite=True)", "(use --force to replace it)")
    return " ".join(text.split())


def _negative_rates(argv: list[str]) -> list[str]:
    """``--rate -1`` / ``--rate -inf`` -> ``--rate=-1``: argparse would read ``-inf`` as an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--rate" and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            try:
                float(argv[i + 1])
            except ValueError:
                pass
            else:
                out.append(f"--rate={argv[i + 1]}")
                i += 2
                continue
        out.append(argv[i])
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    argv = _negative_rates(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InvlabError, OSError) as err:
        print(f"invlab: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("invlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
