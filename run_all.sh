#!/usr/bin/env bash
# The two commands of this project:
#   ./run_all.sh         regenerate every figure and table: executes notebooks/NN_*.ipynb in order with papermill
#                        (quick profile: digits on a CPU) → figures/, executed copies in executed/<profile>/
#   ./run_all.sh test    unit tests + every notebook under the smoke profile with nbval
#   ./run_all.sh lab     JupyterLab on notebooks/ with the project kernel and the batch run's run store
# Options for the main job:
#   --profile NAME       smoke | quick (default) | paper
#   --only 00,03         run a subset of notebooks (by number prefix)
#   --keep-going         run the remaining notebooks after a failure
# Each command creates or refreshes .venv from requirements.txt first; with unchanged pins that takes seconds.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

ensure_env() {
    local stamp=.venv/.tempscale-install want
    want=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
    if [[ -x .venv/bin/python && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        return
    fi
    echo "==> installing the pinned environment into .venv (first run: a few minutes)"
    local t0=$SECONDS
    "${PYTHON:-python3}" -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements.txt  # a full lock
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    .venv/bin/python -m ipykernel install --sys-prefix --name tempscale --display-name "Python (tempscale)" >/dev/null
    echo "$want" >"$stamp"
    echo "==> environment ready in $((SECONDS - t0)) s"
}

export TEMPSCALE_RUNS="${TEMPSCALE_RUNS:-$ROOT/runs}"
export MPLBACKEND=Agg PYTHONHASHSEED=0

run_tests() {
    ensure_env
    export TEMPSCALE_PROFILE=smoke
    # Unit tests, then every notebook as stored, executed under the smoke profile (nbval, lax: only cells
    # marked with `# NBVAL_CHECK_OUTPUT` compare outputs; every cell must run without error).
    exec .venv/bin/python -m pytest tests notebooks --nbval-lax --nbval-kernel-name tempscale \
        --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider "$@"
}

run_notebooks() {
    local profile=quick only="" keep_going=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --profile) profile="$2"; shift 2 ;;
            --only) only="$2"; shift 2 ;;
            --keep-going) keep_going=1; shift ;;
            -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
            *) echo "unknown option: $1 (see ./run_all.sh --help)" >&2; exit 2 ;;
        esac
    done
    ensure_env
    local out="executed/$profile" failed=() summary=() nb name t0 status
    mkdir -p "$out"
    for nb in notebooks/[0-9][0-9]_*.ipynb; do
        [[ -e "$nb" ]] || { echo "no notebooks yet"; break; }
        name=$(basename "$nb" .ipynb)
        if [[ -n "$only" && ",$only," != *",${name:0:2},"* ]]; then continue; fi
        echo "==> $name (profile $profile)"
        t0=$SECONDS
        # The inline backend (ipykernel's default) keeps each figure in the executed copy for the HTML pages.
        if MPLBACKEND=module://matplotlib_inline.backend_inline \
                .venv/bin/papermill "$nb" "$out/$name.ipynb" -k tempscale -p profile "$profile" \
                --cwd notebooks --progress-bar --log-level WARNING; then
            status=ok
        else
            status=FAILED; failed+=("$name")
        fi
        summary+=("$(printf '%-34s %-7s %5d s' "$name" "$status" $((SECONDS - t0)))")
        if [[ $status == FAILED && $keep_going == 0 ]]; then break; fi
    done
    echo; echo "==> summary (profile $profile; executed copies in $out/)"
    printf '  %s\n' "${summary[@]}"
    if [[ ${#failed[@]} -gt 0 ]]; then
        for name in "${failed[@]}"; do
            echo "FAILED: $name — see $out/$name.ipynb (the failing cell holds the traceback)" >&2
        done
        exit 1
    fi
    if [[ $profile == quick && -z $only ]]; then
        # The README's results table is written from the numbers the notebooks recorded (scrapbook), never by hand.
        .venv/bin/python -m tempscale readme --executed "$out"
        .venv/bin/python -m tempscale html --executed "$out"   # notebooks/html/: the executed notebooks, browsable
    fi
}

run_lab() {
    ensure_env
    unset MPLBACKEND   # the kernel then uses the inline backend: figures appear in the notebook
    # TEMPSCALE_RUNS (above) is the batch run's store: interactive cells reuse its runs instead of retraining.
    local as_root=(); [[ $EUID -eq 0 ]] && as_root=(--allow-root)   # containers often run as root
    exec .venv/bin/jupyter lab --notebook-dir=notebooks "${as_root[@]}" "$@"
}

case "${1:-}" in
    test) shift; run_tests "$@" ;;
    lab) shift; run_lab "$@" ;;
    *) run_notebooks "$@" ;;
esac
