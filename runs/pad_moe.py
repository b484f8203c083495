"""PAD-Net's MoE claim (+1.9 GLUE at 50% dynamic over the fully dynamic BERT-MoE), measured on MiniLM and Rotten Tomatoes:
`SweepConfig.pad_moe()`, per seed the dense model, the fully dynamic MoE and PAD-MoE at 50% (IMP), 5 seeds, paired by seed. Dev
split for choices; test recorded.

One thread; rows are appended to runs/pad_moe_rotten_tomatoes.csv as they finish, and a second call resumes.

    nice -n 10 python runs/pad_moe.py
"""

import time
from pathlib import Path

import torch

from padnotes.experiments.pad import (
    SweepConfig,
    pad_sweep,
    paired_claims,
    summarize_sweep,
)

HERE = Path(__file__).parent


def main():
    torch.set_num_threads(1)
    t0 = time.time()
    df = pad_sweep(
        SweepConfig.pad_moe(), HERE / "pad_moe_rotten_tomatoes.csv", progress=False
    )
    print(summarize_sweep(df).to_string(), flush=True)
    print(paired_claims(df).to_string(), flush=True)
    print(f"done in {time.time() - t0:.0f} s this call", flush=True)


if __name__ == "__main__":
    main()
