"""The workbench saves notebooks without outputs (so running one never dirties the checkout), and its launch
script starts as root too."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import nbformat
from jupyter_server.services.contents.filemanager import FileContentsManager
from traitlets.config import PyFileConfigLoader

from invlab.widgets.saving import strip_outputs

REPO = Path(__file__).resolve().parents[1]


def _notebook_with_outputs() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)", execution_count=3,
                                     outputs=[nbformat.v4.new_output("stream", text="1\n")])
    nb.cells = [nbformat.v4.new_markdown_cell("# title"), cell]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


def test_the_shipped_jupyter_config_saves_notebooks_without_outputs(tmp_path):
    config = PyFileConfigLoader("jupyter_server_config.py", path=str(REPO / "scripts" / "jupyter")).load_config()
    manager = FileContentsManager(root_dir=str(tmp_path), config=config)
    manager.save({"type": "notebook", "format": "json", "content": _notebook_with_outputs()}, "study.ipynb")
    saved = json.loads((tmp_path / "study.ipynb").read_text())
    code = saved["cells"][1]
    assert "".join(code["source"]) == "print(1)" and code["outputs"] == [] and code["execution_count"] is None
    assert "".join(saved["cells"][0]["source"]) == "# title" and "widgets" not in saved["metadata"]


def test_other_files_pass_the_hook_unchanged():
    model = {"type": "file", "content": "text"}
    strip_outputs(model)
    assert model == {"type": "file", "content": "text"}


def test_the_shipped_notebooks_carry_no_outputs():
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        assert not any(c.get("outputs") for c in cells if c["cell_type"] == "code"), path.name


def test_lab_script_passes_allow_root_as_root_and_the_config_folder(tmp_path):
    """The script with `jupyter` replaced by a stub that prints its arguments and config path."""
    fake = tmp_path / "repo"
    (fake / "scripts").mkdir(parents=True)
    (fake / "scripts" / "lab.sh").write_text((REPO / "scripts" / "lab.sh").read_text())
    (fake / "scripts" / "setup.sh").write_text("true\n")
    (fake / ".venv" / "bin").mkdir(parents=True)
    stub = fake / ".venv" / "bin" / "jupyter"
    stub.write_text('#!/usr/bin/env bash\necho "$@"\necho "$JUPYTER_CONFIG_PATH"\n')
    stub.chmod(0o755)
    out = subprocess.run(["bash", str(fake / "scripts" / "lab.sh"), "--no-browser"], capture_output=True, text=True,
                         check=True, env={**os.environ, "JUPYTER_CONFIG_PATH": ""}).stdout.splitlines()
    assert out[0].startswith("lab --notebook-dir=notebooks") and out[0].endswith("--no-browser")
    assert ("--allow-root" in out[0]) == (os.getuid() == 0)
    assert out[1] == f"{fake}/scripts/jupyter"
