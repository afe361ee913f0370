"""scripts/gpu/slim.sh: sets aside what a device call does not need, puts it back, never overwrites a changed file."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu" / "slim.sh"


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts" / "gpu").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "scripts" / "gpu" / "slim.sh")
    (repo / "weights").mkdir()
    (repo / "data" / "kodak").mkdir(parents=True)
    for stem in ("msinn-mini", "mbt2018-mean-mini-q2", "anfic-mini-noctx-q2"):
        (repo / "weights" / f"{stem}.pt").write_bytes(stem.encode() * 1000)
        (repo / "weights" / f"{stem}.json").write_text("{}")
    for number in range(1, 7):
        (repo / "data" / "kodak" / f"kodim{number:02d}.png").write_bytes(bytes([number]) * 5000)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "."], cwd=repo, check=True)
    return repo


def _slim(repo: Path, aside: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INVLAB_ASIDE": str(aside)}
    return subprocess.run(["bash", "scripts/gpu/slim.sh", *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=60)


def _snapshot(repo: Path) -> dict[str, bytes]:
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*")) if p.is_file()
            and ".git" not in p.parts}


def test_slim_sets_aside_all_but_the_named_weights_and_four_kodak_images_then_restores_them(tmp_path):
    repo, aside = _repo(tmp_path), tmp_path / "aside"
    before = _snapshot(repo)
    run = _slim(repo, aside, "msinn-mini")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (repo / "weights").glob("*.pt")) == ["msinn-mini.pt"]
    assert sorted(p.name for p in (repo / "data" / "kodak").iterdir()) == [f"kodim0{i}.png" for i in range(1, 5)]
    assert len(list((repo / "weights").glob("*.json"))) == 3  # metadata stays
    assert "MiB of 64 MiB" in run.stdout
    run = _slim(repo, aside, "--restore")
    assert run.returncode == 0, run.stderr
    assert _snapshot(repo) == before


def test_restore_never_overwrites_a_file_changed_meanwhile(tmp_path):
    repo, aside = _repo(tmp_path), tmp_path / "aside"
    assert _slim(repo, aside, "msinn-mini").returncode == 0
    (repo / "weights" / "mbt2018-mean-mini-q2.pt").write_bytes(b"retrained")
    run = _slim(repo, aside, "--restore")
    assert run.returncode == 1 and "changed since it was set aside" in run.stderr
    assert (repo / "weights" / "mbt2018-mean-mini-q2.pt").read_bytes() == b"retrained"
    assert (aside / "mbt2018-mean-mini-q2.pt").is_file()  # the set-aside copy is kept, not lost
    assert (repo / "weights" / "anfic-mini-noctx-q2.pt").is_file()  # the others came back


def test_size_fails_when_the_tree_is_over_the_limit(tmp_path):
    repo, aside = _repo(tmp_path), tmp_path / "aside"
    with open(repo / "weights" / "big.pt", "wb") as f:
        f.truncate(65 * 2**20)  # sparse: 65 MiB
    subprocess.run(["git", "add", "weights/big.pt"], cwd=repo, check=True)
    run = _slim(repo, aside, "--size")
    assert run.returncode == 1 and "still too large" in run.stderr
