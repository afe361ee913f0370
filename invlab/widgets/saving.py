"""Notebooks are saved without their outputs, so running the workbench never changes the files in the repository.

``scripts/lab.sh`` points Jupyter at ``scripts/jupyter/jupyter_server_config.py``, which installs
:func:`strip_outputs` as the contents manager's pre-save hook: outputs, execution counts and the widget state
are dropped from every notebook JupyterLab saves; the code and the text are kept as written.
"""

from __future__ import annotations

from typing import Any


def strip_outputs(model: dict[str, Any], **_: Any) -> None:
    """Jupyter pre-save hook: clear the outputs of a notebook ``model`` in place (other files pass unchanged)."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    notebook = model["content"]
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
