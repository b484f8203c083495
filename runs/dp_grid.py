"""Issue 13, step 6: the diff pruning grid on the dev split (the test split is recorded, never used for choices).

`DiffPruningSweep` defaults: MiniLM-L6 on 2000 training snippets, 3 epochs; per seed (0, 1, 2) full fine-tuning (a dense diff; its
projection is the non-adaptive baseline), diff pruning and structured diff pruning; each projected to 5%, 1% and 0.5% density and
fine-tuned 1 epoch with the mask fixed. The L0 weight is the one `calibrate_l0` picks on dev (runs/dp_calibrate_<task>.csv; the
calibration runs first when lambdas are missing). One thread; rows are appended to runs/dp_grid_<task>.csv as they finish, and a
second call resumes where the first stopped.

The structured variant runs with the authors' code's penalty (`group_penalty="sum"`). Its seed-0 run with the paper's equation
(`"product"`) is kept in runs/dp_structured_product_<task>.csv: its group gates shut within the first epoch (chapter 13 explains why).

    python runs/dp_grid.py rotten_tomatoes
"""

import dataclasses, sys, time
from pathlib import Path

import pandas as pd
import torch

from padnotes.experiments.diff_pruning import (
    DiffPruningSweep,
    calibrate_l0,
    diff_claims,
    diff_pruning_sweep,
    summarize_diff_sweep,
)


def main(task: str):
    torch.set_num_threads(1)
    t0 = time.time()
    here = Path(__file__).parent
    cfg = DiffPruningSweep(task=task)
    cal = calibrate_l0(cfg, here / f"dp_calibrate_{task}.csv")
    print(
        cal["table"].to_string(),
        f"\nL0 weight: {cal['best_l0']:g} (dev {cal['best_dev']:.3f} at 0.5%)",
        flush=True,
    )
    df = diff_pruning_sweep(
        dataclasses.replace(cfg, l0_coef=cal["best_l0"]), here / f"dp_grid_{task}.csv"
    )
    pd.set_option("display.width", 200)
    print(
        summarize_diff_sweep(df)[
            ["method", "density", "mean ± std", "n", "file_bytes", "expected_density"]
        ].to_string(),
        flush=True,
    )
    print(diff_claims(df).to_string(), flush=True)
    print(f"grid done in {time.time() - t0:.0f} s this call", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "rotten_tomatoes")
