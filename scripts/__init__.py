"""The project's own tools, beside the library: the decoder fuzzer (``python -m scripts.fuzz``), the training
targets (``python -m scripts.targets``), the official-code fixtures (``scripts/official``) and the shell entry points.
Run from the repository root; nothing in ``invlab`` imports them."""
