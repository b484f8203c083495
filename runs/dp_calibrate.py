"""Issue 13, step 6 (calibration): the L0 weight of the diff pruning grid, chosen on the dev split. Gated diff pruning (seed 0, the grid's
budget: 2000 snippets, 3 epochs, lr 5e-5 for the diff, 0.1 for the gates) at lambda = 1.25e-7 (the paper's), 1e-6 and 1e-5, each
projected to 0.5% and fine-tuned 1 epoch with the mask fixed. Rows go to runs/dp_calibrate_rotten_tomatoes.csv as each lambda finishes
(the lambda = 1e-5 rows come from the first grid run, which used it; they are the same computation); a second call resumes.

    python runs/dp_calibrate.py
"""

import json, time
from pathlib import Path

import torch

from padnotes.experiments.diff_pruning import DiffPruningSweep, calibrate_l0

if __name__ == "__main__":
    torch.set_num_threads(1)
    t0 = time.time()
    res = calibrate_l0(
        DiffPruningSweep(), Path(__file__).with_name("dp_calibrate_rotten_tomatoes.csv")
    )
    print(res["table"].to_string(), flush=True)
    print(
        json.dumps(
            dict(
                best_l0=res["best_l0"],
                best_dev=res["best_dev"],
                seconds=round(time.time() - t0),
            )
        ),
        flush=True,
    )
