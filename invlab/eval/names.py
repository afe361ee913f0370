"""How results are named for people: the codec a result name stands for, its display name, the anchors' labels.

A result's name is its file stem in ``results/<dataset>/``: ``msinn-mini-12-eval`` (``invlab evaluate``),
``msinn@mine-eval`` (a weight file of one's own), ``msinn-mini+postnet-none-eval`` (config options),
``tiny-flow-untrained`` (an untrained model), ``jpeg`` (``invlab rd``). Published curves are named by
:data:`ANCHOR_LABELS`.
"""

from __future__ import annotations

#: how the published Kodak anchors are labelled in figures and tables
ANCHOR_LABELS = {
    "vtm": "VTM 4:4:4 (CompressAI)", "vvenc": "vvenc slower 4:2:0 (ours)", "vvenc-medium": "vvenc medium 4:2:0 (ours)",
    "invcompress": "InvCompress (paper)", "msinn-12": "MSINN-VRLIC-12 (paper)", "msinn-8": "MSINN-VRLIC-8 (paper)",
}
#: our own classical results that need more words than their codec's name
RESULT_LABELS = {"vvc": "VVC (vvenc medium 4:2:0, ours)"}


def base_name(name: str) -> str:
    """The codec a result name stands for: ``msinn-mini-12-eval`` -> ``msinn-mini-12``; ``msinn@mine+postnet-none``
    -> ``msinn``; ``compressai:mbt2018-mean@x`` -> ``compressai``; ``vvenc (anchor)`` -> ``vvenc``."""
    name = name.removesuffix(" (anchor)").removesuffix("-untrained").removesuffix("-eval")
    if name.startswith("compressai:"):
        return "compressai"
    return name.split("@")[0].split("+")[0]


def display_name(name: str) -> str:
    """A result name for people: ``-eval`` dropped, ``-untrained`` said in words, anchors by their label."""
    if name.endswith(" (anchor)"):
        short = name.removesuffix(" (anchor)")
        return ANCHOR_LABELS.get(short, name)
    untrained = name.endswith("-untrained")
    name = name.removesuffix("-untrained").removesuffix("-eval")
    return RESULT_LABELS.get(name, name) + (" (untrained)" if untrained else "")


def anchor_label(name: str) -> str:
    """The label of a published anchor (its short name where it has none)."""
    return ANCHOR_LABELS.get(name, name)


def kind_of(name: str, published: bool = False) -> str:
    """``"invertible"``, ``"autoencoder"``, ``"classical"`` or ``"published"`` for a result or anchor name (a
    figure's line style, a table's kind column)."""
    if published or name.endswith(" (anchor)"):
        return "published"
    from invlab.codecs.registry import classical_rate_space
    from invlab.models.registry import get_spec, is_model

    base = base_name(name)
    if base == "compressai":
        return "autoencoder"
    if classical_rate_space(base) is not None:
        return "classical"
    if is_model(base):
        return "autoencoder" if get_spec(base).family == "baseline" else "invertible"
    return "published"  # a JSON of unknown origin: drawn like an anchor, never as one of ours
