"""Issue 16, item 4: what a slider move of the ResNet explorer costs, and how precise its readout is, on this machine's CPU.

Builds the reader's explorer (`Explorer.for_resnet()`: the regime teaching task, 16 regimes, ResNet-8 of width 8, 8000 training
images, 4 epochs, 2000 held-out images), then for each thread
count and `quick` size times 10 moves with `benchmark_slider`: the move itself (the first `quick` held-out images) and the refinement
to all 2000 (what the widget does in the background). Rows go to runs/explorer_slider_<device>.csv; chapter 07 reads the shipped copy.
Pause other jobs first: the figures are meant for a quiet machine.

    python runs/explorer_slider.py; python runs/ship_results.py
"""

import os, subprocess, time
from pathlib import Path

import pandas as pd
import torch

from padnotes.widgets import Explorer, benchmark_slider

MOVES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def main():
    here = Path(__file__).parent
    t0 = time.time()
    ex = Explorer.for_resnet(progress=False, device="cpu")
    print(
        f"explorer built in {time.time() - t0:.0f} s; {ex.state.heldout} held-out images",
        flush=True,
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=here,
    ).stdout.strip()
    rows = []
    for threads in (2, 1):
        for quick in (64, 128, 256):
            ex.num_threads, ex.quick = threads, quick
            ex._records.clear()  # every move measured afresh, not read from an earlier pass
            b = benchmark_slider(ex, ratios=MOVES)
            rows.append(
                dict(
                    task="fashion_mnist_r16",
                    device="cpu",
                    threads=threads,
                    quick=quick,
                    heldout=b["heldout"],
                    moves=b["moves"],
                    move_median_s=b["median_s"],
                    move_max_s=b["max_s"],
                    move_se_median=b["se_median"],
                    refine_median_s=b["refine_median_s"],
                    refined_se_median=b["refined_se_median"],
                    change_se_median=b["change_se_median"],
                    change_abs_median=b["change_abs_median"],
                    clear_changes=b["clear_changes"],
                    cores=os.cpu_count(),
                    load_average=round(os.getloadavg()[0], 2),
                    torch=torch.__version__,
                    commit=commit,
                )
            )
            print(rows[-1], flush=True)
    out = here / "explorer_slider_cpu.csv"
    pd.DataFrame(rows).to_csv(out, index=False)
    print(f"wrote {out} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
