"""Wall time of the quick ``invlab`` commands, each in a fresh Python process (target: well under 1 s).

Usage::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cli_speed.py [--repeats 5]

Times ``invlab --help``, ``invlab models`` and ``invlab info FILE`` (a small invlab file written here), plus
two references: a bare interpreter and ``import invlab``. Each command runs ``--repeats`` times as
``python -m invlab.cli ...``; the table gives the best and the median wall time, and whether torch was
imported on the way (the point of the fast path is that it is not). This is a benchmark, not a test: the
numbers depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# run after the command in the same process: did it pull in the heavy libraries?
_PROBE = (
    "import sys, runpy\n"
    "sys.argv = ['invlab', *sys.argv[1:]]\n"
    "code = 0\n"
    "try:\n"
    "    runpy.run_module('invlab.cli', run_name='__main__')\n"
    "except SystemExit as stop:\n"
    "    code = stop.code\n"
    "heavy = [m for m in ('torch', 'torchvision', 'compressai') if m in sys.modules]\n"
    "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _write_sample(folder: Path) -> Path:
    """A small, valid invlab file (header only matters to ``info``)."""
    sys.path.insert(0, str(REPO))
    from invlab.io.container import InvlabFile

    path = folder / "sample.invl"
    InvlabFile(model="tiny-flow", weights_hash=bytes(8), height=32, width=48, mode="RGB", bitdepth=8, rate=1.0,
               streams=[b"\x00" * 40, b"\x00" * 12], meta={"shape": {}}).write(path, overwrite=True)
    return path


def _time(cmd: list[str], repeats: int) -> tuple[list[float], str, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    times, heavy, rc = [], "n/a", 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, check=False)
        times.append(time.perf_counter() - t0)
        rc = proc.returncode
        for line in proc.stderr.splitlines():
            if line.startswith("HEAVY="):
                heavy = line.removeprefix("HEAVY=") or "-"
    return times, heavy, rc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command (default 5)")
    args = parser.parse_args()

    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        sample = _write_sample(Path(tmp))
        commands = {
            "python -c pass (reference)": [py, "-c", "pass"],
            "import invlab (reference)": [py, "-c", "import invlab, sys; heavy = [m for m in ('torch', "
                                          "'torchvision', 'compressai') if m in sys.modules]; "
                                          "print('HEAVY=' + ','.join(heavy), file=sys.stderr)"],
            "invlab --help": [py, "-c", _PROBE, "--help"],
            "invlab models": [py, "-c", _PROBE, "models"],
            "invlab info FILE": [py, "-c", _PROBE, "info", str(sample)],
        }
        rows = []
        for label, cmd in commands.items():
            times, heavy, rc = _time(cmd, args.repeats)
            rows.append((label, min(times), statistics.median(times), heavy, rc))

    print(f"{'command':28s} {'best s':>8s} {'median s':>9s}  {'exit':>4s}  heavy modules imported")
    for label, best, median, heavy, rc in rows:
        print(f"{label:28s} {best:8.3f} {median:9.3f}  {rc:4d}  {heavy}")
    print(f"({args.repeats} runs each, OMP_NUM_THREADS=1, {os.cpu_count()} CPU(s); load average "
          f"{os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
