# The two commands a newcomer needs:
#   make demo   install the runtime and run one conversation on the built-in default
#   make test   install everything the tests need (system packages too) and run the suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out

.PHONY: demo test test-deps test-slow lint venv torch clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

venv: $(BIN)/python

# setuptools prints a generic note (a BuildBackendWarning) on every editable install: not ours to act on.
PIP_QUIET := PYTHONWARNINGS=ignore::UserWarning

# torch: the CPU wheel first, so that nothing pulls a multi-GB CUDA build (GPU users install their own).
torch: venv
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "torch==2.13.0"

demo: torch
	$(PIP_QUIET) $(BIN)/pip install -q -e ".[model]"
	mkdir -p $(OUT)
	$(BIN)/duplex-chat --input examples/audio/conversation.wav --output $(OUT)/reply.wav --events $(OUT)/events.jsonl
	@echo "wrote $(OUT)/reply.wav (what the speaker played) and $(OUT)/events.jsonl"

test-deps: torch
	bash scripts/install-system-deps.sh
	$(PIP_QUIET) $(BIN)/pip install -q -e ".[all,model,test]"

test: test-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider tests examples/scenarios

test-slow: test-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider -m slow tests examples/scenarios

lint: venv
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
