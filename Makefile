# Two commands for a newcomer: `make run` (set up + open the workbench) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
SAMPLE := out/sample-project

.PHONY: venv run run-headless screenshots test bench bench-anchors lock clean

venv: $(VENV)/.installed

# The environment is rebuilt from the lock, exactly, whenever the lock or the project metadata changes.
$(VENV)/.installed: requirements.lock pyproject.toml plugins/example/pyproject.toml
	@test "$(PYVER)" = "3.11" || { echo "Ledgerflow needs Python 3.11 (found '$(PYVER)' at '$(PYTHON)'); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e . -e plugins/example
	touch $@

$(SAMPLE)/project.lflow: | venv
	$(BIN)/ledgerflow new $(SAMPLE) --template credit-risk

# Opens the workbench on the sample project. Needs a display (on a server: `xvfb-run make run`).
run: venv $(SAMPLE)/project.lflow
	@test -n "$$DISPLAY$$WAYLAND_DISPLAY" || test -n "$$QT_QPA_PLATFORM" || { echo "No display found. On a desktop run 'make run'; on a server use 'xvfb-run -a make run', or 'make run-headless' for the engine alone."; exit 1; }
	$(BIN)/ledgerflow gui $(SAMPLE)

# The same project without a window: runs it and says where outputs are.
run-headless: venv $(SAMPLE)/project.lflow
	$(BIN)/ledgerflow run $(SAMPLE)
	@echo "Predictions: $(SAMPLE)/outputs/predictions.csv   Run records: $(BIN)/ledgerflow runs $(SAMPLE)"

# The README's screenshots: the sample project run, in English and in Chinese, on a virtual screen.
screenshots: venv
	rm -rf out/shots && mkdir -p out/shots docs/images
	$(BIN)/ledgerflow new out/shots/en --template credit-risk --time-limit 30
	$(BIN)/ledgerflow --lang zh_CN new out/shots/zh --template credit-risk --time-limit 30
	LEDGERFLOW_HOME=out/shots/home xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/ledgerflow gui out/shots/en --lang en --run --screenshot docs/images/workbench-en.png
	LEDGERFLOW_HOME=out/shots/home xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/ledgerflow gui out/shots/zh --lang zh_CN --run --screenshot docs/images/workbench-zh_CN.png
	LEDGERFLOW_HOME=out/shots/home xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python docs/screenshot_views.py out/shots/en en docs/images
	LEDGERFLOW_HOME=out/shots/home xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python docs/screenshot_views.py out/shots/zh zh_CN docs/images
	LEDGERFLOW_HOME=out/shots/home xvfb-run -a -s "-screen 0 1400x900x24" $(BIN)/python docs/labeling_shots.py

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m bench

# Tools the benchmarks compare against that cannot share the lock (ydata-profiling pins older numpy/matplotlib).
bench-anchors:
	test -x .venv-anchors/bin/pip || $(PYTHON) -m venv .venv-anchors
	.venv-anchors/bin/pip install --quiet --disable-pip-version-check -r bench/anchors/requirements.txt
	test -x .venv-labelstudio/bin/pip || $(PYTHON) -m venv .venv-labelstudio
	.venv-labelstudio/bin/pip install --quiet --disable-pip-version-check -r bench/anchors/requirements-labelstudio.txt

lock: venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) .venv-anchors .venv-labelstudio out .pytest_cache
