#!/usr/bin/env bash
# Installs the reference App Registry client, `appr` 0.7.4 (a Python 2.7 program), into DIR
# (default: target/appr-cli) and prints the absolute path of its `appr` executable on the last
# line of stdout. Everything else goes to stderr. A second run is a fast no-op.
#
# Needs a CPython 2.7 ($PYTHON27, a pyenv 2.7.x, or python2.7 on PATH), a python3 with venv,
# and access to PyPI. appr does not work on Python 3 (push, login and error printing break).
#
# The pins are the smallest set with which the 2017 client and its bundled reference server
# run: gevent 1.3 dropped gevent.wsgi (imported by every command), newer flask-cors imports
# collections.abc, and Werkzeug >= 1.0 breaks the server on every request. virtualenv < 20.22
# is the last line that can still create Python 2.7 environments.
set -euo pipefail

dir=${1:-target/appr-cli}
pins=(appr==0.7.4 gevent==1.2.2 greenlet==0.4.17 flask-cors==3.0.10 Flask==0.12.5 Werkzeug==0.14.1)
stamp_text="appr-cli ${pins[*]}"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
appr=$dir/py27/bin/appr
stamp=$dir/installed

# Already installed with these pins: nothing to do.
if [[ -x $appr && -f $stamp && $(<"$stamp") == "$stamp_text" ]]; then
    echo "$appr"
    exit 0
fi

is_py27() { [[ -n $1 && -x $1 ]] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; }

py27=${PYTHON27:-}
if [[ -n $py27 ]]; then
    is_py27 "$py27" || { echo "install-appr: PYTHON27=$py27 is not a Python 2.7 interpreter" >&2; exit 1; }
else
    candidates=()
    if command -v pyenv >/dev/null 2>&1; then
        root=$(pyenv root)
        while read -r v; do candidates+=("$root/versions/$v/bin/python"); done \
            < <(pyenv versions --bare 2>/dev/null | grep -E '^2\.7(\.|$)' | sort -rV)
    fi
    candidates+=("$(command -v python2.7 || true)")
    for c in "${candidates[@]}"; do
        if is_py27 "$c"; then py27=$c; break; fi
    done
fi
if [[ -z $py27 ]]; then
    echo "install-appr: no Python 2.7 found (tried \$PYTHON27, pyenv 2.7.x, python2.7 on PATH)." >&2
    echo "install-appr: appr 0.7.4 needs CPython 2.7: 'pyenv install 2.7.18' or set PYTHON27." >&2
    exit 1
fi
echo "install-appr: installing appr 0.7.4 into $dir with $py27" >&2

# Start from scratch: a half-finished earlier attempt must not count as installed.
rm -rf "$dir/py27" "$dir/vtool" "$dir/pip.log" "$stamp"
python3 -m venv "$dir/vtool"
"$dir/vtool/bin/pip" install -q --disable-pip-version-check 'virtualenv<20.22' >&2
"$dir/vtool/bin/virtualenv" -q -p "$py27" "$dir/py27" >&2
rm -rf "$dir/vtool"
log=$dir/pip.log
if ! "$dir/py27/bin/pip" install -q --disable-pip-version-check --no-python-version-warning "${pins[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    echo "install-appr: pip install ${pins[*]} failed" >&2
    exit 1
fi
# pip on 2.7 nags about the end of Python 2; keep the log readable.
grep -v -i -E 'deprecat|python 2\.7' "$log" >&2 || true

# The client must start (every command imports the server module, so this checks the pins).
if ! PYTHONWARNINGS=ignore "$appr" --help >/dev/null 2>&1; then
    echo "install-appr: $appr does not start:" >&2
    PYTHONWARNINGS=ignore "$appr" --help >&2 || true
    exit 1
fi
echo "$stamp_text" >"$stamp"
echo "$appr"
