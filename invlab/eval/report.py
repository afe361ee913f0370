"""Regenerate the results table (docs/results.md) from results/<dataset>/.

``invlab report`` prints the markdown; ``invlab report --write docs/results.md`` replaces the text between
``<!-- results:start -->`` and ``<!-- results:end -->`` in that file (nothing else).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from invlab.eval.anchors import Curve, load_anchor, load_results
from invlab.eval.names import ANCHOR_LABELS, display_name, kind_of
from invlab.eval.rd import bd_table, markdown_table

START, END = "<!-- results:start -->", "<!-- results:end -->"
PUBLISHED = ("vvenc", "invcompress", "msinn-8", "msinn-12")  # shown beside ours, for Kodak
BD_DIGITS = {"BD-rate (%)": 1, "BD-PSNR (dB)": 2}  # decimals worth reading (``rounded=True``)


def results_table(results_dir: str | Path, anchor: str = "vtm", published: tuple[str, ...] = PUBLISHED,
                  rounded: bool = False) -> pd.DataFrame:
    """One row per result JSON (ours, then published anchors on Kodak): points, ranges, BD vs ``anchor``.

    ``rounded`` rounds the BD columns to :data:`BD_DIGITS` decimals (for display; the markdown and CSV
    outputs format the exact values themselves)."""
    results_dir = Path(results_dir)
    ours = load_results(results_dir)
    kodak = results_dir.name == "kodak"
    curves: dict[str, Curve] = {**ours, **({f"{p} (anchor)": load_anchor(p) for p in published} if kodak else {})}
    if kodak:
        table = bd_table(curves, load_anchor(anchor))
    else:  # the anchors are Kodak numbers: no BD against them for other data sets
        table = pd.DataFrame({"codec": list(curves), "points": [len(c.bpp) for c in curves.values()],
                              "bpp range": [f"{c.bpp.min():.3f}-{c.bpp.max():.3f}" for c in curves.values()]})
        table = table.set_index("codec")
    table.insert(2, "PSNR range (dB)", [f"{c.psnr.min():.2f}-{c.psnr.max():.2f}" for c in curves.values()])
    if any(c.training for c in curves.values()):
        table.insert(3, "training", [c.training or "-" for c in curves.values()])
    return table.round({k: v for k, v in BD_DIGITS.items() if k in table}) if rounded else table


def display_table(results_dir: str | Path, anchor: str = "vtm") -> pd.DataFrame:
    """The results table as a reader wants it (notebook 03): names without ``-eval``, the anchor named in the BD
    headers ("BD-rate vs VTM (%)"), rounded, sorted by BD-rate, one VVC row (ours, which says its encoder; the
    vvenc anchor only where there is no result of ours), and only the curves that have a BD value: a single point
    (an ablation) or a curve without PSNR overlap has none (:func:`results_table` lists them all)."""
    ours = load_results(results_dir)
    published = tuple(p for p in PUBLISHED if not (p == "vvenc" and "vvc" in ours))
    table = results_table(results_dir, anchor, published, rounded=True)
    who = ANCHOR_LABELS.get(anchor, anchor).split(" ")[0] if not anchor.endswith(".json") else Path(anchor).stem
    if "BD-rate (%)" not in table:
        return table.rename(index=display_name)
    table = table.dropna(subset=["BD-rate (%)"]).sort_values("BD-rate (%)")
    table.insert(0, "kind", [kind_of(n) if not n.endswith("-untrained") else "untrained" for n in table.index])
    table = table.drop(columns=["PSNR overlap (dB)"]).rename(index=display_name)
    return table.rename(columns={"BD-rate (%)": f"BD-rate vs {who} (%)", "BD-PSNR (dB)": f"BD-PSNR vs {who} (dB)"})


def reading(table: pd.DataFrame) -> str:
    """One line that says what a :func:`display_table` shows: the best learned model of ours and the best
    classical codec against the anchor (BD-rate: the extra bits needed for the anchor's quality)."""
    column = next((c for c in table.columns if c.startswith("BD-rate vs ")), None)
    if column is None or table.empty:
        return "No BD-rates: these results are not on Kodak (the anchors are Kodak numbers)."
    who = column.removeprefix("BD-rate vs ").removesuffix(" (%)")
    parts = []
    for kinds, words in ((("invertible", "autoencoder"), "Best learned model of ours"),
                         (("classical",), "best classical codec")):
        rows = table[table["kind"].isin(kinds)]
        if not rows.empty:
            name, value = rows[column].idxmin(), rows[column].min()
            parts.append(f"{words}: {name} at {value:+.1f} %")
    return (f"BD-rate vs {who}: the extra bits a codec needs for {who}'s quality (negative = fewer). "
            + "; ".join(parts) + ".")


def render(results_root: str | Path = "results", anchor: str = "vtm") -> str:
    """The markdown block for every data set folder under ``results_root`` that holds result JSONs."""
    blocks = []
    for folder in sorted(p for p in Path(results_root).iterdir() if p.is_dir() and load_results(p)):
        n_images = _count_images(folder)
        title = f"**{folder.name}**" + (f" ({n_images} images)" if n_images else "")
        against = f"`{anchor}`" if anchor.endswith(".json") else f"CompressAI's published Kodak `{anchor}` points"
        note = (f"BD-rate / BD-PSNR against {against} (PCHIP on log-rate over "
                "the overlapping PSNR range; negative BD-rate = fewer bits). Names ending in `-untrained` are "
                "untrained models.") if folder.name == "kodak" else ""
        blocks.append(f"{title}. {note}\n\n{markdown_table(results_table(folder, anchor))}")
    body = "\n\n".join(blocks) if blocks else "_No results yet: run `invlab rd`._"
    return f"{body}\n\n_Generated by `invlab report` from `{results_root}/`; do not edit by hand._"


def _count_images(folder: Path) -> int:
    csvs = sorted(folder.glob("*.csv"))
    if not csvs or csvs[0].name == "bd_table.csv" and len(csvs) == 1:
        return 0
    return max(pd.read_csv(c)["image"].nunique() for c in csvs if c.name != "bd_table.csv")


def replace_block(text: str, block: str, start: str = START, end: str = END) -> str:
    """``text`` with the part between the ``start`` and ``end`` markers replaced by ``block``."""
    if start not in text or end not in text or text.index(start) > text.index(end):
        raise ValueError(f"the file needs {start} ... {end} markers")
    head, rest = text.split(start, 1)
    return f"{head}{start}\n{block}\n{end}{rest.split(end, 1)[1]}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", default="results", help="folder with one sub-folder per data set")
    parser.add_argument("--anchor", default="vtm", help="anchor of the BD columns")
    parser.add_argument("--write", metavar="FILE", help="replace the marked results block of FILE (docs/results.md)")


def run(args: argparse.Namespace) -> int:
    block = render(args.results, args.anchor)
    if args.write:
        path = Path(args.write)
        path.write_text(replace_block(path.read_text(), block))
        print(f"updated the results block of {path}")
    else:
        print(block)
    return 0
