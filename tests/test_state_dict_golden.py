"""Trained weights must keep loading: every registered model's state-dict keys and shapes are pinned.

The golden file is written by ``INVLAB_WRITE_GOLDEN=1 pytest tests/test_state_dict_golden.py`` and reviewed in
the diff; a refactor that renames or reshapes a parameter or buffer fails here before it breaks shipped weights.
CDF tables (``_quantized_cdf``, ``_offset``, ``_cdf_length``) are left out: ``update()`` derives them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from invlab.models import create_model, list_models

GOLDEN = Path(__file__).parent / "golden" / "state_dict_shapes.json"
DERIVED = ("_quantized_cdf", "_offset", "_cdf_length")


def shapes(name: str) -> dict[str, list[int]]:
    model = create_model(name)
    return {k: list(v.shape) for k, v in model.state_dict().items() if not k.endswith(DERIVED)}


@pytest.fixture(scope="module")
def golden() -> dict[str, dict[str, list[int]]]:
    if os.environ.get("INVLAB_WRITE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps({n: shapes(n) for n in list_models()}, indent=0, sort_keys=True) + "\n")
    return json.loads(GOLDEN.read_text())


def test_every_registered_model_is_pinned(golden) -> None:
    assert sorted(golden) == sorted(list_models())


@pytest.mark.parametrize("name", list_models())
def test_state_dict_keys_and_shapes_are_unchanged(golden, name) -> None:
    now = shapes(name)
    missing, added = sorted(set(golden[name]) - set(now)), sorted(set(now) - set(golden[name]))
    assert not missing and not added, f"{name}: missing {missing[:5]}, added {added[:5]}"
    changed = {k: (golden[name][k], v) for k, v in now.items() if golden[name][k] != v}
    assert not changed, f"{name}: shapes changed {list(changed.items())[:5]}"
