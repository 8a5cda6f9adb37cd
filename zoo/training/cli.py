"""The command line of the training runner: `python -m zoo.train --model NAME ...`.

Every option either works for every task or is refused, in one line that says why, for the
tasks that cannot use it. Bad input (an unknown name, a missing folder, a corrupt file, a
number out of range) ends with one line on stderr and exit code 2; `--debug` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import sys

from zoo.training.config import MIXED_PRECISION, ConfigError, TrainConfig
from zoo.training.distribution import DISTRIBUTE

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (no usage block) and exit code 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _checked(parse, accept, requirement, what="a number"):
    """An argparse type: `parse(text)`, then `accept(value)` or the error "must be ..."."""
    def convert(text):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"must be {requirement}, got {value}")
        return value

    return convert


def _whole(minimum):
    return _checked(int, lambda v: v >= minimum, f">= {minimum}", "a whole number")


_fraction = _checked(float, lambda v: 0.0 <= v < 1.0, "in [0, 1)")
_positive_float = _checked(float, lambda v: v > 0, "> 0")


def _task_table() -> str:
    """The --help epilog: per task, its models, dataset forms, losses and options."""
    from zoo.registry import list_models
    from zoo.training.tasks import TASKS

    lines = ["tasks (chosen by --model):"]
    for task in TASKS.values():
        options = [f"--{n.replace('_', '-')}" for n, o in task.options.items()
                   if o.type != "python"]
        lines += [f"  {task.name}:",
                  f"    models:   {', '.join(list_models(task=task.name))}",
                  f"    datasets: {', '.join(task.dataset_forms)} "
                  f"(default {task.default_dataset})",
                  f"    losses:   {', '.join(task.losses())} (default {task.default_loss})",
                  f"    batch:    {task.default_batch_size} by default (--batch-size)"]
        if options:
            lines.append(f"    options:  {', '.join(options)}")
        if task.refuses:
            lines.append(f"    not used: {', '.join('--' + n.replace('_', '-') for n in task.refuses)}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from zoo.training.tasks import TASKS

    defaults = TrainConfig()
    parser = _Parser(prog="python -m zoo.train",
                     description="Train a zoo model with a LossLab loss; writes a run folder.",
                     epilog=_task_table(), formatter_class=argparse.RawDescriptionHelpFormatter)
    add = parser.add_argument
    add("--model", default=defaults.model, help=f"a registered model (default {defaults.model})")
    add("--dataset", default=None, help="a dataset form of the model's task (see below; "
        "default: the task's)")
    add("--loss", default=None, help="a loss of the model's task (see below; default: the "
        "task's)")
    add("--epochs", type=_whole(1), default=defaults.epochs)
    add("--batch-size", type=_whole(1), default=None,
        help="examples per step (default: the task's, see below)")
    add("--learning-rate", type=_positive_float, default=defaults.learning_rate,
        help="Adam's initial rate (cosine decay to 0 over the run)")
    add("--seed", type=int, default=defaults.seed)
    add("--out", default=None, help="run folder (default runs/MODEL-DATASET-LOSS)")
    add("--resume", action="store_true",
        help="continue an interrupted run in --out from its last finished epoch")
    add("--validation-split", type=_fraction, default=None,
        help="fraction of the training data held out for validation (default 0.1)")
    add("--train-limit", type=_whole(1), default=None,
        help="use the first N training samples (synth_text: lines per epoch)")
    add("--test-limit", type=_whole(1), default=None, help="use the first N test samples")
    add("--embedding-dim", type=_whole(1), default=None,
        help="embedding size, for models with a pluggable head")
    add("--data-dir", default=None, help="folder tried first for a named dataset")
    add("--trace-weights", type=_whole(0), nargs="?", const=0, default=None, metavar="N",
        help="trace weight updates (every N batches; without N once per epoch) and plot "
        "them into the run folder")
    add("--monitor-margins", action="store_true",
        help="record class separation and angular margins of the embedding on the "
        "validation split, with plots and embedding snapshots")
    add("--tensorboard", action="store_true",
        help="also log to RUN/tensorboard/ (keras.callbacks.TensorBoard)")
    add("--init-from", default=None, metavar="WEIGHTS|RUN|FILE",
        help="start from shipped weights (MODEL.TAG, python -m zoo.weights list), a run "
        "folder or a .keras file (layers whose shapes differ, e.g. another number of "
        "classes, start fresh)")
    add("--freeze-backbone", type=_whole(1), default=None, metavar="EPOCHS",
        help="train the head alone for the first EPOCHS epochs, then everything")
    add("--test-dataset", default=None, metavar="SPEC",
        help="after training, also score on all of SPEC (a dataset form of the task), "
        "into RUN/evaluations/ (as python -m zoo.evaluate); for text models trained on "
        "folder: or boxes: data, SPEC is then the test split and all of --dataset trains "
        "or validates")
    add("--mixed-precision", choices=MIXED_PRECISION, default=None,
        help="train under this Keras dtype policy: float16 or bfloat16 computations, float32 "
        "weights (mixed_float16 scales the loss); the losses compute in float32")
    add("--distribute", choices=DISTRIBUTE, default=None,
        help="data-parallel training over this machine's devices, --batch-size being the "
        "global batch: mirrored (TensorFlow's MirroredStrategy) or data-parallel (JAX, "
        "keras.distribution.DataParallel); see zoo.training.distribution")
    add("--debug", action="store_true", help="show the traceback of an error")
    seen = set()
    for task in TASKS.values():
        for name, option in task.options.items():
            if option.type == "python" or name in seen:
                continue
            seen.add(name)
            flag = "--" + name.replace("_", "-")
            if option.type is None:
                add(flag, action="store_true", default=argparse.SUPPRESS, help=option.help)
            else:
                add(flag, type=option.type, default=argparse.SUPPRESS, choices=option.choices,
                    help=f"{option.help} (default {option.default})")
    return parser


def parse_command_line(argv=None):
    """(TrainConfig, debug) from the command line; task options go to `config.options`."""
    from zoo.training.tasks import TASKS

    args = vars(build_parser().parse_args(argv))
    debug = args.pop("debug")
    task_options = {name for task in TASKS.values() for name in task.options}
    options = {name: args.pop(name) for name in list(args) if name in task_options}
    return TrainConfig(**args, options=options), debug


def parse_args(argv=None) -> TrainConfig:
    """The `TrainConfig` of a command line (defaults left to the task: see `resolve`)."""
    return parse_command_line(argv)[0]


def _one_line(error) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]


def main(argv=None) -> int:
    from pathlib import Path

    from zoo.training.runner import resolve, run

    config, debug = parse_command_line(argv)
    try:
        resolved, task = resolve(config)
        metrics = run(config)
    except (ConfigError, ValueError, OSError) as error:  # bad input: one line, exit 2
        if debug:
            raise
        print(f"error: {_one_line(error)} (--debug for the traceback)", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"\n{task.summary(metrics)}; results in {Path(resolved.out).resolve()}")
    return 0
