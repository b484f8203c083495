"""Issue 13, a follow-up to the grid: is the gap at 0.5% density the grid's short fixed-mask fine-tuning?

The grid (runs/dp_grid.py) fine-tunes each projected diff for 1 epoch; the paper fine-tunes 3 to 5. This script reruns the grid's
unstructured diff pruning units (same settings, same seeds, the calibrated L0 weight) at 0.5% with 3 epochs of fixed-mask
fine-tuning, and appends the rows to runs/dp_finetune_epochs_<task>.csv (a second call resumes). Everything before the projection is
the grid's run again, so each row's `pre_dev_acc` must equal the grid's for its seed: the script checks it. Dev split only.

    python runs/dp_finetune_epochs.py rotten_tomatoes
"""

import dataclasses, sys, time
from pathlib import Path

import pandas as pd
import torch

from padnotes.data import text_loaders
from padnotes.experiments.diff_pruning import (
    DiffPruningSweep,
    _key,
    calibrate_l0,
    sweep_unit,
)
from padnotes.experiments.results import append_row

FINETUNE_EPOCHS = 3
DENSITY = 0.005


def main(task: str):
    torch.set_num_threads(1)
    t0 = time.time()
    here = Path(__file__).parent
    grid = pd.read_csv(here / f"dp_grid_{task}.csv")
    cal = calibrate_l0(
        DiffPruningSweep(task=task), here / f"dp_calibrate_{task}.csv"
    )  # read back: it trains nothing when done
    cfg = dataclasses.replace(
        DiffPruningSweep(task=task),
        l0_coef=cal["best_l0"],
        densities=(DENSITY,),
        structured=(False,),
        finetune_epochs=FINETUNE_EPOCHS,
    )
    out = here / f"dp_finetune_epochs_{task}.csv"
    done = (
        {
            _key(r["task"], r["method"], r["density"], r["seed"])
            for r in pd.read_csv(out).to_dict("records")
        }
        if out.exists()
        else set()
    )
    dls = text_loaders(
        task,
        max_len=cfg.max_len,
        batch_size=cfg.batch_size,
        subset=dict(train=cfg.train_size, dev=cfg.eval_size, test=cfg.eval_size),
    )
    for u in cfg.units():
        if u["method"] != "diff" or _key(task, "diff", DENSITY, u["seed"]) in done:
            continue
        for row in sweep_unit(
            cfg, u, dls, write=lambda r: append_row(out, r), progress=False
        ):
            g = grid[
                (grid.method == "diff")
                & (grid.density == DENSITY)
                & (grid.seed == u["seed"])
            ].iloc[0]
            same = abs(row["pre_dev_acc"] - g.pre_dev_acc) < 1e-9
            print(
                f"seed {u['seed']}: before projection {row['pre_dev_acc']:.3f} (grid {g.pre_dev_acc:.3f}, {'same' if same else 'DIFFERENT'}); "
                f"at {DENSITY:.1%} after {FINETUNE_EPOCHS} epochs {row['dev_acc']:.3f} (grid, 1 epoch: {g.dev_acc:.3f}); "
                f"{time.time() - t0:.0f} s",
                flush=True,
            )
    print(f"done in {time.time() - t0:.0f} s this call", flush=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "rotten_tomatoes")
