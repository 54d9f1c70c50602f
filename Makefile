# The two commands of the README: `make app` and `make test`. Each creates or updates .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 7860
PYTEST_ARGS ?=

.PHONY: app test lint format bench gallery shipped-model small-model notebooks space clean-venv

$(PY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "ifcn_viz needs Python 3.10 or newer, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# Re-install when pyproject.toml changes (stamp files record the last install).
$(VENV)/.installed-app: pyproject.toml | $(PY)
	$(PY) -m pip install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[dev]'
	@touch $@ $(VENV)/.installed-app

app: $(VENV)/.installed-app
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m ifcn_viz app --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-dev
	GRADIO_ANALYTICS_ENABLED=False $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check ifcn_viz tests bench app.py
	$(PY) -m ruff format --check ifcn_viz tests bench app.py

format: $(VENV)/.installed-dev
	$(PY) -m ruff format ifcn_viz tests bench app.py
	$(PY) -m ruff check --fix ifcn_viz tests bench app.py

bench: $(VENV)/.installed-dev
	for b in bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

notebooks: $(VENV)/.installed-dev
	$(VENV)/bin/jupyter lab notebooks/

gallery: $(VENV)/.installed-app
	$(PY) -m ifcn_viz gallery --out docs/gallery

# Re-train the models shipped in ifcn_viz/weights/ with the commands recorded in their cards (docs/TRAINING.md):
# each installs its weights and records its yardsticks (own validation, independent synthetic, real photographs).
shipped-model: $(VENV)/.installed-app
	$(PY) -m ifcn_viz train --preset tiny --dataset synthetic --shipped --out runs/shipped

small-model: $(VENV)/.installed-app
	$(PY) -m ifcn_viz train --preset small --dataset synthetic --shipped --out runs/small

# A Hugging Face Space (Gradio SDK) in build/space/ (git-ignored): README.md with the Space's front-matter,
# requirements.txt, app.py and the package. Push that folder to a Space; the project README stays as it is.
space: $(VENV)/.installed-app
	$(PY) -m ifcn_viz.app.space --out build/space

clean-venv:
	rm -rf $(VENV)
