"""Load the compiled extension and make sure it matches the installed torch."""

from types import ModuleType

import torch


def load_extension() -> ModuleType:
    """tpainn._C, or an ImportError with the fix when it is missing or was built against another torch."""
    try:
        from tpainn import _C
    except ImportError as err:
        raise ImportError(
            f"tpainn's C++ extension could not be loaded ({err}). Rebuild it against the installed torch: "
            "`pip install --no-build-isolation .` (or `make install`)."
        ) from err
    if _C.torch_version != torch.__version__:
        raise ImportError(
            f"tpainn's C++ extension was built against torch {_C.torch_version}, but torch {torch.__version__} "
            "is installed. Rebuild it: `pip install --no-build-isolation --force-reinstall --no-deps .`"
        )
    return _C
