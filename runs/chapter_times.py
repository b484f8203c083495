"""How long each chapter takes to run top to bottom in a fresh kernel, as a reader runs it (every cell, `#| slow` ones included,
IN_TEST unset: `jupyter nbconvert --execute`, as "Run All" in JupyterLab) and at the test size (`nbdev_test --path`, as the README
tells a reader to run one chapter alone: IN_TEST set, `#| slow` cells left out), on this machine. Run it with the machine otherwise
quiet. Appends one row per notebook and size to runs/chapter_times_cpu.csv and skips those already there, so an interrupted run
resumes; a notebook still running after LIMIT seconds is stopped and recorded as such. Then `python runs/ship_results.py` copies
the file to padnotes/assets/chapter_times.csv, which the first page of the book reads (a hidden cell of nbs/index.ipynb checks that it says them).

    python runs/chapter_times.py [LIMIT]     # LIMIT: seconds per notebook and size, default 900
"""

import json, os, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd

from padnotes.experiments.results import append_row

HERE = Path(__file__).parent
NBS = HERE.parent / "nbs"
OUT = HERE / "chapter_times_cpu.csv"


def run(nb: Path, size: str, limit: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("IN_TEST", "NBDEV_FLAGS")}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        cmd = (
            [str(Path(sys.executable).parent / "nbdev_test"), "--path", str(nb)]
            if size == "test"
            else [
                sys.executable,
                "-m",
                "jupyter",
                "nbconvert",
                "--to",
                "notebook",
                "--execute",
                "--ExecutePreprocessor.timeout=-1",
                "--output-dir",
                d,
                str(nb),
            ]
        )
        t0 = time.perf_counter()
        try:
            p = subprocess.run(
                cmd, cwd=NBS, env=env, capture_output=True, text=True, timeout=limit
            )
            status = (
                "done"
                if p.returncode == 0
                else "error: " + (p.stderr.strip().splitlines() or ["?"])[-1][:200]
            )
        except subprocess.TimeoutExpired:
            status = f"stopped after {limit} s"
        secs = time.perf_counter() - t0
    slow = sum(
        "".join(c["source"]).lstrip().startswith("#| slow")
        for c in json.loads(nb.read_text())["cells"]
        if c["cell_type"] == "code"
    )
    return dict(
        notebook=nb.stem,
        size=size,
        status=status,
        seconds=round(secs, 1),
        limit=limit,
        slow_cells=slow,
        load_before=round(load0, 2),
        cores=os.cpu_count(),
    )


if __name__ == "__main__":
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 900
    done = (
        set(map(tuple, pd.read_csv(OUT)[["notebook", "size"]].values))
        if OUT.exists()
        else set()
    )
    for size in ("test", "reader"):
        for nb in sorted(NBS.glob("*.ipynb")):
            if (nb.stem, size) in done:
                continue
            row = run(nb, size, limit)
            append_row(OUT, row)
            print(
                f"{row['notebook']:28s} {size:6s} {row['status']:30s} {row['seconds']:8.1f} s",
                flush=True,
            )
