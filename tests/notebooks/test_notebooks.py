"""Every notebook runs top to bottom in SMOKE mode (its `parameters` cell, SMOKE = True);
one stored with outputs says it was a full run and that its code is the code that ran; every
notebook has its plain-text (jupytext percent) pair, up to date."""

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("execute", ROOT / "notebooks" / "execute.py")
execute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(execute)


def smoke(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "a notebook needs exactly one cell tagged 'parameters'"
    assert "SMOKE = False" in cells[0].source, "the parameters cell must define SMOKE = False"
    cells[0].source = cells[0].source.replace("SMOKE = False", "SMOKE = True", 1)
    return notebook


def test_there_are_notebooks():
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_stored_outputs_come_from_the_code_as_it_is(path):
    notebook = nbformat.read(path, as_version=4)
    if not any(c.get("outputs") for c in notebook.cells if c.cell_type == "code"):
        return  # nothing stored, nothing to vouch for
    run = notebook.metadata.get("losslab_execution", {})
    assert run.get("code_sha256") == execute.code_hash(notebook), (
        f"{path.name}: its code cells changed since its outputs were produced; run "
        f"python notebooks/execute.py {path.relative_to(ROOT)}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_plain_text_pair_is_up_to_date(path):
    pair = execute.pair_path(path)
    assert pair.exists(), f"run python notebooks/execute.py --sync {path.relative_to(ROOT)}"
    assert pair.read_text() == execute.pair_text(nbformat.read(path, as_version=4)), (
        f"{pair.name} differs from {path.name}: run python notebooks/execute.py --sync "
        f"{path.relative_to(ROOT)}")


def test_the_code_hash_sees_a_changed_cell():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"),
                                               nbformat.v4.new_markdown_cell("text")])
    before = execute.code_hash(notebook)
    notebook.cells[1].source = "other text"  # prose does not change what ran
    assert execute.code_hash(notebook) == before
    notebook.cells[0].source = "x = 2"
    assert execute.code_hash(notebook) != before


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
