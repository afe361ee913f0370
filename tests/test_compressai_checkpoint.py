"""CompressAI architectures with a user's checkpoint as codecs (written here by the test, never downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compressai.models import FactorizedPrior, MeanScaleHyperprior

from invlab.cli import main as cli_main
from invlab.codecs.compressai_ckpt import CompressAICheckpointCodec
from invlab.codecs.registry import get_codec
from invlab.entropy.rans import EntropyCoder, coders_in
from invlab.errors import InvlabError, ModelMismatchError


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    mean = MeanScaleHyperprior(N=32, M=48)
    mean(torch.rand(1, 3, 64, 64))  # "briefly initialised": one forward pass, as CompressAI's training starts
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in mean.state_dict().items()}},
               folder / "mbt-mean.pth.tar")  # CompressAI's training checkpoint, saved from DataParallel
    torch.save(FactorizedPrior(N=16, M=24).state_dict(), folder / "factorized.pth")
    torch.save(MeanScaleHyperprior(N=32, M=48).state_dict(), folder / "other.pth")
    return folder


@pytest.mark.parametrize("arch,file", [("mbt2018-mean", "mbt-mean.pth.tar"),
                                       ("bmshj2018-factorized", "factorized.pth")])
def test_checkpoint_codes_real_files_exactly(checkpoints, arch, file):
    codec = get_codec(f"compressai:{arch}@{checkpoints / file}")
    assert isinstance(codec, CompressAICheckpointCodec) and codec.rates == (0.0,)
    assert all(isinstance(c, EntropyCoder) for c in coders_in(codec.model(0.0)))
    rgb = np.random.default_rng(0).integers(0, 256, (45, 70, 3), dtype=np.uint8)
    data, recon = codec.encode_with_reconstruction(rgb, 0.0)
    image = codec.decode_image(data)
    assert image.matches_encoder is True and np.array_equal(image.rgb, recon)


def test_other_weights_and_unsafe_architectures_are_refused(checkpoints):
    codec = get_codec(f"compressai:mbt2018-mean@{checkpoints / 'mbt-mean.pth.tar'}")
    data = codec.encode(np.zeros((64, 64, 3), np.uint8), 0.0)
    with pytest.raises(ModelMismatchError):
        get_codec(f"compressai:mbt2018-mean@{checkpoints / 'other.pth'}").decode(data)
    with pytest.raises(InvlabError, match="unchecked"):
        get_codec(f"compressai:mbt2018@{checkpoints / 'other.pth'}")
    with pytest.raises(InvlabError, match="not a bmshj2018-hyperprior checkpoint"):
        get_codec(f"compressai:bmshj2018-hyperprior@{checkpoints / 'factorized.pth'}")


def test_cli_round_trip(checkpoints, tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    ckpt = checkpoints / "mbt-mean.pth.tar"
    assert cli_main(["encode", str(tmp_path / "a.png"), str(tmp_path / "a.invl"),
                     "--model", f"compressai:mbt2018-mean@{ckpt}"]) == 0
    assert cli_main(["decode", str(tmp_path / "a.invl"), str(tmp_path / "b.png")]) == 2  # no checkpoint given
    assert "needs its checkpoint" in capsys.readouterr().err
    assert cli_main(["decode", str(tmp_path / "a.invl"), str(tmp_path / "b.png"), "--weights", str(ckpt)]) == 0
    assert "bit-identical" in capsys.readouterr().out
