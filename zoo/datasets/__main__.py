"""`python -m zoo.datasets fetch NAME [NAME ...]`: obtain and cache datasets ahead of time.

Exit status: 0 when every dataset was obtained; 2 when one was not (`DataError`: no source
has it, or its files are bad), after one line per failure on stderr (`--verbose` adds every
source tried and why it failed).
"""

import argparse
import sys

from zoo.datasets import DataError, fetch_stored, list_datasets

PROG = "python -m zoo.datasets"


def main(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_parser = sub.add_parser("fetch", help="obtain datasets and cache them")
    fetch_parser.add_argument("names", nargs="+", choices=list_datasets() + ["neon_trees"])
    fetch_parser.add_argument("--data-dir", default=None)
    fetch_parser.add_argument("-v", "--verbose", action="store_true",
                              help="on failure, also list every source tried and why")
    args = parser.parse_args(argv)
    status = 0
    for name in args.names:
        try:
            if name == "neon_trees":  # detection tiles: a Pascal VOC folder, not arrays
                from zoo.datasets.neon_trees import neon_trees_folder

                print(f"{name}: Pascal VOC folder {neon_trees_folder()}")
                continue
            (x_train, _), (x_test, _) = fetch_stored(name, data_dir=args.data_dir)
            print(f"{name}: {len(x_train)} train / {len(x_test)} test images of {x_train.shape[1:]}")
        except DataError as error:
            print(f"{PROG}: error: {error.summary}", file=sys.stderr)
            details = getattr(error, "details", "")
            if args.verbose and details:
                print(details, file=sys.stderr)
            status = error.exit_code
    return status


if __name__ == "__main__":
    sys.exit(main())
