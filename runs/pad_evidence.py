"""Issue 16, steps 2-3: the PAD-Net sweep re-run on Fashion-MNIST in the setting the pilot found (runs/pad_pilot.csv: a DY-Conv
ResNet-8 of width 8 beats the static one there), on the dev split (the test split is recorded, never used for choices).

1. The grid, `SweepConfig.evidence()`: dynamic ratio 0, 0.1, 0.3, 0.5, 0.7, 1; IMP, random and magnitude partitions; IMP without
   scale factors; 5 seeds. Each run trains the fully dynamic model for 1 epoch (temperature 30 -> 1), starts every static part at
   the data-averaged kernel, partitions (IMP scores in train mode), then trains 3 more epochs. -> runs/pad_evidence_fashion_mnist.csv
2. Ablations of IMP at 0.3 and 0.5, same seeds: partition at initialisation (no warm-up, 4 epochs after it)
   -> runs/pad_ablation_init_fashion_mnist.csv; and 3 IMP iterations instead of 1 -> runs/pad_ablation_iter3_fashion_mnist.csv.

One thread; rows are appended as runs finish and a second call resumes where the first stopped.

    python runs/pad_evidence.py
"""

import dataclasses, time
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
    cfg = SweepConfig.evidence()
    df = pad_sweep(cfg, HERE / "pad_evidence_fashion_mnist.csv")
    ab = dict(ratios=(0.3, 0.5), criteria=("imp",), ablate_scale=False)
    pad_sweep(
        dataclasses.replace(
            cfg, **ab, conv_warmup_epochs=0.0, epochs=4, average_static=False
        ),
        HERE / "pad_ablation_init_fashion_mnist.csv",
    )
    pad_sweep(
        dataclasses.replace(cfg, **ab, iterations=3),
        HERE / "pad_ablation_iter3_fashion_mnist.csv",
    )
    print(summarize_sweep(df).to_string(), flush=True)
    print(paired_claims(df).to_string(), flush=True)
    print(f"done in {time.time() - t0:.0f} s this call", flush=True)


if __name__ == "__main__":
    main()
