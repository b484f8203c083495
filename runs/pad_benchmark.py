"""Chapter 05's benchmark of merged partially dynamic layers at full size: `benchmark_pad(repeats=30)` (batch 32, 64 channels, 28x28,
K = 4; r = 0.1, 0.3, 0.5 against the fully dynamic layer and a static convolution, timed in the same rounds), on the CPU with 2 threads
and every other job paused. Writes runs/pad_benchmark_cpu.csv; `python runs/ship_results.py` copies it to
padnotes/assets/pad_benchmark.csv, which chapter 05 reads.

    python runs/pad_benchmark.py
"""

import time
from pathlib import Path

import torch

from padnotes.experiments.pad import benchmark_pad

if __name__ == "__main__":
    torch.set_num_threads(2)
    t0 = time.time()
    df = benchmark_pad(repeats=30, device="cpu")
    df["threads"] = torch.get_num_threads()
    out = Path(__file__).parent / "pad_benchmark_cpu.csv"
    df.to_csv(out, index=False)
    print(
        df.round(4).to_string(index=False),
        f"\n{out.name} written in {time.time() - t0:.0f} s",
        flush=True,
    )
