#!/usr/bin/env bash
# padnotes: one entry point for users and CI.
#   bash scripts/run.sh tour     install, then run the quick tour (at most 10 minutes on 2 CPU cores) and
#                                write ./padnotes-tour/report.html   (the main job; options: --full --device --out --seed, see --help)
#   bash scripts/run.sh lab      install, then open the tutorials in JupyterLab
#   bash scripts/run.sh test     install, then run every check and test           (what CI runs)
#   bash scripts/run.sh install  install only (a virtual environment in .venv)
#   bash scripts/run.sh device-check  install, then check and benchmark every method on the GPU (or --device, --size tiny);
#                                writes device-check.json (sized for 8 minutes on one GPU; not yet run on one)
#   bash scripts/run.sh readme   regenerate README.md from nbs/index.ipynb
#   bash scripts/run.sh docs     install, then build the book (every chapter as a web page, offline) into ./_site
# PADNOTES_VENV picks another folder for the environment; PADNOTES_PYTHON another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=${PADNOTES_VENV:-$ROOT/.venv}
BASE_PY=${PADNOTES_PYTHON:-python3}
PY=$VENV/bin/python

log() { printf '\033[1m[padnotes]\033[0m %s\n' "$*"; }

as_root() {  # run a command as root when we are root or sudo works without a password
  if [ "$(id -u)" = 0 ]; then "$@"; elif sudo -n true 2>/dev/null; then sudo -n "$@"; else return 1; fi
}

install_debian() {  # Debian packages: Fashion-MNIST ships as one; the browser test drives Debian's Chromium
  local want=() pkg
  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || want+=(dataset-fashion-mnist)
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || want+=("$pkg"); done
  [ ${#want[@]} -eq 0 ] && return 0
  if command -v apt-get >/dev/null && as_root true 2>/dev/null; then
    log "installing Debian packages: ${want[*]}"
    as_root apt-get update -qq || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
  else
    log "WARNING: missing Debian packages; install them with: sudo apt-get install -y ${want[*]}"
  fi
}

torch_constraint() {  # writes the pip constraint that keeps torch as it should be on this machine
  local cfile=$1 have
  if have=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null); then
    log "torch $have is already installed: keeping it"
    echo "torch==$have" >"$cfile"; return
  fi
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    log "a GPU is present: pip will install its default (CUDA) torch"
    : >"$cfile"; return
  fi
  # CPU machine: the CPU build of torch, never the CUDA one (several GB of nvidia-* packages).
  local dirs="${PIP_FIND_LINKS:-} $("$PY" -m pip config get global.find-links 2>/dev/null || true) /opt/wheels" whl=""
  for d in $dirs; do whl=$(ls "$d"/torch-*+cpu-*.whl 2>/dev/null | head -n1 || true); [ -n "$whl" ] && break; done
  if [ -n "$whl" ]; then
    local v; v=$(basename "$whl" | cut -d- -f2); v=${v%%+*}
    log "CPU machine: using the local CPU wheel of torch $v ($whl)"
    echo "torch==$v" >"$cfile"
  else
    log "CPU machine: taking torch from the PyTorch CPU index"
    echo "torch==2.13.0" >"$cfile"
    export PIP_EXTRA_INDEX_URL="https://download.pytorch.org/whl/cpu ${PIP_EXTRA_INDEX_URL:-}"
  fi
}

install() {  # install [EXTRAS [DEBIAN PACKAGES...]]
  local extras=${1:-dev} t0=$SECONDS
  if [ ! -x "$PY" ]; then
    # Reuse a torch that the interpreter already has (say a CUDA build on a GPU machine) instead of reinstalling it.
    if "$BASE_PY" -c 'import torch' 2>/dev/null; then
      log "creating $VENV (seeing the system's packages, for its torch)"
      "$BASE_PY" -m venv --system-site-packages "$VENV"
    else
      log "creating $VENV"
      "$BASE_PY" -m venv "$VENV"
    fi
  fi
  install_debian "${@:2}"
  local cfile; cfile=$(mktemp); torch_constraint "$cfile"
  log "installing padnotes[$extras] (pip)"
  PIP_CONSTRAINT="$cfile" "$PY" -m pip install -q -e ".[$extras]" 2>&1 | grep -v "is neither a file nor a directory" || true
  "$PY" -c 'import padnotes, torch' || { log "install failed"; exit 1; }
  rm -f "$cfile"
  if "$PY" -m pip list 2>/dev/null | grep -qi '^nvidia-' && ! command -v nvidia-smi >/dev/null; then
    log "ERROR: CUDA packages (nvidia-*) were installed on a machine without a GPU"; exit 1
  fi
  log "installed in $((SECONDS - t0)) s; torch $("$PY" -c 'import torch; print(torch.__version__)'), environment $(du -sh "$VENV" | cut -f1)"
}

readme() {  # README.md is nbs/index.ipynb as markdown, its `#| hide` cells left out as nbdev_readme does (it needs Quarto, which these machines lack)
  "$PY" - <<'PYEOF'
import re, sys, nbformat
from nbconvert import MarkdownExporter
nb = nbformat.read("nbs/index.ipynb", as_version=4)
nb.cells = [c for c in nb.cells if not (c.cell_type == "code" and re.match(r"\s*#\|\s*hide\s*$", c.source.split("\n", 1)[0]))]
sys.stdout.write(MarkdownExporter().from_notebook_node(nb)[0])
PYEOF
}

run_tests() {
  local fail=0 t0=$SECONDS
  export PATH="$VENV/bin:$PATH"
  log "1/5 notebooks are clean (nbdev_clean leaves no diff)"
  local snap; snap=$(mktemp -d); cp -r nbs "$snap/"
  nbdev_clean >/dev/null
  if ! diff -r -q "$snap/nbs" nbs >/dev/null; then log "FAIL: run nbdev_clean and commit"; diff -r "$snap/nbs" nbs | head -20; fail=1; fi
  log "   the notebooks, tests and scripts are formatted and linted (ruff.toml)"
  if ! ruff format --check nbs tests scripts runs; then log "FAIL: run 'ruff format nbs tests scripts runs' and commit"; fail=1; fi
  if ! ruff check .; then log "FAIL: ruff check found problems (ruff check --fix mends many; in a notebook's exported cell, mend the notebook)"; fail=1; fi
  log "2/5 the library is in sync with the notebooks (nbdev_export leaves no diff)"
  rm -rf "$snap/lib"; cp -r padnotes "$snap/lib"
  nbdev_export
  if ! diff -r -q -x __pycache__ "$snap/lib" padnotes >/dev/null; then log "FAIL: run nbdev_export and commit"; diff -r -x __pycache__ "$snap/lib" padnotes | head -20; fail=1; fi
  log "3/5 README.md is in step with nbs/index.ipynb"
  if ! readme | diff -q - README.md >/dev/null; then log "FAIL: README.md drifted from nbs/index.ipynb: run 'bash scripts/run.sh readme'"; readme | diff - README.md | head -20; fail=1; fi
  if [ -n "${NBDEV_FLAGS:-}" ]; then                    # cells under extra flags (a device's cuda cells): nbdev_test, one notebook at a time
    log "4/5 notebooks run top to bottom with flags $NBDEV_FLAGS (nbdev_test --n_workers 0)"
    for nb in nbs/*.ipynb; do
      local s=$SECONDS
      if nbdev_test --path "$nb" --n_workers 0 --flags "$NBDEV_FLAGS" >/tmp/padnotes_nb.log 2>&1; then
        log "  ok   $(printf '%4d' $((SECONDS - s))) s  $nb"
      else
        log "  FAIL $(printf '%4d' $((SECONDS - s))) s  $nb"; cat /tmp/padnotes_nb.log | tail -40; fail=1
      fi
    done
    log "5/5 pytest"
    "$PY" -m pytest tests -q -p no:cacheprovider ${PYTEST_ARGS:-} || fail=1
  else
    # Every notebook runs top to bottom in a fresh kernel at the test size, once: the book's build runs them (nbclient, IN_TEST=1, the
    # cells flagged slow/cuda/notest left out, as nbdev_test leaves them), processes them as nbdev does (show_doc) and builds the site;
    # the browser tests then read that site instead of building a second one.
    log "4/5 notebooks run top to bottom at the test size, and the book is built from them (scripts/book.py)"
    rm -rf _site
    if ! "$PY" scripts/book.py --site _site; then log "FAIL: a notebook or the book's build failed (above)"; fail=1; fi
    log "5/5 pytest"
    PADNOTES_SITE="$PWD/_site" "$PY" -m pytest tests -q -p no:cacheprovider ${PYTEST_ARGS:-} || fail=1
  fi
  log "checks took $((SECONDS - t0)) s"
  return $fail
}

case "${1:-help}" in
  tour)
    install dev
    log "running the padnotes tour (Ctrl-C keeps what is done; the same command resumes)"
    exec "$PY" -m padnotes.tour tour "${@:2}" ;;
  install) install dev ;;
  lab)
    install dev
    log "opening the tutorials in JupyterLab (Ctrl-C stops it)"
    args=(--notebook-dir "$ROOT/nbs" --ServerApp.ip=127.0.0.1); [ "$(id -u)" = 0 ] && args+=(--allow-root)
    exec "$VENV/bin/jupyter" lab "${args[@]}" "${@:2}" ;;
  test) install dev chromium fonts-liberation; run_tests ;;
  check) run_tests ;;
  device-check)
    install dev
    log "device check: exactness, benchmarks, the explorer's slider and the cuda-tagged notebooks on one device"
    exec "$PY" scripts/device_check.py "${@:2}" ;;
  readme) readme >README.md; log "README.md written from nbs/index.ipynb" ;;
  docs)
    install dev
    log "building the book: every notebook run at the test size, then the site (python scripts/book.py --help)"
    exec "$PY" scripts/book.py "${@:2}" ;;
  *) sed -n '2,12p' "$0"; exit 2 ;;
esac
