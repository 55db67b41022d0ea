#!/bin/sh
# Make /opt/wheelfarm/venv-X.Y for each Python in WHEELFARM_PYTHONS (comma list), holding the
# pinned build tools, installed offline from the wheels the host put into the build context.
set -eu
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)

find_python() {
    if command -v "python$1" >/dev/null 2>&1; then
        command -v "python$1"
        return
    fi
    # Software Collections (CentOS 7): /opt/rh/rh-python38/root/usr/bin/python3.8
    scl=/opt/rh/rh-python$(echo "$1" | tr -d .)/root/usr/bin/python$1
    if [ -x "$scl" ]; then
        echo "$scl"
        return
    fi
    echo "install-venvs: no python$1 in this image" >&2
    exit 1
}

for version in $(echo "${WHEELFARM_PYTHONS:?}" | tr ',' ' '); do
    python=$(find_python "$version")
    venv=/opt/wheelfarm/venv-$version
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --no-index --no-cache-dir \
        --disable-pip-version-check --find-links "$here/wheels/py$version" \
        --no-deps --requirement "$here/build-tools.txt"
    "$venv/bin/python" -m pip --version
done
