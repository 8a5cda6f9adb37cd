"""Every notebook runs top to bottom in SMOKE mode (its `parameters` cell, SMOKE = True)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def smoke(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    assert "SMOKE = False" in cells[0].source, "the parameters cell must define SMOKE = False"
    cells[0].source = cells[0].source.replace("SMOKE = False", "SMOKE = True", 1)
    return notebook


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_smoke_mode(path, tmp_path):
    notebook = nbformat.read(path, as_version=4)
    if any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"):
        # stored outputs must be those of a full run, saying how long it took and where
        run = notebook.metadata.get("losslab_execution", {})
        assert run.get("mode", "").startswith("full"), \
            "a notebook stored with outputs must record a full (SMOKE = False) run"
        assert run.get("seconds", 0) > 0 and run.get("machine")
    client = NotebookClient(smoke(notebook), timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
