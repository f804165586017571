# The two commands of the README: `make demo` and `make test`. Each sets itself up.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch with the torchvision built for it (timm needs torchvision): a matching pair, installed together.
TORCH_VERSION ?= 2.14.1
TORCHVISION_VERSION ?= 0.29.1

.PHONY: setup demo lint test clean fashion-mnist gpu-check

# The virtual environment is made once; torch and torchvision are installed before the project,
# as the pair given above, because a bare `torch` requirement with no torch present pulls whatever
# CUDA build PyPI has, and PyPI's torchvision must match the torch beside it.
$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch, torchvision, sys; sys.exit(not (torch.__version__.startswith('$(TORCH_VERSION)') \
	  and torchvision.__version__.startswith('$(TORCHVISION_VERSION)')))" 2>/dev/null || \
	  $(PY) -m pip install -q torch==$(TORCH_VERSION) torchvision==$(TORCHVISION_VERSION)
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# Fashion-MNIST comes from Debian's package where apt is available (offline-installable here).
# (apt-get update only when the package lists do not know it yet; sudo only when not root.)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
fashion-mnist:
	@test -d /usr/share/datasets/fashion-mnist || \
	  { command -v apt-get >/dev/null && \
	    { $(SUDO) apt-get install -y -q dataset-fashion-mnist || \
	      { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist; }; }; } || \
	  echo "Could not install dataset-fashion-mnist; the demo will say where to put the data."

demo: setup fashion-mnist
	$(VENV)/bin/ait demo

# Lint first (seconds): style, formatting and the import layers of pyproject.toml; then the suite.
lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest -q

# The GPU smoke check (scripts/gpu_check.sh): the machine's own python3 and torch, nothing installed,
# since a GPU machine may have no network and an older torch. GPU_CHECK_ARGS="--device cpu" tries it here.
gpu-check:
	PYTHON=$(PYTHON) bash scripts/gpu_check.sh $(GPU_CHECK_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
