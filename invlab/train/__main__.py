"""``python -m invlab.train``: ``invlab train`` as a module, for ``torchrun``.

    torchrun --nproc-per-node 2 -m invlab.train msinn-mini --data DIR --val DIR --batch-size 8 ...

Each process trains on its share of every batch (see :mod:`invlab.train.trainer`); rank 0 logs, validates,
checkpoints and exports.
"""

from __future__ import annotations

import argparse
import sys

from invlab.train.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m invlab.train", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
