"""scripts/train_cpu.sh picks the run's start: its checkpoint, else the committed weights, else the options' own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = os.environ | {"DRY_RUN": "1", "INVLAB_RUNS": str(tmp_path / "runs"), "HOME": str(tmp_path)} | env_extra
    return subprocess.run(["bash", "scripts/train_cpu.sh", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def _command(tmp_path: Path, *args: str, **env_extra: str) -> str:
    out = _run(tmp_path, *args, **env_extra)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_without_a_checkpoint_it_continues_warm_from_the_committed_weights(tmp_path):
    out = _command(tmp_path, "anfic-mini-noctx", "5", "--rate-index", "2")
    assert "--init-from weights/anfic-mini-noctx-q2.pt --start-step" in out


def test_options_with_their_own_start_are_not_given_a_second_one(tmp_path):
    out = _command(tmp_path, "anfic-mini-noctx", "5", "--rate-index", "2",
                   "--init-from", "weights/anfic-mini-noctx-q1.pt", FRESH="1")
    assert "--start-step" not in out and out.count("--init-from") == 1


def test_a_fresh_start_over_trained_weights_is_refused_unless_asked_for(tmp_path):
    """Starting q2 afresh from q1's weights would, once exported, replace the trained q2 file: refused."""
    q2 = ("anfic-mini-noctx", "5", "--rate-index", "2")
    refused = _run(tmp_path, *q2, "--init-from", "weights/anfic-mini-noctx-q1.pt")
    assert refused.returncode == 2 and "FRESH=1" in refused.stderr and not refused.stdout.strip()
    # a warm continuation of its own weights, spelled out: allowed
    own = _command(tmp_path, *q2, "--init-from", "weights/anfic-mini-noctx-q2.pt", "--start-step", "3777")
    assert "--init-from weights/anfic-mini-noctx-q2.pt --start-step 3777" in own
    (tmp_path / "runs" / "anfic-mini-noctx-q2").mkdir(parents=True)
    (tmp_path / "runs" / "anfic-mini-noctx-q2" / "last.pt").write_bytes(b"")  # a run under way resumes: allowed
    assert "--init-from weights/anfic-mini-noctx-q1.pt" in _command(
        tmp_path, *q2, "--init-from", "weights/anfic-mini-noctx-q1.pt")


def test_the_twelve_anchor_widening_runs_in_its_own_folder_from_the_eight_anchor_weights(tmp_path):
    out = _command(tmp_path, "msinn-mini-12", "5", "--init-from", "weights/msinn-mini.pt", FRESH="1")
    assert f"--run-dir {tmp_path / 'runs' / 'msinn-mini-12'} " in out
    assert "--start-step" not in out and out.count("--init-from weights/msinn-mini.pt") == 1


def test_the_twelve_anchor_model_continues_its_own_weights_once_they_ship(tmp_path):
    """With weights/msinn-mini-12.pt shipped, a start from the 8-anchor file is refused and a plain run continues it."""
    assert (ROOT / "weights" / "msinn-mini-12.pt").exists()
    refused = _run(tmp_path, "msinn-mini-12", "5", "--init-from", "weights/msinn-mini.pt")
    assert refused.returncode == 2 and "FRESH=1" in refused.stderr
    assert "--init-from weights/msinn-mini-12.pt --start-step" in _command(tmp_path, "msinn-mini-12", "5")
