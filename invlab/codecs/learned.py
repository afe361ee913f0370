"""Learned codecs: an invlab model + the invlab file container, behind the :class:`Codec` interface.

Device policy: coding runs on the CPU in fp32 by default. Entropy parameters (scale indices) must be
bit-identical at encoder and decoder; a stream compressed on a GPU and decompressed on a CPU was
measured to decode to NaN, so ``device`` is recorded nowhere in the file and both sides should use the
same kind of device (the default, CPU, is always safe).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from invlab.codecs.base import Codec
from invlab.codecs.registry import (
    STABLE_SUFFIX,
    check_stable_mode,
    rate_space_of,
    split_stable,
    split_weights,
    weights_label,
)
from invlab.errors import (
    BitstreamError,
    CorruptBitstreamError,
    InvalidHeaderError,
    InvlabError,
    ModelMismatchError,
    ReconstructionMismatchError,
)
from invlab.io.container import MAX_PIXELS, InvlabFile
from invlab.io.images import ImageData, to_tensor, to_uint8
from invlab.io.reconstruction import output_crc, sketch, within_float_rounding
from invlab.models.base import InvlabModel
from invlab.models.registry import model_class
from invlab.rate_map import BLOCK, RateMap, RateMapError
from invlab.rates import RateError, RateSpace
from invlab.weights import has_weights, load_model, ships_per_rate


class LearnedCodec(Codec):
    """Code images with a registered model family.

    A variable-rate model takes any ``rate`` in its range (one set of weights). A fixed-rate family
    ships one set of weights per rate index; ``rate`` then picks the index (0, 1, 2, ...). ``rate_space``
    (from the model's spec and the weight files shipped) checks a user's rate; ``encode`` checks it too,
    since a file must never carry a rate its decoder would refuse.
    """

    def __init__(self, name: str, pretrained: bool = True, device: str = "cpu", memory_budget_mb: float | None = None,
                 weights: str | Path | None = None, stable: bool = False, **overrides):
        """``overrides``: config changes for the model factory (e.g. ``postnet=None``), applied on loading.

        ``weights``: a weight file of ``name`` to code with instead of the shipped ones (e.g. converted official
        weights; read safely and loaded strictly), also written ``name="MODEL@FILE"``. Its model is the codec's
        only one: a variable-rate file takes the rates of its own anchors, a fixed-rate file codes at rate 0.

        ``stable`` (also written ``name="MODEL+stable"``): code in the model's stable re-encoding mode (see
        ``InvlabModel.stable_mode``); refused for a model without one. Files of either mode decode with either codec.

        ``memory_budget_mb`` (default ``$INVLAB_MEMORY_BUDGET_MB`` or 8192): images whose decoding would need
        more (``model.decode_bytes_per_pixel`` x pixels) are refused at encoding and decoding alike.
        """
        name, stable_name = split_stable(name)
        name, named_file = split_weights(name)
        self.stable = stable or stable_name
        if self.stable:
            check_stable_mode(name)
            overrides["stable"] = True
        if named_file is not None and weights is not None and Path(weights) != named_file:
            raise InvlabError(f"two weight files for {name}: {named_file} (in its name) and {weights}")
        weights = named_file if weights is None else weights
        self.name = name
        self.weights = None if weights is None else Path(weights)
        self.memory_budget_mb = float(memory_budget_mb or os.environ.get("INVLAB_MEMORY_BUDGET_MB", 8192))
        self.pretrained = pretrained
        self.device = torch.device(device)
        self.overrides = dict(overrides)
        self._models: dict[object, InvlabModel] = {}  # per weight index (and float twins)
        self._last_analysis: tuple[InvlabModel, bytes, object] | None = None  # (model, image digest, analysis)
        # a fixed-rate family ships one weight file per rate index (NAME-qI.pt); everything else has one model
        # (an unknown name is refused here, before it becomes part of a path)
        self._per_rate_weights = pretrained and self.weights is None and self._weights_per_rate()
        self.rate_space = self._rate_space()
        self.model(self.rate_space.default)  # load now: a missing weight file is reported here, not mid-sweep

    @property
    def trained(self) -> bool:
        return self.weights is not None or (self.pretrained and has_weights(self.name))

    @property
    def label(self) -> str:
        """The name results go under: ``NAME``, ``NAME@STEM`` with a weight file of the user's (its stem),
        ``NAME-untrained`` for the untrained demo model."""
        if self.weights is not None:
            label = weights_label(self.name, self.weights)
        else:
            label = self.name if self.trained else f"{self.name}-untrained"
        return label + STABLE_SUFFIX if self.stable else label

    def _rate_space(self) -> RateSpace:
        if self.weights is None:
            return rate_space_of(self.name, self.pretrained)
        return self._model_at(None).rate_space  # the file's own model says its rates (e.g. how many anchors)

    def _weights_per_rate(self) -> bool:
        """Whether the trained weights come one file per rate index (``NAME-qI.pt``)."""
        return ships_per_rate(self.name)

    def model(self, rate: float | None = None) -> InvlabModel:
        """The model that codes at ``rate`` (loaded once, cached); without a rate, the default one (the first
        shipped weight index of a fixed-rate family, whichever indices it ships)."""
        return self._model_at(self.rate_space.check(rate, self.name))

    def _model_at(self, rate: float | None) -> InvlabModel:
        """:meth:`model` for a rate already checked: the weight index's file (fixed-rate family with several
        files), else the one model."""
        key = int(rate) if self._per_rate_weights else None
        if key not in self._models:
            model = load_model(self.name, pretrained=self.pretrained, rate_index=key, path=self.weights,
                               **self.overrides)
            self._models[key] = model.to(self.device)
        return self._models[key]

    def _model_for_file(self, rate: float, options: dict) -> InvlabModel:
        """The model that decodes a file coded with ``options``: :meth:`_model_at`, or a twin with the same weights
        where the file was coded another way: on the float path for a file made before the model's exact entropy
        parameters (no ``entropy`` option), in (or out of) the stable re-encoding mode as the file says."""
        model = self._model_at(rate)
        twin: dict[str, object] = {}
        if model.exact_entropy and "entropy" not in options and "entropy" not in self.overrides:
            twin["entropy"] = "float"
        if model.stable_mode and bool(options.get("stable")) != self.stable:
            twin["stable"] = bool(options.get("stable"))
        if not twin:
            return model
        key = (tuple(sorted(twin.items())), int(rate) if self._per_rate_weights else None)
        if key not in self._models:
            loaded = load_model(self.name, pretrained=self.pretrained, rate_index=key[1], path=self.weights,
                                **{**self.overrides, **twin})
            self._models[key] = loaded.to(self.device)
        return self._models[key]

    def max_pixels(self, rate: float) -> int:
        """The largest image this codec codes within its memory budget (and the container's limit)."""
        return self._max_pixels_of(self.model(rate))

    def _max_pixels_of(self, model: InvlabModel) -> int:
        return int(min(MAX_PIXELS, self.memory_budget_mb * 2**20 / model.decode_bytes_per_pixel))

    def _check_pixels(self, height: int, width: int, model: InvlabModel) -> None:
        limit = self._max_pixels_of(model)
        if height * width > limit:
            need = height * width * model.decode_bytes_per_pixel / 2**20
            raise InvalidHeaderError(
                f"a {width}x{height} image needs about {need:.0f} MB of memory to decode with {self.name}, above "
                f"the {self.memory_budget_mb:.0f} MB budget ({limit / 1e6:.1f} MP); raise INVLAB_MEMORY_BUDGET_MB "
                "(or memory_budget_mb=) if the machine has it"
            )

    def model_rate(self, rate: float) -> float | None:
        """What the model's ``compress``/``decompress`` get: the checked rate (variable rate), else None."""
        return self._model_rate_at(self.rate_space.check(rate, self.name))

    def _model_rate_at(self, rate: float) -> float | None:
        return rate if self.rate_space.continuous else None

    # ------------------------------------------------------------------ coding
    @torch.no_grad()
    def encode_image(self, image: ImageData, rate: float, rate_map: RateMap | None = None,
                     levels: np.ndarray | None = None) -> bytes:
        """The file of ``image`` at ``rate``; ``rate_map``: a rate per 16x16 block instead (models with
        ``rate_maps``; the header keeps ``rate``, the map travels in a stream of its own); ``levels``: the
        quadtree level of chosen blocks, -1 elsewhere (models with ``forced_levels``; see
        :func:`invlab.rate_map.forced_levels`)."""
        return self._encode(image, rate, rate_map, levels)[0]

    @torch.no_grad()
    def encode_with_reconstruction(self, rgb: np.ndarray, rate: float,
                                   rate_map: RateMap | None = None) -> tuple[bytes, np.ndarray]:
        """The file, and the RGB image its decoder will produce (computed while encoding; see ``_encode``)."""
        image = ImageData(np.ascontiguousarray(rgb))
        data, x_hat = self._encode(image, rate, rate_map)
        if not torch.isfinite(x_hat).all():
            raise CorruptBitstreamError("the reconstruction has non-finite values")
        return data, to_uint8(x_hat)

    def _encode(self, image: ImageData, rate: float, rate_map: RateMap | None = None,
                levels: np.ndarray | None = None) -> tuple[bytes, torch.Tensor]:
        """The file and the reconstruction (the decoder's output, computed here so that the file can
        carry its checksum: models that reconstruct while encoding give it for free, the others decode the
        streams once in-process)."""
        if rate_map is not None and rate_map.uniform_rate is not None:
            rate, rate_map = rate_map.uniform_rate, None  # a uniform map is the one-rate file
        rate = self.rate_space.check(rate, self.name)  # once: the helpers below take the checked value
        model = self._model_at(rate)
        model_rate = self._model_rate_at(rate)
        self._check_pixels(image.height, image.width, model)
        x = to_tensor(image.rgb).to(self.device)
        x_pad = model.pad(x)
        native = model.reconstructs_at_encoder
        options: dict = {"reconstruct": True} if native else {}
        if model.rate_free_analysis:
            options["analysis"] = self._analysis(model, x_pad)
        mapped = {} if rate_map is None else {
            "rate_map": self.rate_map_tensor(model, rate_map, (image.height, image.width), tuple(x_pad.shape[-2:]))}
        if levels is not None:
            if not model.forced_levels:
                raise RateMapError(f"{self.name} has no quadtree levels to force")
            mapped["forced"] = torch.as_tensor(np.asarray(levels), dtype=torch.long, device=self.device)[None]
        out = model.compress(x_pad, model_rate, **options, **mapped)
        streams = list(out["strings"])
        decode_with = {k: v for k, v in mapped.items() if k == "rate_map"}  # forced levels travel in the streams
        x_hat = out["x_hat"] if native else \
            model.decompress(streams, out["shape"], model_rate, **decode_with)["x_hat"]
        x_hat = model.crop(x_hat, image.height, image.width)
        recon_crc = recon_sketch = None
        if torch.isfinite(x_hat).all():
            rgb = to_uint8(x_hat)
            recon_crc, recon_sketch = output_crc(rgb, image.mode, image.bitdepth, image.alpha), sketch(rgb)
        meta = {"shape": out["shape"], **({"options": model.coding_options} if model.coding_options else {})}
        if rate_map is not None:
            streams.append(rate_map.to_bytes())
            meta["rate_map"] = True
        if image.alpha is not None:
            streams.append(zlib.compress(np.ascontiguousarray(image.alpha).tobytes(), 9))
            meta["alpha"] = True
        data = InvlabFile(
            model=self.name, weights_hash=model.weights_hash, height=image.height, width=image.width,
            mode=image.mode, bitdepth=image.bitdepth, rate=float(rate), streams=streams, meta=meta,
            recon_crc=recon_crc, recon_sketch=recon_sketch,
        ).to_bytes()
        return data, x_hat

    def rate_map_tensor(self, model: InvlabModel, rate_map: RateMap, size: tuple[int, int], padded: tuple[int, int]
                        ) -> torch.Tensor:
        """The model's ``rate_map`` argument for an image of ``size`` padded to ``padded``: the map checked, then
        extended over the padding, (1, H_pad/16, W_pad/16)."""
        if not model.rate_maps:
            raise RateMapError(f"{self.name} codes one rate per image, not a rate map")
        if model.pad_mode != "replicate":
            raise RateMapError(f"rate maps need {self.name}'s own padding (this model pads {model.pad_mode!r})")
        rate_map.check(self.rate_space, *size, f"{self.name}: ")
        rows, cols = rate_map.rates.shape
        grown = np.pad(rate_map.rates, ((0, padded[0] // BLOCK - rows), (0, padded[1] // BLOCK - cols)), mode="edge")
        return torch.as_tensor(grown, dtype=torch.float32, device=self.device)[None]

    def _analysis(self, model: InvlabModel, x_pad: torch.Tensor) -> object:
        """``model.analyse(x_pad)``, kept for the last image: coding it again at another rate skips the analysis."""
        digest = hashlib.blake2b(x_pad.cpu().numpy().tobytes(), digest_size=16).digest()
        kept = self._last_analysis
        if kept is None or kept[0] is not model or kept[1] != digest:
            kept = self._last_analysis = (model, digest, model.analyse(x_pad))
        return kept[2]

    @torch.no_grad()
    def decode_image(self, data: bytes, max_pixels: int = MAX_PIXELS, keep_mismatch: bool = False) -> ImageData:
        """Decode a file; every header field is checked against the model before anything is allocated.

        ``ImageData.matches_encoder`` says whether the output is bit-identical to the encoder's reconstruction,
        ``ImageData.within_float_rounding`` (where it is not, and the file records the sketch) whether it differs by
        no more than float rounding. Raises a :class:`~invlab.errors.BitstreamError` for a file that is damaged,
        crafted or from another model, weights or format, :class:`~invlab.errors.SymbolMismatchError` when the
        decoded symbols are not the encoder's, and :class:`~invlab.errors.ReconstructionMismatchError` when they
        are but the picture is not (beyond float rounding; ``keep_mismatch=True`` returns it instead).
        """
        f = InvlabFile.from_bytes(data, max_pixels=max_pixels)
        if f.model != self.name:
            raise ModelMismatchError(f"file was made by model {f.model!r}, not {self.name!r}")
        try:
            rate = self.rate_space.check(f.rate, self.name)
        except RateError as err:
            raise InvalidHeaderError(f"the file's rate is invalid for {self.name}: {err}") from None
        options = f.meta.get("options", {})
        model = self._model_for_file(rate, options if isinstance(options, dict) else {})
        model_rate = self._model_rate_at(rate)
        if f.weights_hash != model.weights_hash:
            raise ModelMismatchError(
                f"file was made by other weights of {f.model!r} (hash {f.weights_hash.hex()}, "
                f"loaded {model.weights_hash.hex()}; a file encoded with a weight file of one's own decodes with that "
                "file: --weights)"
            )
        self._check_pixels(f.height, f.width, model)
        streams = list(f.streams)
        has_alpha, has_map = f.meta.get("alpha", False), f.meta.get("rate_map", False)
        if has_alpha not in (True, False) or has_map not in (True, False) \
                or not set(f.meta) <= {"shape", "alpha", "options", "rate_map"}:
            raise InvalidHeaderError(f"unexpected header metadata fields {sorted(f.meta)}")
        if has_map and not model.rate_maps:
            raise InvalidHeaderError(f"the file has a rate map, which {self.name} does not take")
        if f.meta.get("options", {}) != model.coding_options:
            raise ModelMismatchError(f"file was coded with the options {f.meta.get('options', {})} of {self.name}; "
                                     f"this model codes with {model.coding_options}")
        if len(streams) < has_alpha + has_map:
            raise InvalidHeaderError("the file lacks the streams its header announces")
        alpha = _read_alpha(streams.pop(), f.height, f.width) if has_alpha else None
        map_stream = streams.pop() if has_map else None
        shape = f.meta.get("shape")
        padded = [-(-v // model.pad_multiple) * model.pad_multiple for v in (f.height, f.width)]
        mapped = {}
        if map_stream is not None:
            try:
                rate_map = RateMap.from_bytes(map_stream, *RateMap.grid(f.height, f.width))
                mapped["rate_map"] = self.rate_map_tensor(model, rate_map, (f.height, f.width), tuple(padded))
            except (RateMapError, RateError) as err:
                raise InvalidHeaderError(f"the file's rate map is invalid: {err}") from None
        expected = model.stream_geometry(*padded)
        if not isinstance(shape, dict) or any(shape.get(k) != v for k, v in expected.items()):
            raise InvalidHeaderError(
                f"the file's stream shapes do not fit a {f.width}x{f.height} image for {self.name}")
        if model.stream_count is not None and len(streams) != model.stream_count:
            raise InvalidHeaderError(f"{self.name} files hold {model.stream_count} streams, this one {len(streams)}")
        try:
            out = model.decompress(streams, shape, model_rate, **mapped)
        except (BitstreamError, ModelMismatchError):
            raise
        except Exception as err:  # a malformed stream that passed the checksum (crafted files)
            raise CorruptBitstreamError(f"cannot decode the entropy-coded streams: {err}") from err
        x_hat = out["x_hat"]
        if not torch.isfinite(x_hat).all():
            raise CorruptBitstreamError("decoding produced non-finite values (stream/device mismatch?)")
        rgb = to_uint8(model.crop(x_hat, f.height, f.width))
        image = ImageData(rgb, f.mode, f.bitdepth, alpha)
        if f.recon_crc is not None:
            image.matches_encoder = output_crc(rgb, f.mode, f.bitdepth, alpha) == f.recon_crc
        if image.matches_encoder is False and f.recon_sketch is not None:
            image.within_float_rounding = within_float_rounding(rgb, f.recon_sketch)
            if not image.within_float_rounding and not keep_mismatch:
                raise ReconstructionMismatchError(
                    "the decoded picture is not the encoder's (its symbols are, but it differs by more than float "
                    "rounding): another invlab's decoder, or weights that differ beyond their hash; pass "
                    "keep_mismatch=True (CLI: --keep-mismatch) to keep it anyway")
        return image

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        return self.encode_image(ImageData(np.ascontiguousarray(rgb)), rate)

    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_image(data).rgb



def _read_alpha(stream: bytes, height: int, width: int) -> np.ndarray:
    """The lossless alpha plane (zlib), inflated no further than the image size (no zip bombs)."""
    try:
        inflater = zlib.decompressobj()
        raw = inflater.decompress(stream, height * width + 1)
    except zlib.error as err:
        raise CorruptBitstreamError(f"alpha stream is corrupt: {err}") from None
    if len(raw) != height * width or not inflater.eof or inflater.unused_data:
        raise CorruptBitstreamError("alpha stream does not hold exactly one alpha value per pixel")
    return np.frombuffer(raw, np.uint8).reshape(height, width).copy()


@lru_cache(maxsize=8)
def learned_codec(name: str, pretrained: bool = True, float_entropy: bool = False) -> LearnedCodec:
    """A cached :class:`LearnedCodec` (models load once per process). ``float_entropy``: a model with exact entropy
    parameters codes on its float path instead (files that decode exactly on this machine only; faster for MSINN)."""
    if float_entropy and model_class(split_weights(split_stable(name)[0])[0]).exact_entropy:
        return LearnedCodec(name, pretrained=pretrained, entropy="float")
    return LearnedCodec(name, pretrained=pretrained)


def decoder_for(data: bytes, pretrained: bool = True) -> LearnedCodec:
    """The codec that can decode ``data`` (reads the model name from the file header: a registered model's name;
    a header never names a file, see :func:`check_header_model`)."""
    return learned_codec(check_header_model(InvlabFile.from_bytes(data).model), pretrained)


def check_header_model(name: str) -> str:
    """``name`` from a file header, refused where it would name a file (``compressai:ARCH@PATH``): a file's header
    may say which network made it, never where to load one from (the decoder's user says that: ``--weights``)."""
    if "@" in name:
        raise InvalidHeaderError(f"the file's model name {name[:64]!r} names a file; a header names a model only")
    return name
