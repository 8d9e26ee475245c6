#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (an Ubuntu image;
# apt and pip work here). Written by `make gradescope` (instructor_tools/gradescope/build.py)
# from instructor_tools/gradescope/templates/setup.sh; the values below were filled in then.
#
# What it does:
#   1. system packages: bubblewrap (the grader's sandbox, used where the container allows
#      it; otherwise the grader falls back and says so in every result), util-linux
#      (prlimit, setpriv, unshare), iproute2, ca-certificates;
#   2. a Python >= 3.11 (the pinned numpy 2.4 needs it): one the image has, else Ubuntu's
#      python3.11 package, else the deadsnakes PPA's (Ubuntu 22.04 ships 3.10);
#   3. a virtual environment in PREFIX with requirements.txt exactly as pinned (the course
#      itself is not installed into it: the grader runs from /autograder/source, so nothing
#      of the course can be imported from the environment the sandbox sees);
#   4. CIFAR-10, only when the zip was built with notebook re-execution on
#      (`make gradescope GRADESCOPE_ARGS=--notebooks`): the official archive, checked
#      against its md5 before it is unpacked, into PREFIX/datasets;
#   5. a self-test: the course's own solution is graded by the same run_autograder path and
#      must score the rubric's maximum, or the image build fails here;
#   6. /autograder/source (hidden tests, reference, solutions) made readable by root only.
set -euo pipefail

SOURCE=/autograder/source
PREFIX=@PREFIX@
INSTALL_CIFAR10=@INSTALL_CIFAR10@
CIFAR10_MD5=@CIFAR10_MD5@
export DEBIAN_FRONTEND=noninteractive

echo "== cs231n autograder setup: system packages"
apt-get update
apt-get install -y --no-install-recommends bubblewrap util-linux iproute2 ca-certificates

echo "== Python >= 3.11"
# A final release (not an rc) with venv and ensurepip, printed as its path.
good_python() {
    "$1" -c 'import sys, venv, ensurepip
sys.exit(not (sys.version_info >= (3, 11) and sys.version_info.releaselevel == "final"))' \
        >/dev/null 2>&1
}
find_python() {
    local name path
    for name in python3.13 python3.12 python3.11 python3; do
        path="$(command -v "$name" 2>/dev/null)" || continue
        if ! good_python "$path"; then
            # Ubuntu splits venv/ensurepip into python3.X-venv.
            version="$("$path" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" || continue
            apt-get install -y --no-install-recommends "python$version-venv" >/dev/null 2>&1 || true
        fi
        if good_python "$path"; then echo "$path"; return 0; fi
    done
    return 1
}
PY="$(find_python)" || {
    echo "no Python >= 3.11 on this image: installing Ubuntu's python3.11"
    apt-get install -y --no-install-recommends python3.11 python3.11-venv || true
    PY="$(find_python)"
} || {
    echo "Ubuntu's python3.11 is missing or not a final release: using the deadsnakes PPA"
    apt-get install -y --no-install-recommends software-properties-common gpg-agent
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y --no-install-recommends python3.11 python3.11-venv
    PY="$(find_python)"
} || {
    echo "setup.sh: could not install a Python >= 3.11; choose a newer base image" >&2
    exit 1
}
echo "using $PY ($("$PY" -V))"

echo "== virtual environment $PREFIX/venv (requirements.txt, pinned)"
rm -rf "$PREFIX/venv"
mkdir -p "$PREFIX"
"$PY" -m venv "$PREFIX/venv"
VPY="$PREFIX/venv/bin/python"
"$VPY" -m pip install --quiet --no-cache-dir --upgrade pip
"$VPY" -m pip install --quiet --no-cache-dir -r "$SOURCE/requirements.txt"
"$VPY" -m pip freeze > "$PREFIX/pip-freeze.txt"

if [ "$INSTALL_CIFAR10" = 1 ]; then
    echo "== CIFAR-10 (official archive, md5 $CIFAR10_MD5)"
    PYTHON="$VPY" bash "$SOURCE/datasets/get_datasets.sh" --no-progress \
        --md5 "$CIFAR10_MD5" --target "$PREFIX/datasets/cifar-10-batches-py"
else
    echo "== CIFAR-10 not installed: notebook re-execution is off in this autograder"
fi

# The sandboxed code runs as an unprivileged uid: it must be able to run this Python and
# read the data set (both outside SOURCE).
chmod -R a+rX "$PREFIX"

echo "== self-test: the course's solution must score the rubric's maximum"
(cd "$SOURCE" && "$VPY" -B -m instructor_tools.gradescope.run_autograder --self-test)

# Root only from here on: the grader (root) reads it; the files it copies for the sandbox
# (worker, self-check, sanitizer) keep their own 0644 modes in those copies.
chmod 0700 "$SOURCE"
echo "== cs231n autograder setup: done"
