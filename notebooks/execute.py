"""Execute a notebook in full mode and store it with its outputs and a paired plain-text copy.

    python notebooks/execute.py notebooks/02_margin_losses.ipynb [...]
    python notebooks/execute.py --sync notebooks/*.ipynb     # only rewrite the .py pairs

keras-io stores every example with its outputs, so readers learn from figures and numbers
without running anything. Each notebook here is executed top to bottom as written (its
`parameters` cell says `SMOKE = False`), in `notebooks/` as the working folder, and saved
with:

- its outputs, and `metadata.losslab_execution`: `mode` ("full (SMOKE = False)"),
  `seconds`, `machine` (cores, architecture, GPU or not), `date`, and `code_sha256`, the
  SHA-256 of its code cells (`code_hash`). `tests/notebooks` fails when a notebook's code
  cells no longer hash to that value: its outputs would not be those of its code;
- a jupytext percent-format pair `notebooks/percent/NAME.py` (code and markdown as plain
  text, no outputs), so that a change to a notebook reads as a diff in review.

CI runs every notebook in SMOKE mode (`tests/notebooks`); this script is for the full runs.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import platform
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
PAIRS = HERE / "percent"
PAIR_FORMAT = "py:percent"
FULL = "full (SMOKE = False)"


def code_hash(notebook) -> str:
    """SHA-256 of the notebook's code cells, in order (their sources only)."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode())
            digest.update(b"\0")
    return digest.hexdigest()


def pair_path(path: Path) -> Path:
    return PAIRS / (Path(path).stem + ".py")


def pair_text(notebook) -> str:
    """The percent-format text of a notebook (outputs and execution metadata left out)."""
    bare = nbformat.from_dict(notebook)
    # no header: it would name the jupytext version, and the pair would change with it
    bare.metadata = {"jupytext": {"notebook_metadata_filter": "-all"}}
    return jupytext.writes(bare, fmt=PAIR_FORMAT)


def machine() -> str:
    gpu = "a GPU" if os.path.exists("/dev/nvidia0") else "no GPU"
    return f"{os.cpu_count()} CPU cores, {platform.machine()}, {gpu}"


def write_pair(path: Path, notebook) -> Path:
    PAIRS.mkdir(exist_ok=True)
    target = pair_path(path)
    target.write_text(pair_text(notebook))
    return target


def execute(path: Path, timeout: int) -> None:
    notebook = nbformat.read(path, as_version=4)
    parameters = [c for c in notebook.cells
                  if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(parameters) != 1 or "SMOKE = False" not in parameters[0].source:
        raise SystemExit(f"{path}: needs one cell tagged 'parameters' with SMOKE = False")
    print(f"[execute] {path.name}: running in full mode ...", flush=True)
    started = time.perf_counter()
    NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    seconds = round(time.perf_counter() - started)
    notebook.metadata["losslab_execution"] = {
        "mode": FULL, "seconds": seconds, "machine": machine(),
        "date": datetime.date.today().isoformat(), "code_sha256": code_hash(notebook)}
    nbformat.write(notebook, path)
    write_pair(path, notebook)
    print(f"[execute] {path.name}: {seconds} s, stored with outputs", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--sync", action="store_true",
                        help="only rewrite the percent-format pairs; execute nothing")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        if args.sync:
            print(write_pair(path, nbformat.read(path, as_version=4)))
        else:
            execute(path.resolve(), args.timeout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
