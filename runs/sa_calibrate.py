"""Issue 12, step 6 (first part): calibrate the SparseAdapter grid's budget on the dev split: full fine-tuning of MiniLM-L6 against the
dense Pfeiffer adapter (bottleneck 32) at three learning rates, seed 0, 2000 snippets, 3 epochs. Writes runs/sa_calibrate_<task>.csv and
prints whether the best dense adapter comes within 3 points of full fine-tuning.

    python runs/sa_calibrate.py rotten_tomatoes
"""

import json, sys, time
from pathlib import Path
from padnotes.experiments.sparse_adapter import SparseAdapterSweep, calibrate

task = sys.argv[1] if len(sys.argv) > 1 else "rotten_tomatoes"
t0 = time.time()
res = calibrate(SparseAdapterSweep(task=task))
out = Path(__file__).with_name(f"sa_calibrate_{task}.csv")
res["table"].to_csv(out, index=False)
print(res["table"].to_string())
print(
    json.dumps(
        {k: v for k, v in res.items() if k != "table"}
        | dict(seconds=round(time.time() - t0, 1))
    )
)
