"""SparseAdapter rerun under the authors' adapter and scoring (`SparseAdapterSweep.authors`): adapters after attention and after
the FFN, bottleneck 64, ReLU, a LayerNorm on the adapter's input, SNIP and random scored in eval mode; dense, 40% and 80%,
Large-Sparse m = 2; 5 seeds; the first grid's budget otherwise (2000 training snippets, 3 epochs). Dev split for choices.

1. The learning rate: the dense authors' adapter at LRS, seed 0 (rows in runs/sa_authors_calibrate_<task>.csv); the grid takes the
   best dev accuracy. Full fine-tuning is the first grid's (5e-5).
2. The grid, rows appended to runs/sa_authors_<task>.csv as they finish; a second call resumes.

One thread:  nice -n 10 python runs/sa_authors.py twitter
"""

import dataclasses, sys, time
from pathlib import Path

import pandas as pd
import torch

from padnotes.data import text_loaders
from padnotes.experiments.results import append_row
from padnotes.experiments.sparse_adapter import (
    SparseAdapterSweep,
    sparse_adapter_sweep,
    summarize_sparse_sweep,
    sweep_run,
)

LRS = (3e-4, 1e-3, 3e-3)


def main(task: str):
    torch.set_num_threads(1)
    here = Path(__file__).parent
    cfg = SparseAdapterSweep.authors(task)
    cal_csv = here / f"sa_authors_calibrate_{task}.csv"
    cal = pd.read_csv(cal_csv) if cal_csv.exists() else pd.DataFrame(columns=["lr"])
    dls = None
    for lr in LRS:
        if (cal.lr.round(8) == lr).any():
            continue
        dls = dls or text_loaders(
            task,
            max_len=cfg.max_len,
            batch_size=cfg.batch_size,
            subset=dict(train=cfg.train_size, dev=cfg.eval_size, test=cfg.eval_size),
        )
        r = sweep_run(
            dataclasses.replace(cfg, lr=lr),
            dict(method="dense", criterion="", sparse_ratio=0.0, m=1, seed=0),
            dls,
        )
        append_row(
            cal_csv,
            dict(
                method="dense",
                lr=lr,
                dev_acc=r["dev_acc"],
                test_acc=r["test_acc"],
                trainable=r["trainable"],
                seconds=r["seconds"],
            ),
        )
        print(
            f"calibration: dense lr {lr:g}: dev {r['dev_acc']:.3f} ({r['seconds']:.0f} s)",
            flush=True,
        )
    cal = pd.read_csv(cal_csv)
    best = float(cal.loc[cal.dev_acc.idxmax(), "lr"])
    print(f"calibration: best lr {best:g} (dev {cal.dev_acc.max():.3f})", flush=True)
    t0 = time.time()
    df = sparse_adapter_sweep(
        dataclasses.replace(cfg, lr=best),
        here / f"sa_authors_{task}.csv",
        progress=False,
    )
    print(summarize_sparse_sweep(df).to_string(), flush=True)
    print(f"grid done in {time.time() - t0:.0f} s this call", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "twitter")
