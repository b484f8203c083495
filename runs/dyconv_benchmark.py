"""Chapter 02's benchmark at full size: one DynamicConv2d layer (64 channels, 28x28, K = 4, 3x3) in each formulation against the static
convolution and the per-sample loop, forward and forward+backward, at batch 1, 32 and 128, on the CPU with 2 threads. Every other job on
the machine should be paused while it runs. Writes runs/dyconv_benchmark_cpu.csv (one row per batch and implementation); then
`python runs/ship_results.py` copies it to padnotes/assets/dyconv_benchmark.csv, which chapter 02 reads.

    python runs/dyconv_benchmark.py
"""

import time
from pathlib import Path

from padnotes.experiments.dyconv import benchmark_dyconv

SETTINGS = dict(
    batch_sizes=(1, 32, 128),
    channels=64,
    size=28,
    num_kernels=4,
    device="cpu",
    num_threads=2,
)

if __name__ == "__main__":
    t0 = time.time()
    df = benchmark_dyconv(**SETTINGS)
    for k in ("threads", "channels", "size", "num_kernels", "groups"):
        df[k] = df.attrs[k]
    out = Path(__file__).parent / "dyconv_benchmark_cpu.csv"
    df.round(4).to_csv(out, index=False)
    print(
        df.round(2).to_string(index=False),
        f"\n{out.name} written in {time.time() - t0:.0f} s",
        flush=True,
    )
