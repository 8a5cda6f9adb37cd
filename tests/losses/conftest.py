"""Tests of the `losses` package. Their helpers live next to them and are imported by name:

- `loss_contract`: what every loss must do (config, save/load, sample_weight, policies);
- `gradients`: value and gradient with whichever Keras backend is active.

The test files have basenames of their own (`test_loss_*.py`): `tests/` has no `__init__.py`
files, so pytest imports every test file as a top-level module and two equal basenames would
clash. (An `__init__.py` here would make this folder a package named `losses`, which would
shadow the package under test.)
"""

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
