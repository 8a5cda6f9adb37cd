"""`python -m zoo.train`: the training runner's command line (see `zoo.training`).

    python -m zoo.train --model lenet5 --dataset fashion_mnist --loss softmax \
        --epochs 10 --batch-size 128 --seed 0 --out runs/NAME [--resume]
    python -m zoo.train --model crnn_small                # text: synth_text, CTC
    python -m zoo.train --model detector                  # detection: synthetic scenes, EIoU

From Python: `zoo.training.run(TrainConfig(...))` returns the metrics dict.
"""

import sys

from zoo import quiet

quiet.silence_tensorflow()

from zoo.training import ConfigError, TrainConfig, run  # noqa: E402
from zoo.training.cli import main, parse_args  # noqa: E402

__all__ = ["ConfigError", "TrainConfig", "main", "parse_args", "run"]

if __name__ == "__main__":
    quiet.filter_stderr()  # later TensorFlow chatter too, for this command-line process only
    sys.exit(main())
