"""How long loading shipped weights takes, with the network cut off.

    python benchmarks/weights_load.py [--names lenet5.mnist ...] [--repeats 5]

Each repetition is a fresh Python process, as a user's first call is: it cuts the network
off (every `socket.connect` raises), imports `zoo` (timed apart: Keras and the backend load
there), then times `zoo.create_model(MODEL, weights=TAG)`, which builds the model, checks
the file's SHA-256 against its card and loads it; then times the same call again (warm: the
model's graph code already traced once). Medians over `--repeats` processes; the target is
under a second for the first call.

Writes `results/weights_load.json` and `weights_load.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks.common import RESULTS, environment, write_json, write_text  # noqa: E402

TARGET_SECONDS = 1.0
# run in the child process: no network, then the timings, printed as one JSON line
CHILD = """
import json, socket, sys, time

def refuse(*args, **kwargs):
    raise OSError("network cut off by benchmarks/weights_load.py")

socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
started = time.perf_counter()
import zoo
imported = time.perf_counter()
model_name, tag = sys.argv[1].split(".", 1)
zoo.create_model(model_name, weights=tag)
first = time.perf_counter()
zoo.create_model(model_name, weights=tag)
second = time.perf_counter()
print(json.dumps({"import_seconds": imported - started, "first_seconds": first - imported,
                  "again_seconds": second - first}))
"""


def one_process(name: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"loading {name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(results) -> str:
    lines = ["# Loading shipped weights, network cut off", "",
             f"Median over {results['repeats']} fresh processes; `import zoo` timed apart. "
             f"Target: the first `create_model(..., weights=...)` under {TARGET_SECONDS:g} s.",
             "", "| weights | import zoo | first create_model | again | target |",
             "|---|---|---|---|---|"]
    for name, row in results["weights"].items():
        lines.append(f"| {name} | {row['import_seconds']:.2f} s | {row['first_seconds']:.2f} s "
                     f"| {row['again_seconds']:.2f} s | "
                     f"{'met' if row['first_seconds'] < TARGET_SECONDS else 'NOT met'} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    from zoo.weights import list_weights

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", nargs="+", default=None, help="default: every shipped one")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    names = args.names or list_weights()
    results = {"repeats": args.repeats, "target_seconds": TARGET_SECONDS, "weights": {},
               "environment": environment()}
    for name in names:
        runs = [one_process(name) for _ in range(args.repeats)]
        row = {key: float(np.median([r[key] for r in runs])) for key in runs[0]}
        results["weights"][name] = {**row, "runs": runs}
        print(f"[weights_load] {name}: first {row['first_seconds']:.2f} s, import "
              f"{row['import_seconds']:.2f} s", flush=True)
    write_json("weights_load", results, args.results_dir)
    write_text("weights_load.md", markdown(results), args.results_dir)
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
