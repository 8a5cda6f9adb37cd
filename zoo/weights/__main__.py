"""`python -m zoo.weights list | verify | build NAME...`: the shipped weights."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    from zoo import quiet

    quiet.silence_tensorflow()
    from zoo.weights import WeightsError, card, list_weights, weights_file
    from zoo.weights.recipes import RECIPES, build

    parser = argparse.ArgumentParser(prog="python -m zoo.weights")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="the shipped weights and their headline metrics")
    commands.add_parser("verify", help="check every file's SHA-256 against its card")
    builder = commands.add_parser("build", help="retrain weights from their recipe")
    builder.add_argument("names", nargs="+", help=f"of {', '.join(RECIPES)}")
    builder.add_argument("--workdir", default="runs/weights", help="run folders (resumable)")
    args = parser.parse_args(argv)
    if args.command == "build":
        for name in args.names:
            found = build(name, args.workdir)
            print(f"{name}: {found['metrics']} sha256 {found['sha256'][:16]}...")
        return 0
    status = 0
    for name in list_weights():
        found = card(name)
        if args.command == "verify":
            try:
                weights_file(name)
                print(f"{name}: ok ({found['sha256'][:16]}...)")
            except WeightsError as error:
                print(f"{name}: {error}", file=sys.stderr)
                status = 2
        else:
            print(f"{name}: {found['model']}, {found['metrics']}, {found['size_bytes']} bytes")
    return status


if __name__ == "__main__":
    from zoo import quiet

    quiet.filter_stderr()
    sys.exit(main())
