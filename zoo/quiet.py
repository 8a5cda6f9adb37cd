"""Keep TensorFlow's start-up noise out of training output.

TensorFlow 2.17+ logs through absl's C++ logger before anything can configure it
("All log messages before absl::InitializeLog()", `cudart_stub`, `cuInit`,
`cpu_feature_guard`, oneDNN notices), and neither `TF_CPP_MIN_LOG_LEVEL` nor absl's Python
logger reaches those lines. So `silence_tensorflow()` imports TensorFlow (and initialises
its devices) with the process's stderr pointed at a temporary file, then writes back every
captured line that is not an info or warning line of that start-up chatter: errors still
show. `import zoo` calls it first thing. `LOSSLAB_TF_LOGS=1` turns it off.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import sys
import tempfile

# absl info/warning lines ("I0000 00:00:...", "W0000 ..."), the banner lines around them, and
# the "no GPU here" errors (cuInit, cuda_platform) that a CPU-only machine always prints, and
# the tf.data "NodeDef mentions attribute" notice of a newer graph on an older runtime
NOISE = re.compile(r"^([IW]\d{4} |E\d{4} .*(cuInit|cuda_platform|cuda_executor|cudart_stub|"
                   r"NodeDef mentions attribute|oneDNN supports)|"
                   r"WARNING: All log messages before absl::InitializeLog|"
                   r"To enable the following instructions:)")


def _tensorflow_backend() -> bool:
    return (os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow"
            and importlib.util.find_spec("tensorflow") is not None)


def silence_tensorflow() -> None:
    """Import TensorFlow quietly (once; a no-op when it is already imported or not used)."""
    if os.environ.get("LOSSLAB_TF_LOGS") == "1":
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if "tensorflow" in sys.modules or not _tensorflow_backend():
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_logical_devices()  # device start-up logs its own lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        kept = [line for line in captured.read().decode(errors="replace").splitlines()
                if line.strip() and not NOISE.match(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)


_PIPE = {}


def filter_stderr() -> None:
    """For command-line runs: drop TensorFlow's chatter from stderr for the whole process.

    Some lines come later than the import (e.g. "NodeDef mentions attribute ..." when a
    tf.data pipeline is built), so the entry points (`python -m zoo.train`, `zoo.demo`) route
    file descriptor 2 through a pipe and a thread that drops the `NOISE` lines and passes
    everything else on unchanged (progress bars included). Not used on library import.
    """
    if _PIPE or os.environ.get("LOSSLAB_TF_LOGS") == "1":
        return
    import atexit
    import threading

    sys.stderr.flush()
    read_end, write_end = os.pipe()
    original = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)

    def pump():
        pending = b""
        while True:
            chunk = os.read(read_end, 65536)
            if not chunk:
                break
            pieces = re.split(rb"(?<=[\r\n])", pending + chunk)
            pending = pieces.pop()  # an unterminated piece waits for the rest of its line
            kept = b"".join(p for p in pieces
                            if not NOISE.match(p.decode(errors="replace")))
            if kept:
                os.write(original, kept)
        if pending and not NOISE.match(pending.decode(errors="replace")):
            os.write(original, pending)

    thread = threading.Thread(target=pump, name="losslab-stderr-filter", daemon=True)
    thread.start()
    _PIPE.update(original=original, thread=thread)

    def restore():
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the pump sees EOF
        thread.join(timeout=2)

    atexit.register(restore)
