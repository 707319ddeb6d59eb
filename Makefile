# Course kit: one-command set-up, demo, tests.
#   make demo   the instructor's pipeline on the shipped sample class, then the demo cGAN
#   make test   run every test (what CI runs)
#   make lab    JupyterLab on the student notebooks
# Set-up (a .venv from requirements.lock) runs on demand and is a no-op when current.

PYTHON ?= python3
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
STAMP  := $(VENV)/.installed
# nbgrader runs `alembic` through subprocess: the venv's bin/ must be on PATH.
export PATH := $(BIN):$(PATH)
export MPLBACKEND ?= Agg

.PHONY: setup system bytecode demo test test-fast lab book lint release bench clean

setup: system $(STAMP) bytecode

# Debian packages the tests use for real (PostgreSQL, Chromium, bubblewrap); a no-op when present.
system:
	@sh scripts/setup_system.sh

# The lock is complete and installed exactly as it stands (--no-deps; tests/test_environment_files.py
# runs `pip check` on the result). It leaves out rfc3987-syntax (and its lark), an optional format
# checker of jsonschema that compiles a grammar whenever nbformat is imported: 2-3 s in every grading
# worker, nbconvert and Jupyter process. uv installs it (about 20 s instead of pip's 3-4 min for the
# CUDA wheels); pip does it when uv cannot (UV=pip forces pip). Both read the same package index.
# Both compile the bytecode at install time: grading kernels run as an unprivileged user that cannot
# write __pycache__ into the venv, and without it every kernel compiles torch's sources again.
UV_VERSION := 0.13.9
UV ?= uv

$(STAMP): requirements.lock pyproject.toml
	@echo ">> creating $(VENV) from requirements.lock (first run only, under a minute with uv)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ "$(UV)" = uv ] && $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION) \
	    && $(BIN)/uv pip install --quiet --no-deps --compile-bytecode --python $(BIN)/python -r requirements.lock; then :; else \
	  echo ">> installing with pip"; \
	  $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.lock; fi
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# The kit's own bytecode, compiled ahead (a no-op when current). Grading kernels run as an
# unprivileged user that cannot write __pycache__ into the checkout, and where
# PYTHONDONTWRITEBYTECODE is set no process writes it: without this step every kernel, test
# worker and subprocess compiles gan_utils and autograder from source again.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q gan_utils autograder tests conftest.py

demo: setup
	$(BIN)/python -m autograder demo --out out/demo

# Two pytest workers (pytest-xdist): each test file stays on one worker, and each assignment's
# harness gets a worker of its own (see tests/conftest.py). TEST_WORKERS=0 runs in one process.
# Every solution notebook also runs top to bottom through nbval (quick mode), as a reader runs it.
TEST_WORKERS ?= 2

test: setup
	GAN_COURSE_MODE=quick $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup tests --nbval-lax solutions

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

# Every solution notebook run in cpu mode (a laptop: up to ~10 min each) and rendered to out/book/.
book: setup
	$(BIN)/python scripts/make_book.py --mode cpu --out out/book

# JupyterLab on the student notebooks: the kit's kernel, no news or update pop-ups (course/lab_settings).
# Its kernels draw figures inline: the MPLBACKEND=Agg exported above is for the tests and scripts.
# LAB_ARGS adds options, e.g. make lab LAB_ARGS="--port 8890 --no-browser" (or --allow-root in a container).
LAB_ARGS ?=
lab: setup
	MPLBACKEND=module://matplotlib_inline.backend_inline $(BIN)/jupyter lab \
	    --LabApp.app_settings_dir=$(CURDIR)/course/lab_settings $(LAB_ARGS) notebooks

lint: setup
	$(BIN)/ruff check gan_utils autograder tests benchmarks

release: setup
	$(BIN)/python -m autograder release --all

bench: setup
	$(BIN)/python benchmarks/bench_trainer.py

clean:
	rm -rf out .pytest_cache
