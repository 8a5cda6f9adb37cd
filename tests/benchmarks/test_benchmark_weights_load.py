"""benchmarks/weights_load.py: loads shipped weights in a fresh process with the network cut
off, and reports the median of its repetitions."""

import json

import numpy as np
import pytest

from benchmarks import weights_load as bench


def test_a_fresh_process_loads_weights_with_the_network_cut_off(tmp_path):
    bench.main(["--names", "lenet5.mnist", "--repeats", "2", "--results-dir", str(tmp_path)])
    results = json.loads((tmp_path / "weights_load.json").read_text())
    row = results["weights"]["lenet5.mnist"]
    assert len(row["runs"]) == 2
    for key in ("import_seconds", "first_seconds", "again_seconds"):
        assert row[key] == pytest.approx(np.median([r[key] for r in row["runs"]]))
        assert row[key] > 0
    assert "| lenet5.mnist |" in (tmp_path / "weights_load.md").read_text()


def test_the_child_process_really_has_no_network():
    """The guard the timings run under: a connection attempt fails before it leaves."""
    import subprocess
    import sys

    probe = bench.CHILD.split("started = ")[0] + (
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', 9))\n"
        "except OSError as error:\n    print('refused:', error)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert "network cut off" in done.stdout


def test_a_failing_load_names_the_weights():
    with pytest.raises(RuntimeError, match="lenet5.nonexistent"):
        bench.one_process("lenet5.nonexistent")
