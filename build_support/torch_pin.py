"""scikit-build-core metadata provider (pyproject.toml, [[tool.dynamic-metadata]]): which torch tpainn is
built against, and the pin of the wheel to it.

The C++ extension and the LAMMPS plugin link libtorch, which has no stable ABI, so a wheel is only good for
the torch it was built against: its metadata requires exactly that version (`torch==<version>`), and pip
never pairs it with another torch. The build torch is

- the one the build environment already has (`pip install --no-build-isolation .`, `make install`);
- in pip's isolated build (`pip install .`), the version installed where pip installs tpainn, so that an
  existing torch is kept rather than replaced; a local build of torch (`2.13.0+cpu`, `2.11.0+cu130`, from
  the PyTorch index) cannot be fetched again reliably, so that case stops at once and names
  --no-build-isolation;
- otherwise the newest torch pip allows (in a new environment: the PyPI build, CUDA on Linux, which the
  CPU build links without a CUDA toolkit).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
import sysconfig

__all__ = ["build_state", "dynamic_metadata", "dynamic_wheel", "get_requires_for_dynamic_metadata"]

_build_state = "wheel"


def _target_environment_torch() -> str | None:
    """The torch version installed in the environment pip installs into, when it is hidden from this process.

    pip runs the build backend with the target environment's interpreter and hides that environment's
    site-packages behind the isolated build environment (its sitecustomize takes them off sys.path).
    """
    hidden = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")} - set(sys.path)
    for dist in importlib.metadata.distributions(path=sorted(p for p in hidden if os.path.isdir(p))):
        if (dist.metadata["Name"] or "").lower() == "torch":
            return dist.version
    return None


def get_requires_for_dynamic_metadata(_settings=None) -> list[str]:
    """The torch the build environment needs (nothing when torch is importable already)."""
    if importlib.util.find_spec("torch") is not None:
        return []
    installed = _target_environment_torch()
    if installed is None:
        return ["torch"]
    if "+" in installed:
        sys.stderr.write(
            f"tpainn: torch {installed} is installed here, a build an isolated build environment cannot fetch; "
            "build against it with: pip install --no-build-isolation .\n"
        )
        raise SystemExit(1)
    return [f"torch=={installed}"]


def build_state(state: str) -> None:
    global _build_state
    _build_state = state


def dynamic_metadata(_settings, _project) -> dict:
    if _build_state == "sdist":
        return {"dependencies": []}  # an sdist is not built against any torch (see dynamic_wheel)
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            "tpainn is built against an installed torch: install torch first when building with "
            "--no-build-isolation"
        ) from None
    return {"dependencies": [f"torch=={version}"]}


def dynamic_wheel(_settings) -> dict:
    """The pin is decided when the wheel is built: an sdist's dependencies say so (METADATA `Dynamic`)."""
    return {"dependencies": True}
