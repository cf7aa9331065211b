"""CompressAI's image-codec parts, imported without its point-cloud and dataset code.

``import compressai`` runs ``compressai/__init__.py``, which imports every subpackage: its
datasets, its point-cloud models and ``compressai.registry.transforms``, which imports
``torch_geometric`` (and with it ``torch._dynamo``). A learned-codec command uses none of that,
yet paid for it on every start (the import time: benchmarks/README.md, "Measurements behind
defaults").

`models` therefore imports ``compressai.models`` / ``compressai.entropy_models`` under two
**lazy package shells** put into ``sys.modules`` (only when nothing has imported CompressAI yet):

- ``compressai``: the real package (its spec and ``__path__``, so every submodule imports as
  usual), without running its ``__init__``; it carries the entropy-coder functions that
  ``__init__`` defines (``get_entropy_coder``, ``set_entropy_coder``,
  ``available_entropy_coders``: rANS only, as CompressAI without ``range_coder``) and
  ``__version__``; any other attribute (``compressai.zoo``, ``compressai.datasets``, ...)
  imports that submodule on first access.
- ``compressai.registry``: the names of ``compressai.registry.torch`` at once;
  ``TRANSFORMS`` and ``register_transform`` import ``compressai.registry.transforms`` (and so
  torch_geometric) on first access.

Code that later uses the rest of CompressAI still finds it, only later. If CompressAI's layout
no longer fits (the models fail to import under the shells), the shells are removed and
CompressAI is imported the ordinary way: slower, never wrong. Importing this module does all
this (`models` runs once at import): innrsic's modules that use CompressAI import it first
(``# isort: split`` keeps it before the ``compressai`` imports).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
import warnings
from typing import Any

_ROOT = "compressai"
_REGISTRY = "compressai.registry"
_LAZY_REGISTRY = {"TRANSFORMS", "register_transform"}


def models() -> types.ModuleType:
    """``compressai.models``, with ``compressai.entropy_models`` imported (see module doc)."""
    with warnings.catch_warnings():  # compressai's optional point-cloud deps use jit.script
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        if _ROOT not in sys.modules:
            try:
                return _import_under_shells()
            except (ImportError, AttributeError):
                for name in [n for n in sys.modules if n == _ROOT or n.startswith(_ROOT + ".")]:
                    del sys.modules[name]
        importlib.import_module(_ROOT)
        importlib.import_module(f"{_ROOT}.entropy_models")
        return importlib.import_module(f"{_ROOT}.models")


def is_shell(module: types.ModuleType) -> bool:
    """Whether `module` is one of the lazy package shells."""
    return getattr(module, "__innrsic_shell__", False)


def _import_under_shells() -> types.ModuleType:
    root = _shell(_ROOT, _root_getattr)
    from compressai.version import __version__

    root.__dict__.update(
        __version__=__version__,
        _entropy_coder="ans",
        _available_entropy_coders=["ans"],
        get_entropy_coder=lambda: root._entropy_coder,
        available_entropy_coders=lambda: root._available_entropy_coders,
        set_entropy_coder=lambda name: _set_entropy_coder(root, name),
    )
    registry = _shell(_REGISTRY, _registry_getattr)
    torch_registry = importlib.import_module(f"{_REGISTRY}.torch")
    registry.__dict__.update(
        {k: v for k, v in vars(torch_registry).items() if not k.startswith("_")}
    )
    importlib.import_module(f"{_ROOT}.entropy_models")
    return importlib.import_module(f"{_ROOT}.models")


def _shell(name: str, getattr_: Any) -> types.ModuleType:
    """The package `name` from its spec, in ``sys.modules``, without running its ``__init__``."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError(f"{name} is not an importable package")
    module = importlib.util.module_from_spec(spec)
    module.__getattr__ = getattr_  # type: ignore[method-assign]
    module.__innrsic_shell__ = True  # type: ignore[attr-defined]
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _root_getattr(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return importlib.import_module(f"{_ROOT}.{name}")
    except ModuleNotFoundError as exc:
        raise AttributeError(f"module {_ROOT!r} has no attribute {name!r}") from exc


def _registry_getattr(name: str) -> Any:
    if name not in _LAZY_REGISTRY:
        raise AttributeError(f"module {_REGISTRY!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{_REGISTRY}.transforms"), name)


def _set_entropy_coder(root: types.ModuleType, name: str) -> None:
    if name not in root._available_entropy_coders:
        known = root._available_entropy_coders
        raise ValueError(f"invalid entropy coder {name!r}, choose from {known}")
    root._entropy_coder = name


models()
