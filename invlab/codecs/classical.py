"""Classical image codecs behind the :class:`~invlab.codecs.base.Codec` interface.

Every codec returns the complete file or bitstream it wrote, and that is what bpp counts: JPEG/JPEG 2000
(J2K codestream)/WebP/JPEG XL/AVIF files from imagecodecs, the raw HEVC Annex-B stream from PyAV's
libx265, the raw VVC .266 stream from libvvenc. Default ``rates`` span about 0.1-2 bpp on Kodak.

Versions that produced results/ are pinned in requirements.txt (imagecodecs 2026.1.14: libjpeg-turbo 3.1.3,
openjpeg 2.5.4, libwebp 1.6.0, libavif 1.4.0 + aom, libjxl 0.11.2; av 18.1.0: x265; imageio-ffmpeg 0.8.1:
FFmpeg 9.0.2 with libvvenc).
"""

from __future__ import annotations

import struct
import subprocess
from fractions import Fraction

import av
import imagecodecs
import imageio_ffmpeg
import numpy as np
import torch
from compressai.transforms.functional import rgb2ycbcr, ycbcr2rgb, yuv_420_to_444, yuv_444_to_420

from invlab.codecs.base import Codec
from invlab.codecs.registry import CLASSICAL_RATES, VVC_PRESETS
from invlab.errors import CorruptBitstreamError

av.logging.set_level(av.logging.ERROR)


class JPEG(Codec):
    """JPEG (libjpeg-turbo), quality 1-100, Huffman-optimised, 4:2:0 chroma (``jpeg444``: no subsampling)."""

    name = "jpeg"
    rate_space = CLASSICAL_RATES["jpeg"]
    subsampling = "420"

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        return imagecodecs.jpeg8_encode(rgb, level=int(rate), optimize=True, subsampling=self.subsampling)

    def decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpeg8_decode(data)


class JPEG444(JPEG):
    name = "jpeg444"
    rate_space = CLASSICAL_RATES["jpeg444"]
    subsampling = "444"


class JPEG2000(Codec):
    """JPEG 2000 (OpenJPEG, J2K codestream); the knob is OpenJPEG's target PSNR in dB (higher = more bits)."""

    name = "jpeg2000"
    rate_space = CLASSICAL_RATES["jpeg2000"]

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        return imagecodecs.jpeg2k_encode(rgb, level=float(rate), codecformat="J2K", numthreads=1)

    def decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpeg2k_decode(data, numthreads=1)


class WebP(Codec):
    """WebP lossy (libwebp, method 6), quality 0-100. imagecodecs is lossless unless told otherwise."""

    name = "webp"
    rate_space = CLASSICAL_RATES["webp"]

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        return imagecodecs.webp_encode(rgb, level=float(rate), lossless=False, method=6)

    def decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.webp_decode(data)[..., :3]


class JPEGXL(Codec):
    """JPEG XL (libjxl, effort 7); the knob is the Butteraugli distance (lower = more bits)."""

    name = "jpegxl"
    rate_space = CLASSICAL_RATES["jpegxl"]
    higher_is_fewer_bits = True

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        return imagecodecs.jpegxl_encode(rgb, distance=float(rate), effort=7, numthreads=1)

    def decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.jpegxl_decode(data, numthreads=1)


class AVIF(Codec):
    """AV1 intra in an AVIF file (libavif + aom, speed 4), YCbCr 4:4:4 8-bit, quality 0-100.

    Speed 4 codes Kodak at about 1.5 s per image; against speed 6 it saves about 7 % of the bits at equal PSNR.
    """

    name = "avif"
    rate_space = CLASSICAL_RATES["avif"]

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        return imagecodecs.avif_encode(
            rgb, level=int(rate), speed=4, pixelformat=imagecodecs.AVIF.PIXEL_FORMAT.YUV444, numthreads=1
        )

    def decode(self, data: bytes) -> np.ndarray:
        return imagecodecs.avif_decode(data, numthreads=1)


class HEVC444(Codec):
    """HEVC intra 4:4:4 8-bit with a QP knob (libx265 through PyAV): the BPG stand-in.

    Colour: full-range BT.601 YCbCr (as BPG), converted by libswscale. x265 runs at preset ``slower`` with
    ``tune=psnr`` (psycho-visual RDO and AQ off: 11 % fewer bits at equal PSNR than x265's defaults, 15 % with
    the slower preset, on 6 Kodak images), ``info=0`` (no settings SEI) and one intra frame; the counted bytes
    are the raw Annex-B stream (VPS+SPS+PPS+slice).
    Odd sizes are coded natively (x265 pads and signals a conformance window).
    """

    name = "hevc444"
    rate_space = CLASSICAL_RATES["hevc444"]
    higher_is_fewer_bits = True

    def __init__(self, preset: str = "slower"):
        self.preset = preset

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        h, w = rgb.shape[:2]
        enc = av.CodecContext.create("libx265", "w")
        enc.width, enc.height, enc.pix_fmt = w, h, "yuv444p"
        enc.time_base, enc.framerate = Fraction(1, 25), Fraction(25, 1)
        enc.options = {
            "preset": self.preset,
            "tune": "psnr",
            "x265-params": f"qp={int(rate)}:keyint=1:info=0:log-level=error:pools=1:frame-threads=1",
        }
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(
            format="yuv444p", dst_colorspace="ITU601", dst_color_range="JPEG"
        )
        return b"".join(bytes(p) for p in [*enc.encode(frame), *enc.encode(None)])

    def decode(self, data: bytes) -> np.ndarray:
        dec = av.CodecContext.create("hevc", "r")
        frames = []
        for packet in [*dec.parse(data), *dec.parse(None)]:  # parse(None) flushes the last packet
            frames += dec.decode(packet)
        frames += dec.decode(None)
        if not frames:
            raise CorruptBitstreamError("no picture in the HEVC stream")
        return frames[0].to_ndarray(format="rgb24", src_colorspace="ITU601", src_color_range="JPEG")


class VVC(Codec):
    """VVC intra (libvvenc in imageio-ffmpeg's FFmpeg), YCbCr 4:2:0 10-bit, QP knob, QPA off.

    libvvenc takes only yuv420p10le. The colour pipeline is CompressAI's (and that of
    ``data/anchors/vvenc-kodak*.json``): full-range BT.709 YCbCr in float, 2x2 average chroma pooling,
    round(1023 x); after decoding, bilinear chroma up-sampling and round(255 x). The counted bytes are
    the raw .266 stream. 4:2:0 needs even sides: an odd-sized image is edge-padded to even and the
    stream is prefixed by 5 bytes (0xFF, height, width as big-endian uint16) so the decoder can crop;
    those 5 bytes are counted too. Encoding takes seconds per image at preset ``medium`` (codec name
    ``vvc``); other presets are named ``vvc-<preset>`` (``vvc-slower``).
    """

    name = "vvc"
    rate_space = CLASSICAL_RATES["vvc"]
    higher_is_fewer_bits = True
    _CROP_MARK = b"\xff"  # a raw Annex-B stream starts with a 0x00 start code, never 0xFF

    def __init__(self, preset: str = "medium"):
        if preset not in VVC_PRESETS:
            raise ValueError(f"unknown vvenc preset {preset!r}; one of {', '.join(VVC_PRESETS)}")
        self.preset = preset
        self.name = "vvc" if preset == "medium" else f"vvc-{preset}"
        self.ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()

    def _run(self, args: list[str], data: bytes) -> bytes:
        proc = subprocess.run([self.ffmpeg, "-nostdin", "-loglevel", "error", *args], input=data,
                              capture_output=True, check=False)
        if proc.returncode != 0 or not proc.stdout:
            raise CorruptBitstreamError(f"ffmpeg failed: {proc.stderr.decode(errors='replace').strip()[-500:]}")
        return proc.stdout

    def encode(self, rgb: np.ndarray, rate: float) -> bytes:
        h, w = rgb.shape[:2]
        padded = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        raw = _rgb_to_yuv420p10(padded)
        stream = self._run([
            "-f", "rawvideo", "-pix_fmt", "yuv420p10le", "-s", f"{padded.shape[1]}x{padded.shape[0]}", "-i", "-",
            "-c:v", "libvvenc", "-preset", self.preset, "-qp", str(int(rate)), "-qpa", "0",
            "-frames:v", "1", "-f", "rawvideo", "-",
        ], raw)
        if (h, w) == padded.shape[:2]:
            return stream
        return self._CROP_MARK + struct.pack(">HH", h, w) + stream

    def decode(self, data: bytes) -> np.ndarray:
        crop = None
        if data[:1] == self._CROP_MARK:
            crop, data = struct.unpack(">HH", data[1:5]), data[5:]
        dec = av.CodecContext.create("vvc", "r")
        frames = []
        for packet in [*dec.parse(data), *dec.parse(None)]:
            frames += dec.decode(packet)
        frames += dec.decode(None)
        if not frames:
            raise CorruptBitstreamError("no picture in the VVC stream")
        frame = frames[0]
        planes = [np.frombuffer(frame.planes[i], np.uint16).reshape(-1, frame.planes[i].line_size // 2)
                  for i in range(3)]
        hh, ww = frame.height, frame.width
        y, u, v = planes[0][:hh, :ww], planes[1][: hh // 2, : ww // 2], planes[2][: hh // 2, : ww // 2]
        rgb = _yuv420p10_to_rgb(y, u, v)
        return rgb if crop is None else np.ascontiguousarray(rgb[: crop[0], : crop[1]])


def _rgb_to_yuv420p10(rgb: np.ndarray) -> bytes:
    """(H,W,3) uint8, even sides -> planar yuv420p10le bytes (CompressAI's BT.709 full-range pipeline)."""
    x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).double() / 255.0
    planes = yuv_444_to_420(rgb2ycbcr(x))
    return b"".join(p.mul(1023).round().clamp(0, 1023).to(torch.int16).numpy().astype("<u2").tobytes()
                    for p in planes)


def _yuv420p10_to_rgb(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Planar 10-bit full-range YCbCr 4:2:0 -> (H,W,3) uint8 RGB (bilinear chroma up-sampling)."""
    planes = [torch.from_numpy(p.astype(np.float64) / 1023.0)[None, None] for p in (y, u, v)]
    rgb = ycbcr2rgb(yuv_420_to_444(tuple(planes)))
    return rgb.mul(255).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy().copy()


CLASSICAL_CODECS: dict[str, type[Codec]] = {
    c.name: c for c in (JPEG, JPEG444, JPEG2000, WebP, JPEGXL, AVIF, HEVC444, VVC)
}
