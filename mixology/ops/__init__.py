"""The ops, one family a folder: ``mixology/ops/<family>/`` holds its einops reference, one
file per implementation, its input checks (``checks.py``), its mutants (``mutants.py``) and,
in ``__init__.py``, the registration of its ops and implementations (run on import) and the
Triton launches ``gpu-check`` compiles (``gpu_check_calls``). Its spec is ``spec/<family>.py``.

Families are found, not listed: every subpackage here not named ``_...`` is one, imported (and
so registered) in name order. ``_kernels`` holds what the kernels share.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from types import ModuleType

from mixology import registry

FAMILIES = tuple(m.name for m in pkgutil.iter_modules(__path__)
                 if m.ispkg and not m.name.startswith("_"))

for _family in FAMILIES:
    importlib.import_module(f"{__name__}.{_family}")


def family(name: str) -> ModuleType:
    """The family's package, ``mixology.ops.<name>``."""
    if name not in FAMILIES:
        raise ValueError(f"unknown op family {name!r}; known: {', '.join(FAMILIES)}")
    return importlib.import_module(f"{__name__}.{name}")


def mutants(op: str | None = None, device: str | None = None) -> list[registry.Mutant]:
    """The registered mutants (of ``op``, runnable on ``device``): every family's
    ``mutants.py`` is imported first, the first time they are asked for."""
    for name in FAMILIES:
        module = f"{__name__}.{name}.mutants"
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    return registry.mutants(op, device)
