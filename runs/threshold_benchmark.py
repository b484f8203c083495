"""Chapter 04's benchmark at full size: the global threshold over 110 million scores in 100 tensors, by selection (padnotes) and by a
full sort (the old rule), side by side in interleaved rounds, with torch.kthvalue and torch.topk alone on the concatenation; random
scores at half kept, then every score zero (the tie-break's worst case). CPU, 2 threads, every other job paused, about 4 GB of memory.
Writes runs/threshold_benchmark_cpu.csv; `python runs/ship_results.py` copies it to padnotes/assets/threshold_benchmark.csv.

    python runs/threshold_benchmark.py
"""

import time
from pathlib import Path

import pandas as pd
import torch

from padnotes.experiments.scoring import benchmark_threshold

if __name__ == "__main__":
    torch.set_num_threads(2)
    t0 = time.time()
    rows = [
        benchmark_threshold(keep_ratio=0.5, ties=ties, repeats=3, device="cpu")
        for ties in (False, True)
    ]
    df = pd.DataFrame(rows)
    out = Path(__file__).parent / "threshold_benchmark_cpu.csv"
    df.to_csv(out, index=False)
    print(
        df.to_string(index=False),
        f"\n{out.name} written in {time.time() - t0:.0f} s",
        flush=True,
    )
