"""Deprecated spellings kept working: the British "centre" of older LossLab versions.

The public API spells it "center" (as "center loss", Keras and pytorch-metric-learning do).
The old names still work, with a `DeprecationWarning`, and are listed nowhere:

- module attributes (`losses.heads.CentreHead`): a module `__getattr__` from `module_aliases`;
- constructor arguments (`centre_update=`), also in the configs of saved models:
  `renamed_argument`;
- layer attributes and methods (`head.centres()`): `RenamedAttributes.__getattr__`, which
  only answers names that normal lookup did not find, so `dir()` (and TensorFlow's
  SavedModel export, which walks it) never sees them;
- head and recipe names (`build_head("centre")`): the registries' own alias tables.
"""

from __future__ import annotations

import warnings


def warn_renamed(old: str, new: str, what: str, stacklevel: int = 3):
    warnings.warn(f"{what} {old!r} is deprecated; use {new!r}", DeprecationWarning,
                  stacklevel=stacklevel)


def module_aliases(module_name: str, aliases: dict, namespace: dict):
    """A module `__getattr__` answering the deprecated names `aliases` (old -> new)."""

    def __getattr__(name):
        if name in aliases:
            warn_renamed(f"{module_name}.{name}", f"{module_name}.{aliases[name]}", "name")
            return namespace[aliases[name]]
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    return __getattr__


def renamed_argument(kwargs: dict, old: str, new: str, value, default, owner: str):
    """The value of argument `new`, taking its deprecated spelling `old` out of `kwargs`."""
    if old not in kwargs:
        return value
    old_value = kwargs.pop(old)
    if value != default:
        raise TypeError(f"{owner} got both {new!r} and its deprecated spelling {old!r}")
    warn_renamed(old, new, f"{owner} argument", stacklevel=4)
    return old_value


class RenamedAttributes:
    """Mixin: attribute names in `_renamed_attributes` (old -> new) read the new attribute."""

    _renamed_attributes: dict = {}

    def __getattr__(self, name):
        new = type(self)._renamed_attributes.get(name)
        if new is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        warn_renamed(name, new, f"{type(self).__name__} attribute")
        return getattr(self, new)
