# Two commands for a newcomer: `make run` (set up + open the workbench) and `make test` (the whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
PYVER  := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV   := .venv
BIN    := $(VENV)/bin
SAMPLE := out/sample-project

.PHONY: venv run test bench lock clean

venv: $(VENV)/.installed

# The environment is rebuilt from the lock, exactly, whenever the lock or the project metadata changes.
$(VENV)/.installed: requirements.lock pyproject.toml plugins/example/pyproject.toml
	@test "$(PYVER)" = "3.11" || { echo "Ledgerflow needs Python 3.11 (found '$(PYVER)' at '$(PYTHON)'); set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/pip || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e . -e plugins/example
	touch $@

# Until the Qt workbench lands (issue 3), `make run` runs the sample project headless and says where outputs are.
run: venv
	test -f $(SAMPLE)/project.lflow || $(BIN)/ledgerflow new $(SAMPLE) --template credit-risk
	$(BIN)/ledgerflow run $(SAMPLE)
	@echo "Predictions: $(SAMPLE)/outputs/predictions.csv   Run records: $(BIN)/ledgerflow runs $(SAMPLE)"

test: venv
	$(BIN)/python -m pytest -q

bench: venv
	$(BIN)/python -m bench

lock: venv
	$(BIN)/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) out .pytest_cache
