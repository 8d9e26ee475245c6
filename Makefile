# One entry point for students, instructors and CI. Every target creates the virtual
# environment (.venv) and installs CIFAR-10 when they are missing, then does its job.
#
#   make notebooks   execute both notebooks in place (outputs and plots kept)
#   make test        unit tests + both notebooks under nbval (output comparison)
#   make lab         open both notebooks in JupyterLab (options: make lab LAB_ARGS="--port 8899")
#   make check       self-check of the pieces you implemented (python -m cs231n.check)
#   make test-notebooks  the notebooks alone under nbval (CI repeats it under another BLAS kernel)
#   make release     instructors: the student version in release/ and a zip
#   make grade       instructors: grade SUBMISSIONS=<folder of zips> into OUT=<folder>
#   make gradescope  instructors: the Gradescope autograder, release/gradescope/autograder.zip
#   make bench       instructors: speed and memory benchmark
#
# Offline: CIFAR10_ARCHIVE=/path/to/cifar-10-python.tar.gz make test

PYTHON ?= python3
# The pins in requirements.txt (numpy 2.4, matplotlib 3.11, ipykernel 7.4) need it;
# pyproject.toml says the same (requires-python).
MIN_PYTHON := 3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Written when an install completed.
STAMP  := $(VENV)/.installed
# Written when make creates .venv: a .venv holding it but no STAMP is an install that was
# interrupted, and only such a .venv is ever deleted (a .venv you made yourself never is).
MADE_BY_MAKE := $(VENV)/.made-by-make
NOTEBOOKS := BatchNormalization.ipynb Dropout.ipynb

# One BLAS thread: the networks here are small, so threads cost more than they give,
# and the printed digits do not depend on how many cores a machine has.
export OMP_NUM_THREADS := 1
export OPENBLAS_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
# The same backend whether a notebook runs under nbconvert, nbval or JupyterLab.
export MPLBACKEND := module://matplotlib_inline.backend_inline

.PHONY: venv data notebooks test test-notebooks lab check release bench grade instructors-only

# Prints X.Y of the Python $$1, nothing when it does not run; exits 0 when X.Y >= MIN_PYTHON.
PY_VERSION  := version() { "$$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
PY_NEW_ENOUGH := new_enough() { echo "$$1" | awk -F. -v min=$(MIN_PYTHON) \
    '{ split(min, m, "."); exit !(NF >= 2 && ($$1 > m[1] || ($$1 == m[1] && $$2 >= m[2]))) }'; }

$(STAMP): requirements.txt pyproject.toml
	@$(PY_VERSION); $(PY_NEW_ENOUGH); \
	if [ -d $(VENV) ] && [ -f $(MADE_BY_MAKE) ] && [ ! -f $(STAMP) ]; then \
	    echo "make: $(VENV) is left from an install that did not finish; making it again"; \
	    rm -rf $(VENV); \
	fi; \
	if [ ! -d $(VENV) ]; then \
	    v=$$(version $(PYTHON)); \
	    if ! new_enough "$$v"; then \
	        echo "make: this project needs Python >= $(MIN_PYTHON), but '$(PYTHON)' is $${v:+Python }$${v:-not a Python that runs}." >&2; \
	        echo "make: install Python $(MIN_PYTHON) or newer and name it, e.g.  make $(or $(MAKECMDGOALS),venv) PYTHON=python$(MIN_PYTHON)" >&2; \
	        echo "make: (nothing was created)" >&2; \
	        exit 1; \
	    fi; \
	    echo "$(PYTHON) -m venv $(VENV)  (Python $$v)"; \
	    mkdir $(VENV) && touch $(MADE_BY_MAKE) && $(PYTHON) -m venv $(VENV) || exit 1; \
	fi; \
	v=$$(version $(BIN)/python); \
	if ! new_enough "$$v"; then \
	    echo "make: $(VENV) runs $${v:+Python }$${v:-no Python}, and this project needs Python >= $(MIN_PYTHON)." >&2; \
	    echo "make: it was not made (or not finished) by this Makefile, so it is left alone:" >&2; \
	    echo "make: move it away (mv $(VENV) $(VENV).old) and run make again." >&2; \
	    exit 1; \
	fi
	rm -f $(STAMP)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

data: $(STAMP)
	PYTHON=$(abspath $(BIN)/python) bash datasets/get_datasets.sh

# nbconvert's executor, in place (no timing metadata, 1800 s a cell), printing "cell i of n";
# the files are written only when every notebook ran, with stream outputs merged and tidied
# so that a second run writes the same files (student_tools/run_notebooks.py).
notebooks: data
	$(BIN)/python -m student_tools.run_notebooks $(NOTEBOOKS)

# The instructors' tests run where instructor_tools/ exists (not in the student release).
TEST_DIRS := tests $(wildcard instructor_tools/tests)

test: data
	$(BIN)/python -m pytest $(TEST_DIRS) $(NOTEBOOKS) --nbval --nbval-current-env \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg

# The notebooks alone under nbval (CI runs it again with OPENBLAS_CORETYPE=Haswell).
test-notebooks: data
	$(BIN)/python -m pytest $(NOTEBOOKS) --nbval --nbval-current-env -p no:cacheprovider \
	    --nbval-sanitize-with tests/nbval_sanitize.cfg

# JupyterLab opens only the first file named on its command line, so both notebooks come
# from a workspace (a saved layout, one tab per notebook), imported again on every start.
# It refuses to run as root without --allow-root (containers and CI run as root).
# Extra options go through: make lab LAB_ARGS="--no-browser --port 8899".
LAB_ARGS ?=
LAB_WORKSPACE := cs231n
ALLOW_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

lab: data
	$(BIN)/jupyter lab workspaces import --name $(LAB_WORKSPACE) $(LAB_WORKSPACE).jupyterlab-workspace
	$(BIN)/jupyter lab $(ALLOW_ROOT) --LabApp.default_url=/lab/workspaces/$(LAB_WORKSPACE) $(LAB_ARGS)

check: $(STAMP)
	$(BIN)/python -m cs231n.check

# Instructors' targets depend on this one: the student release has no instructor_tools/.
instructors-only:
	@test -d instructor_tools || { echo "make: '$(MAKECMDGOALS)' is for instructors; instructor_tools/ is not part of the student version" >&2; exit 2; }

release: instructors-only $(STAMP)
	$(BIN)/python -m instructor_tools.release

bench: instructors-only data
	$(BIN)/python -m instructor_tools.benchmarks.bench

# Instructors: grade a folder of submission zips (see python -m instructor_tools.grade --help).
# WRITTEN=<csv>: the TAs' points for the written answers (OUT/written.csv filled in); the
# code results already in OUT are reused, a bad CSV is refused and nothing is written.
WRITTEN ?=
grade: instructors-only data
	@test -n "$(SUBMISSIONS)" -a -n "$(OUT)" || { echo "usage: make grade SUBMISSIONS=<folder of zips> OUT=<folder> [WRITTEN=<filled written.csv>] [GRADE_ARGS='--jobs 2 --no-notebooks ...']" >&2; exit 2; }
	$(BIN)/python -m instructor_tools.grade grade $(SUBMISSIONS) --out $(OUT) $(if $(WRITTEN),--written $(WRITTEN)) $(GRADE_ARGS)

# Instructors: release/gradescope/autograder.zip for a Gradescope autograder (see the
# grader's README, "Gradescope"); options: GRADESCOPE_ARGS="--notebooks --visibility ...".
.PHONY: gradescope
gradescope: instructors-only $(STAMP)
	$(BIN)/python -m instructor_tools.gradescope $(GRADESCOPE_ARGS)
