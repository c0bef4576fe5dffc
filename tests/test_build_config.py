"""The CMake configure step (cmake/TPaiNNTorch.cmake) for the torch builds users have: CPU or CUDA, with or
without nvcc, and TPAINN_CUDA. Configure only (seconds each); a CUDA torch is stood in for by a stub `torch`
module over this environment's headers and libraries, so nothing is downloaded. The full `pip install` of a
CUDA torch is tests/test_pip_install.py (slow)."""

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CMAKE = shutil.which("cmake", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
needs_cmake = pytest.mark.skipif(CMAKE is None, reason="cmake is not installed")


def path_without_nvcc() -> str:
    return os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "nvcc").exists()
    )


def configure(tmp_path, cuda_mode=None, torch_stub=None, nvcc=False):
    """`cmake -S <checkout>` into a new build directory: (return code, output)."""
    env = {k: v for k, v in os.environ.items() if k not in ("TPAINN_CUDA", "CUDACXX", "PYTHONPATH")}
    if cuda_mode is not None:
        env["TPAINN_CUDA"] = cuda_mode
    if torch_stub is not None:
        env["PYTHONPATH"] = str(torch_stub)  # ahead of site-packages: `import torch` finds the stub
    if not nvcc:
        env["PATH"] = path_without_nvcc()
    build = tmp_path / "build"
    done = subprocess.run(
        [CMAKE, "-S", ROOT, "-B", build, f"-DPython_EXECUTABLE={sys.executable}", "-G", "Unix Makefiles"],
        env=env, capture_output=True, text=True, timeout=600,
    )
    return done.returncode, done.stdout + done.stderr


def stub_torch(directory: Path, cuda) -> Path:
    """A `torch` module built with CUDA `cuda` (None: a CPU build), over this torch's include/ and lib/."""
    package = directory / "torch"
    package.mkdir(parents=True)
    real = Path(torch.__file__).parent
    for name in ("include", "lib"):
        (package / name).symlink_to(real / name)
    local = "cpu" if cuda is None else "cu" + cuda.replace(".", "")
    (package / "__init__.py").write_text(textwrap.dedent(f"""
        import types
        __version__ = "{torch.__version__.split('+')[0]}+{local}"
        version = types.SimpleNamespace(cuda={cuda!r})
        _C = types.SimpleNamespace(_GLIBCXX_USE_CXX11_ABI={torch._C._GLIBCXX_USE_CXX11_ABI})
        __config__ = types.SimpleNamespace(parallel_info=lambda: {torch.__config__.parallel_info()!r})
    """))
    return directory


@pytest.fixture(scope="module")
def cuda_torch(tmp_path_factory) -> Path:
    return stub_torch(tmp_path_factory.mktemp("cuda-torch"), "13.0")


@pytest.fixture(scope="module")
def cpu_torch(tmp_path_factory) -> Path:
    return stub_torch(tmp_path_factory.mktemp("cpu-torch"), None)


@needs_cmake
def test_installed_torch_without_nvcc_is_a_cpu_build(tmp_path):
    rc, out = configure(tmp_path)
    assert rc == 0, out
    assert "tpainn: CPU build (C++" in out and f"against torch {torch.__version__}" in out, out
    if "parallel backend: OpenMP" in torch.__config__.parallel_info():  # the kernels' threads need OpenMP too
        assert "tpainn: fused kernels run on torch's threads (OpenMP" in out, out


@needs_cmake
def test_cuda_required_with_cpu_torch_fails_clearly(tmp_path, cpu_torch):
    rc, out = configure(tmp_path, cuda_mode="1", torch_stub=cpu_torch, nvcc=True)
    assert rc != 0
    assert "TPAINN_CUDA=1, but the CUDA sources cannot be built: torch " in " ".join(out.split())
    assert "+cpu was built without CUDA" in " ".join(out.split()), out


@needs_cmake
def test_cuda_torch_without_nvcc_is_a_cpu_build(tmp_path, cuda_torch):
    """The common case: a CUDA torch from PyPI and no CUDA toolkit (find_package(Torch) stops there)."""
    rc, out = configure(tmp_path, torch_stub=cuda_torch)
    assert rc == 0, out
    out = " ".join(out.split())
    assert "tpainn: CPU build" in out and "+cu130" in out and "no CUDA compiler (nvcc) found" in out, out


@needs_cmake
def test_cuda_required_without_nvcc_fails_clearly(tmp_path, cuda_torch):
    rc, out = configure(tmp_path, cuda_mode="1", torch_stub=cuda_torch)
    assert rc != 0
    assert "TPAINN_CUDA=1, but the CUDA sources cannot be built: no CUDA compiler (nvcc) found" in " ".join(out.split())


@needs_cmake
def test_cuda_off_ignores_nvcc(tmp_path, cuda_torch):
    rc, out = configure(tmp_path, cuda_mode="0", torch_stub=cuda_torch, nvcc=True)
    assert rc == 0, out
    assert "tpainn: CPU build" in out and "TPAINN_CUDA=0" in out, out


# ---------------------------------------------------------------- the torch pin (build_support/torch_pin.py)


@pytest.fixture
def torch_pin():
    spec = importlib.util.spec_from_file_location("torch_pin", ROOT / "build_support" / "torch_pin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wheel_pins_the_build_torch(torch_pin):
    assert torch_pin.dynamic_metadata({}, {}) == {"dependencies": [f"torch=={importlib.metadata.version('torch')}"]}
    torch_pin.build_state("sdist")
    assert torch_pin.dynamic_metadata({}, {}) == {"dependencies": []}


def test_build_requirement_follows_the_installed_torch(torch_pin, monkeypatch, capsys):
    """Without build isolation nothing is added; in pip's isolated build, the target environment's torch."""
    assert torch_pin.get_requires_for_dynamic_metadata({}) == []  # torch is importable here
    monkeypatch.setattr(torch_pin.importlib.util, "find_spec", lambda name: None)
    for installed, requires in [(None, ["torch"]), ("2.14.1", ["torch==2.14.1"])]:
        monkeypatch.setattr(torch_pin, "_target_environment_torch", lambda: installed)
        assert torch_pin.get_requires_for_dynamic_metadata({}) == requires
    monkeypatch.setattr(torch_pin, "_target_environment_torch", lambda: "2.13.0+cpu")
    with pytest.raises(SystemExit):
        torch_pin.get_requires_for_dynamic_metadata({})
    assert "pip install --no-build-isolation ." in capsys.readouterr().err
