# hma_ros: the two README commands. Each sets up .venv on first use (and only when the
# requirements change), so a fresh clone needs nothing else.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.hma-installed
export SDL_VIDEODRIVER ?= dummy
export MUJOCO_GL ?= osmesa
export PYOPENGL_PLATFORM ?= osmesa

.PHONY: demo test lint setup clean

setup: $(STAMP)

$(STAMP): requirements/*.txt setup.py setup.cfg package.xml scripts/setup_env.sh
	bash scripts/setup_env.sh $(VENV)
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) lint
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) scripts/demo.py

clean:
	rm -rf out build *.egg-info .pytest_cache
