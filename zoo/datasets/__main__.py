"""`python -m zoo.datasets fetch NAME [NAME ...]`: obtain and cache datasets ahead of time."""

import argparse
import sys

from zoo.datasets import DatasetUnavailable, fetch, list_datasets


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m zoo.datasets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    fetch_parser = sub.add_parser("fetch", help="obtain datasets and cache them")
    fetch_parser.add_argument("names", nargs="+", choices=list_datasets())
    fetch_parser.add_argument("--data-dir", default=None)
    args = parser.parse_args(argv)
    status = 0
    for name in args.names:
        try:
            (x_train, _), (x_test, _) = fetch(name, data_dir=args.data_dir)
            print(f"{name}: {len(x_train)} train / {len(x_test)} test images of {x_train.shape[1:]}")
        except DatasetUnavailable as error:
            print(error, file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
