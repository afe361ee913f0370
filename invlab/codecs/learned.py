"""Learned codecs: an invlab model + the invlab file container, behind the :class:`Codec` interface.

Device policy: coding runs on the CPU in fp32 by default. Entropy parameters (scale indices) must be
bit-identical at encoder and decoder; a stream compressed on a GPU and decompressed on a CPU was
measured to decode to NaN, so ``device`` is recorded nowhere in the file and both sides should use the
same kind of device (the default, CPU, is always safe).
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np
import torch

from invlab.codecs.base import Codec
from invlab.errors import BitstreamError, CorruptBitstreamError, ModelMismatchError
from invlab.io.container import InvlabFile
from invlab.io.images import ImageData, crop, pad_to_multiple, to_tensor, to_uint8
from invlab.models.base import InvlabModel
from invlab.weights import has_weights, load_model, rate_indices, shipped_weights


class LearnedCodec(Codec):
    """Code images with a registered model family.

    A variable-rate model takes any ``rate`` in its range (one set of weights). A fixed-rate family
    ships one set of weights per rate index; ``rate`` then picks the index (0, 1, 2, ...).
    """

    rate_label = "rate index"

    def __init__(self, name: str, pretrained: bool = True, device: str = "cpu", **overrides):
        """``overrides``: config changes for the model factory (e.g. ``postnet=None``), applied on loading."""
        self.name = name
        self.pretrained = pretrained
        self.device = torch.device(device)
        self.overrides = dict(overrides)
        self._models: dict[int | None, InvlabModel] = {}
        # a fixed-rate family ships one weight file per rate index; everything else has one model
        self._per_rate_weights = pretrained and len(shipped_weights(name)) > 1
        first = self.model(0.0)
        if first.variable_rate:
            lo, hi = first.rate_range
            self.rates = tuple(float(r) for r in np.arange(lo, hi + 1e-9, 1.0))
        else:
            self.rates = tuple(float(i) for i in rate_indices(name)) if self._per_rate_weights else (0.0,)

    @property
    def trained(self) -> bool:
        return self.pretrained and has_weights(self.name)

    def _key(self, rate: float) -> int | None:
        if not self._per_rate_weights:
            return None
        if float(rate) != int(rate):
            raise ValueError(f"{self.name} is a fixed-rate family: rate must be a weight index, got {rate}")
        return int(rate)

    def model(self, rate: float) -> InvlabModel:
        """The model that codes at ``rate`` (loaded once, cached)."""
        key = self._key(rate)
        if key not in self._models:
            model = load_model(self.name, pretrained=self.pretrained, rate_index=key, **self.overrides)
            self._models[key] = model.to(self.device)
        return self._models[key]

    def model_rate(self, rate: float) -> float | None:
        model = self.model(rate)
        return model.check_rate(rate) if model.variable_rate else None

    # ------------------------------------------------------------------ coding
    @torch.no_grad()
    def encode_image(self, image: ImageData, rate: float) -> bytes:
        return self._encode(image, rate, reconstruct=False)[0]

    @torch.no_grad()
    def encode_with_reconstruction(self, rgb: np.ndarray, rate: float) -> tuple[bytes, np.ndarray]:
        """The file, and the RGB image its decoder will produce. Models that reconstruct while encoding
        (``reconstructs_at_encoder``, e.g. MSINN) skip the separate decode; the others encode, then decode."""
        image = ImageData(np.ascontiguousarray(rgb))
        if not getattr(self.model(rate), "reconstructs_at_encoder", False):
            data = self.encode_image(image, rate)
            return data, self.decode(data)
        data, x_hat = self._encode(image, rate, reconstruct=True)
        if not torch.isfinite(x_hat).all():
            raise CorruptBitstreamError("the reconstruction has non-finite values")
        return data, to_uint8(crop(x_hat, image.height, image.width))

    def _encode(self, image: ImageData, rate: float, reconstruct: bool) -> tuple[bytes, torch.Tensor | None]:
        model = self.model(rate)
        model_rate = self.model_rate(rate)
        x = to_tensor(image.rgb).to(self.device)
        x_pad, _ = pad_to_multiple(x, model.pad_multiple)
        out = model.compress(x_pad, model_rate, reconstruct=True) if reconstruct else model.compress(x_pad, model_rate)
        streams = list(out["strings"])
        meta = {"shape": out["shape"]}
        if image.alpha is not None:
            streams.append(zlib.compress(np.ascontiguousarray(image.alpha).tobytes(), 9))
            meta["alpha"] = True
        data = InvlabFile(
            model=self.name, weights_hash=model.weights_hash, height=image.height, width=image.width,
            mode=image.mode, bitdepth=image.bitdepth, rate=float(rate), streams=streams, meta=meta,
        ).to_bytes()
        return data, out.get("x_hat")

    @torch.no_grad()
    def decode_image(self, data: bytes) -> ImageData:
        f = InvlabFile.from_bytes(data)
        if f.model != self.name:
            raise ModelMismatchError(f"file was made by model {f.model!r}, not {self.name!r}")
        model = self.model(f.rate)
        if f.weights_hash != model.weights_hash:
            raise ModelMismatchError(
                f"file was made by other weights of {f.model!r} (hash {f.weights_hash.hex()}, "
                f"loaded {model.weights_hash.hex()})"
            )
        streams = list(f.streams)
        alpha = None
        if f.meta.get("alpha"):
            try:
                raw = zlib.decompress(streams.pop())
                alpha = np.frombuffer(raw, np.uint8).reshape(f.height, f.width).copy()
            except (zlib.error, ValueError) as err:
                raise CorruptBitstreamError(f"alpha stream is corrupt: {err}") from None
        try:
            out = model.decompress(streams, f.meta["shape"], self.model_rate(f.rate))
        except (BitstreamError, ModelMismatchError):
            raise
        except Exception as err:  # a malformed stream that passed the checksum (crafted files)
            raise CorruptBitstreamError(f"cannot decode the entropy-coded streams: {err}") from err
        x_hat = out["x_hat"]
        if not torch.isfinite(x_hat).all():
            raise CorruptBitstreamError("decoding produced non-finite values (stream/device mismatch?)")
        rgb = to_uint8(crop(x_hat, f.height, f.width))
        return ImageData(rgb, f.mode, f.bitdepth, alpha)

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        return self.encode_image(ImageData(np.ascontiguousarray(rgb)), rate)

    def decode(self, data: bytes) -> np.ndarray:
        return self.decode_image(data).rgb


@lru_cache(maxsize=8)
def learned_codec(name: str, pretrained: bool = True) -> LearnedCodec:
    """A cached :class:`LearnedCodec` (models load once per process)."""
    return LearnedCodec(name, pretrained=pretrained)


def decoder_for(data: bytes, pretrained: bool = True) -> LearnedCodec:
    """The codec that can decode ``data`` (reads the model name from the file header)."""
    return learned_codec(InvlabFile.from_bytes(data).model, pretrained)
