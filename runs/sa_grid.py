"""Issue 12, step 6: the SparseAdapter reproduction grid on the dev split (the test split is recorded, never used for choices).

1. Calibration, extended: runs/sa_calibrate_<task>.csv picked lr 3e-3, the edge of its grid, so the dense adapter is also run at 1e-2
   (seed 0) and the row appended there. The grid uses the learning rate with the best dev accuracy among all calibration rows.
2. The grid (`SparseAdapterSweep` defaults: full fine-tuning, dense Pfeiffer b=32, SNIP/random/magnitude at 0.2-0.8, GraSP and SynFlow
   at 0.4, Large-Sparse m = 2 and 4; seeds 0, 1, 2), one thread, rows appended to runs/sa_grid_<task>.csv as they finish; a second
   call resumes where the first stopped.

    python runs/sa_grid.py rotten_tomatoes
"""

import dataclasses, sys, time
from pathlib import Path

import pandas as pd
import torch

from padnotes.data import text_loaders
from padnotes.experiments.sparse_adapter import (
    SparseAdapterSweep,
    sparse_adapter_sweep,
    summarize_sparse_sweep,
    sweep_run,
)

EXTRA_LRS = (1e-2,)


def main(task: str):
    torch.set_num_threads(1)
    here = Path(__file__).parent
    cfg = SparseAdapterSweep(task=task)
    cal_csv = here / f"sa_calibrate_{task}.csv"
    cal = pd.read_csv(cal_csv)
    for lr in EXTRA_LRS:
        if ((cal.method == "dense") & (cal.lr.round(8) == lr)).any():
            continue
        dls = text_loaders(
            task,
            max_len=cfg.max_len,
            batch_size=cfg.batch_size,
            subset=dict(train=cfg.train_size, dev=cfg.eval_size, test=cfg.eval_size),
        )
        r = sweep_run(
            dataclasses.replace(cfg, lr=lr),
            dict(
                method="dense", criterion="", sparse_ratio=0.0, m=1, seed=cfg.seeds[0]
            ),
            dls,
        )
        row = dict(
            method="dense",
            lr=lr,
            dev_acc=r["dev_acc"],
            test_acc=r["test_acc"],
            trainable=r["trainable"],
            seconds=r["seconds"],
        )
        cal = pd.concat([cal, pd.DataFrame([row])], ignore_index=True)
        cal.to_csv(cal_csv, index=False)
        print(
            f"calibration: dense lr {lr:g}: dev {r['dev_acc']:.3f} ({r['seconds']:.0f} s)",
            flush=True,
        )
    dense = cal[cal.method == "dense"]
    best = float(dense.loc[dense.dev_acc.idxmax(), "lr"])
    print(
        f"calibration: full {cal[cal.method == 'full'].dev_acc.iloc[0]:.3f}, best dense lr {best:g} "
        f"(dev {dense.dev_acc.max():.3f})",
        flush=True,
    )
    t0 = time.time()
    df = sparse_adapter_sweep(
        dataclasses.replace(cfg, lr=best), here / f"sa_grid_{task}.csv"
    )
    print(summarize_sparse_sweep(df).to_string(), flush=True)
    print(f"grid done in {time.time() - t0:.0f} s this call", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "rotten_tomatoes")
