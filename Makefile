# One entry point for students, instructors and CI. Every target creates the virtual
# environment (.venv) and installs CIFAR-10 when they are missing, then does its job.
#
#   make notebooks   execute both notebooks in place (outputs and plots kept)
#   make test        unit tests + both notebooks under nbval (output comparison)
#   make lab         open the notebooks in JupyterLab
#   make check       self-check of the pieces you implemented (python -m cs231n.check)
#   make release     instructors: the student version in release/ and a zip
#   make bench       speed and memory benchmark
#
# Offline: CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make test

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NOTEBOOKS := BatchNormalization.ipynb Dropout.ipynb

# One BLAS thread: the networks here are small, so threads cost more than they give,
# and the printed float32 digits do not depend on how many cores a machine has.
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
# The same backend whether a notebook runs under nbconvert, nbval or JupyterLab.
export MPLBACKEND := module://matplotlib_inline.backend_inline

.PHONY: venv data notebooks test test-notebooks lab check release bench grade

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

data: $(STAMP)
	PYTHON=$(abspath $(BIN)/python) bash datasets/get_datasets.sh

notebooks: data
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
	    --ExecutePreprocessor.record_timing=False --ExecutePreprocessor.timeout=1800 \
	    $(NOTEBOOKS)

# The instructors' tests run where instructor_tools/ exists (not in the student release).
TEST_DIRS := tests $(wildcard instructor_tools/tests)

test: data
	$(BIN)/python -m pytest $(TEST_DIRS) $(NOTEBOOKS) --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg

# The notebooks alone under nbval (CI runs it again with OPENBLAS_CORETYPE=Haswell).
test-notebooks: data
	$(BIN)/python -m pytest $(NOTEBOOKS) --nbval --nbval-current-env -p no:cacheprovider \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg

lab: data
	$(BIN)/jupyter lab $(NOTEBOOKS)

check: $(STAMP)
	$(BIN)/python -m cs231n.check

release: $(STAMP)
	$(BIN)/python -m instructor_tools.release

bench: data
	$(BIN)/python instructor_tools/benchmarks/bench.py

# Instructors: grade a folder of submission zips (see python -m instructor_tools.grade --help).
grade: data
	$(BIN)/python -m instructor_tools.grade $(SUBMISSIONS) --out $(OUT) $(GRADE_ARGS)
