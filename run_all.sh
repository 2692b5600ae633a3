#!/usr/bin/env bash
# The two commands of this project:
#   ./run_all.sh         regenerate every figure and table: executes notebooks/NN_*.ipynb with papermill (00, 01
#                        first, then the longest: START_ORDER)
#                        (quick profile: digits on a CPU) → figures/, executed copies in executed/<profile>/
#   ./run_all.sh test    unit tests + every notebook under the smoke profile with nbval
#   ./run_all.sh lab     JupyterLab on notebooks/ with the project kernel and the batch run's run store
# Options for the main job:
#   --profile NAME       smoke | quick (default) | cifar-cpu | paper (the paper's grid: each notebook once per
#                        dataset and model it covers, `python -m tempscale grid --profile paper`) | rehearsal (the
#                        paper's grid and code path at toy budgets on tiny generated files in the official formats)
#   --only 00,03         run a subset of notebooks (by number prefix)
#   --jobs N             notebooks run at once (default 2), each on one thread (OMP_NUM_THREADS, if set, instead)
#   --keep-going         run the remaining notebooks after a failure
#   --data-dir DIR       where the profile's dataset lives (default: $TEMPSCALE_DATA or ./data)
#   --download           fetch CIFAR into the data directory when it is missing (needs internet)
#   --force              rerun notebooks whose stamp says they are up to date
#   --list               print the notebook runs (with their dataset and model) and whether each is up to date
# A notebook whose inputs (notebook, parameters, library, pins, data listing, settings) are unchanged since it last
# succeeded, and whose outputs are intact, is skipped (lib/tempscale/stamps.py); trainings and attacks are cached
# in the run store either way.
# Where things go: TEMPSCALE_RUNS (run store, ./runs), TEMPSCALE_FIGURES (./figures), TEMPSCALE_EXECUTED (./executed);
# the README table and notebooks/html/ are rewritten only by a quick run into ./figures.
# Each command creates or refreshes .venv from requirements.txt first; with unchanged pins that takes seconds.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$PWD

pip_indexes() {
    # uv reads neither pip.conf nor PIP_* variables: hand it the indexes and wheel folders pip is configured with (a
    # local mirror, say), resolved as pip does: the best match over all of them.
    echo --index-strategy unsafe-best-match
    .venv/bin/python - <<'PY'
import subprocess
import sys

listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
settings = {}   # key -> values; an environment variable (":env:") wins over the files, as in pip
for line in listed.splitlines():
    scope_key, _, value = line.partition("=")
    scope, _, key = scope_key.rpartition(".")
    if key in ("index-url", "extra-index-url", "find-links") and (scope == ":env:" or key not in settings):
        settings[key] = value.strip("'\"").split()
for key, values in settings.items():
    for value in values:
        print(f"--{key}", value)
PY
}

compile_library() {
    # The library's own bytecode, refreshed where the source changed: where PYTHONDONTWRITEBYTECODE is set, every
    # kernel and test process would otherwise compile it anew.
    PYTHONDONTWRITEBYTECODE= .venv/bin/python -m compileall -q lib/tempscale >/dev/null
}

ensure_env() {
    local stamp=.venv/.tempscale-install want
    want=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
    if [[ -x .venv/bin/python && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
        compile_library
        return
    fi
    echo "==> installing the pinned environment into .venv (first run: about a minute)"
    local t0=$SECONDS
    "${PYTHON:-python3}" -m venv .venv
    # The lock (complete, hence --no-deps) is unpacked by uv, which extracts its wheels in parallel; pip, one at a
    # time, spends minutes on torch's CUDA libraries. pip takes over if uv fails. Bytecode is compiled at install, as
    # pip does: where PYTHONDONTWRITEBYTECODE is set, a venv without it compiles torch anew in every process.
    local uv_pin; uv_pin=$(grep -m1 '^uv==' requirements.txt)
    if ! { .venv/bin/python -m pip install -qq --disable-pip-version-check --no-deps "$uv_pin" &&
           .venv/bin/uv pip install -q --python .venv/bin/python --no-deps --compile-bytecode $(pip_indexes) \
               -r requirements.txt; }; then
        echo "==> uv could not install the lock; installing it with pip"
        .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -r requirements.txt
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
    .venv/bin/python -m ipykernel install --sys-prefix --name tempscale --display-name "Python (tempscale)" >/dev/null
    echo "$want" >"$stamp"
    compile_library
    echo "==> environment ready in $((SECONDS - t0)) s"
}

export TEMPSCALE_RUNS="${TEMPSCALE_RUNS:-$ROOT/runs}"
export MPLBACKEND=Agg PYTHONHASHSEED=0

run_tests() {
    ensure_env
    export TEMPSCALE_PROFILE=smoke
    # Unit tests, then every notebook as stored, executed under the smoke profile (nbval, lax: only cells
    # marked with `# NBVAL_CHECK_OUTPUT` compare outputs; every cell must run without error). One pytest worker per
    # CPU (at most 4), each on one thread as the main job's notebooks; a test file or notebook stays on one worker
    # (loadscope: nbval runs a notebook's cells in order in one kernel). `-n 0` runs everything in one process.
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-${OMP_NUM_THREADS:-1}}
    exec .venv/bin/python -m pytest tests notebooks --nbval-lax --nbval-kernel-name tempscale \
        --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider -n logical --maxprocesses 4 \
        --dist loadscope "$@"
}

die() { echo "run_all.sh: $*" >&2; exit 2; }

known_profiles() {
    # The registered names, read from the library so this list cannot drift from it.
    sed -n 's/^    name="\([A-Za-z0-9_-]*\)",$/\1/p' lib/tempscale/profiles.py | tr '\n' ' '
}

# The order notebooks start in; any not named follow in number order. 00 and 01 first: every other notebook reads
# the τ grid they train (they split its runs through the run store's locks). Then the longest first, so that the two
# lanes finish together: 02 and the audit (10) side by side, which attack the τ grid from opposite ends and so split
# the attacks they share (a notebook needing an evaluation another is computing waits on its lock, then reads it).
START_ORDER="00 01 02 10 06 07 08 03 04 05 09 11"

in_start_order() {
    local id nb name
    for id in $START_ORDER; do
        for nb in "$@"; do name=${nb##*/}; [[ ${name:0:2} != "$id" ]] || echo "$nb"; done
    done
    for nb in "$@"; do name=${nb##*/}; [[ " $START_ORDER " == *" ${name:0:2} "* ]] || echo "$nb"; done
}

run_notebooks() {
    local profile=quick only="" keep_going=0 download=0 force=0 list=0 n_jobs=2
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --profile|--only|--data-dir|--jobs)
                [[ $# -ge 2 && -n "$2" && "$2" != --* ]] || die "$1 needs a value (see ./run_all.sh --help)"
                case "$1" in
                    --profile) profile="$2" ;;
                    --only) only="$2" ;;
                    --jobs) [[ $2 =~ ^[1-9][0-9]*$ ]] || die "--jobs takes a positive number of notebooks run at once; got '$2'"
                            n_jobs=$2 ;;
                    --data-dir) [[ -d "$2" ]] || die "--data-dir: no folder '$2'"
                                export TEMPSCALE_DATA; TEMPSCALE_DATA=$(cd "$2" && pwd) ;;  # notebooks run in notebooks/
                esac
                shift 2 ;;
            --keep-going) keep_going=1; shift ;;
            --download) download=1; shift ;;
            --force) force=1; shift ;;
            --list) list=1; shift ;;
            -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
            *) die "unknown option: $1 (see ./run_all.sh --help)" ;;
        esac
    done
    # Every argument is checked before anything runs (a profile name also becomes a folder under executed/).
    local profiles
    profiles=$(known_profiles)
    [[ " $profiles " == *" $profile "* ]] || die "unknown profile '$profile'; choose one of: ${profiles% }"
    local notebooks=(notebooks/[0-9][0-9]_*.ipynb) prefixes=" " nb
    [[ -e "${notebooks[0]}" ]] || die "no notebooks under notebooks/"
    for nb in "${notebooks[@]}"; do prefixes+="$(basename "$nb" | cut -c1-2) "; done
    if [[ -n $only ]]; then
        [[ $only =~ ^[0-9]{2}(,[0-9]{2})*$ ]] || die "--only takes comma-separated notebook numbers such as 00,03; got '$only'"
        local wanted
        for wanted in ${only//,/ }; do
            [[ $prefixes == *" $wanted "* ]] || die "--only: no notebook numbered '$wanted'; choose from:${prefixes% }"
        done
    fi
    ensure_env
    local out="${TEMPSCALE_EXECUTED:-executed}/$profile" failed=() summary=() not_run=() name status stop="" job nb_id
    local figures="${TEMPSCALE_FIGURES:-$ROOT/figures}" grid jobs=() key stamp outputs
    [[ $profile == quick ]] || figures="$figures/$profile"
    mkdir -p "$out"
    local out_dir; out_dir=$(cd "$out" && pwd)   # absolute: the kernel runs in notebooks/
    if [[ $profile == rehearsal && $list == 0 ]]; then
        # Tiny files in the official formats (random pixels), written once: the paper's code path without its data.
        export TEMPSCALE_DATA="$ROOT/build/rehearsal-data"
        [[ -e $TEMPSCALE_DATA/REHEARSAL ]] || .venv/bin/python -m tempscale.rehearsal "$TEMPSCALE_DATA" >/dev/null
    fi
    # The grid's runs, and (unless listing) the check that the profile's datasets can be read, before anything runs.
    local preflight=(--profile "$profile")
    [[ $list == 1 ]] || preflight+=(--check-data)
    [[ $download == 0 ]] || preflight+=(--download)
    grid=$(.venv/bin/python -m tempscale grid "${preflight[@]}") || exit 2   # its one-line error is on stderr
    # One job per notebook, or per notebook and grid cell (dataset, arch) for a profile with a grid.
    for nb in $(in_start_order "${notebooks[@]}"); do
        nb_id=$(basename "$nb" | cut -c1-2)
        if [[ -n "$only" && ",$only," != *",$nb_id,"* ]]; then continue; fi
        if [[ -z $grid ]]; then
            jobs+=("$nb||")
        else
            while IFS= read -r job; do
                [[ ${job%%$'\t'*} == "$nb_id" ]] || continue
                job=${job#*$'\t'}
                jobs+=("$nb|${job%%$'\t'*}|${job#*$'\t'}")
            done <<<"$grid"
        fi
    done
    # Parallel notebooks, one thread each: on a 2-core CPU two single-thread notebooks finish sooner than one
    # two-thread notebook after another (benchmarks/bench_main_job.py), and results computed with one thread depend
    # on neither --jobs nor the machine's core count (CPU kernels split their sums by thread). The count is recorded
    # with every result and keys the attack caches; OMP_NUM_THREADS set by the caller wins.
    if [[ $n_jobs -gt 1 ]] && (( BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 501 )); then
        echo "run_all.sh: bash $BASH_VERSION cannot wait for one of several jobs (needs 5.1); running one at a time"
        n_jobs=1
    fi
    local threads=${OMP_NUM_THREADS:-1}
    export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
    local dataset arch params index=0 running=0 pid finished
    local job_index=() job_start=()   # by process id
    local names=() results=()
    for job in "${jobs[@]}"; do
        IFS='|' read -r nb dataset arch <<<"$job"
        name=$(basename "$nb" .ipynb)
        [[ -z $dataset ]] || name="${name}__${dataset}_${arch}"
        names+=("$name"); results+=("")
    done
    while [[ ( $index -lt ${#jobs[@]} && -z $stop ) || $running -gt 0 ]]; do
        while [[ $index -lt ${#jobs[@]} && $running -lt $n_jobs && -z $stop ]]; do
            IFS='|' read -r nb dataset arch <<<"${jobs[$index]}"
            name=${names[$index]}; params=()
            [[ -z $dataset ]] || params=(-p dataset "$dataset" -p arch "$arch")
            stamp="$out/$name.stamp"
            key=$(.venv/bin/python lib/tempscale/stamps.py key "$nb" "$profile" "${params[@]}")
            if [[ $force == 0 ]] && .venv/bin/python lib/tempscale/stamps.py fresh "$stamp" "$key"; then
                results[$index]="current|-"
            elif [[ $list == 1 ]]; then
                results[$index]="to run|"
            else
                echo "==> $name (profile $profile, $threads thread(s); log: $out/$name.log)"
                # The kernel lists every table and figure file it writes in its output log (the stamp's outputs).
                outputs="$out_dir/.$name.outputs"; rm -f "$stamp" "$outputs"
                # The inline backend (ipykernel's default) keeps each figure in the executed copy for the HTML pages.
                # papermill_ipc: papermill with the kernel on private Unix sockets (two kernels starting at once can
                # race for the same TCP port).
                ( MPLBACKEND=module://matplotlib_inline.backend_inline TEMPSCALE_OUTPUT_LOG=$outputs \
                    .venv/bin/python -m tempscale.papermill_ipc "$nb" "$out/$name.ipynb" -k tempscale \
                        -p profile "$profile" "${params[@]}" \
                        --cwd notebooks --log-level WARNING >"$out/$name.log" 2>&1 &&
                    .venv/bin/python lib/tempscale/stamps.py record "$stamp" "$key" "$outputs" "$out/$name.ipynb"
                  status=$?; rm -f "$outputs"; exit $status ) &
                job_index[$!]=$index; job_start[$!]=$SECONDS; running=$((running + 1))
            fi
            index=$((index + 1))
        done
        [[ $running -gt 0 ]] || continue
        finished=0; wait -n -p pid || finished=$?
        running=$((running - 1))
        name=${names[${job_index[$pid]}]}
        if [[ $finished == 0 ]]; then
            status=ok
        else
            status=FAILED; failed+=("$name")
            tail -n 20 "$out/$name.log" >&2
            [[ $keep_going == 1 || -n $stop ]] || stop=$name
        fi
        echo "<== $name $status ($((SECONDS - ${job_start[$pid]})) s)"
        results[${job_index[$pid]}]="$status|$((SECONDS - ${job_start[$pid]})) s"
    done
    for index in "${!names[@]}"; do
        if [[ -z ${results[$index]} ]]; then not_run+=("${names[$index]}"); continue; fi
        summary+=("$(printf '%-52s %-7s %7s' "${names[$index]}" "${results[$index]%%|*}" "${results[$index]#*|}")")
    done
    echo; echo "==> summary (profile $profile; executed copies in $out/; current = up to date, skipped)"
    printf '  %s\n' "${summary[@]}"
    [[ $list == 0 ]] || return 0
    for name in "${not_run[@]}"; do
        printf '  %-52s %-7s (after %s failed; rerun with --keep-going to run it)\n' "$name" "NOT RUN" "$stop"
    done
    if [[ ${#failed[@]} -gt 0 ]]; then
        for name in "${failed[@]}"; do
            echo "FAILED: $name — see $out/$name.ipynb (the failing cell holds the traceback)" >&2
        done
        [[ ${#not_run[@]} -eq 0 ]] || echo "NOT RUN: ${not_run[*]}" >&2
        exit 1
    fi
    if [[ -n $grid ]]; then
        .venv/bin/python -m tempscale assemble --profile "$profile"   # the paper's multi-dataset / multi-model tables
    fi
    # (Only for the committed figures: a run that writes its figures elsewhere leaves the README and pages alone.)
    if [[ $profile == quick && -z $only && $figures == "$ROOT/figures" ]]; then
        # The README's results table is written from the numbers the notebooks recorded (scrapbook), never by hand.
        .venv/bin/python -m tempscale readme --executed "$out"
        .venv/bin/python -m tempscale html --executed "$out"   # notebooks/html/: the executed notebooks, browsable
    fi
}

run_lab() {
    ensure_env
    unset MPLBACKEND   # the kernel then uses the inline backend: figures appear in the notebook
    # One thread, as the main job: the kernel then reads the attacks the batch run cached and shows its numbers.
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${MKL_NUM_THREADS:-${OMP_NUM_THREADS:-1}}
    # TEMPSCALE_RUNS (above) is the batch run's store: interactive cells reuse its runs instead of retraining.
    local as_root=(); [[ $EUID -eq 0 ]] && as_root=(--allow-root)   # containers often run as root
    exec .venv/bin/jupyter lab --notebook-dir=notebooks "${as_root[@]}" "$@"
}

case "${1:-}" in
    test) shift; run_tests "$@" ;;
    lab) shift; run_lab "$@" ;;
    *) run_notebooks "$@" ;;
esac
