"""Does the MoE's router find the frames of the text teaching task? For the pilot's settings at 8 and 16 frames, train the MoE of
`runs/regime_pilot.py text` (one top-1 expert per frame, 8 epochs, the pilot's recipe) on 5 seeds and count, on the dev split,
which expert each frame's vectors go to (`routing_table`, `routing_purity`; chapter 03).

One thread; rows are appended to runs/text_routing.csv as they finish, and a second call resumes.

    nice -n 10 python runs/text_routing.py
"""

import json, time
from pathlib import Path

import pandas as pd
import torch

from padnotes.data import vector_loaders
from padnotes.moe import MoEAuxLoss
from padnotes.train import evaluate, fit
from padnotes.experiments.moe import VectorClassifier, routing_purity, routing_table
from padnotes.experiments.results import append_row

HERE = Path(__file__).parent
OUT = HERE / "text_routing.csv"
SETTINGS = [(8, 2), (8, 4), (16, 2), (16, 4)]  # (frames, expert width)
SEEDS = (0, 1, 2, 3, 4)


def main():
    torch.set_num_threads(1)
    done = set()
    if OUT.exists():
        old = pd.read_csv(OUT)
        done = set(zip(old.regimes, old.width, old.seed))
    for regimes, width in SETTINGS:
        dls = vector_loaders(batch_size=64, seed=0, regimes=regimes)
        for seed in SEEDS:
            if (regimes, width, seed) in done:
                continue
            t0 = time.time()
            net = VectorClassifier(width=width, num_experts=regimes, seed=seed)
            dls["train"].generator.manual_seed(seed)
            fit(
                net,
                dls["train"],
                epochs=8,
                lr=3e-3,
                cbs=[MoEAuxLoss()],
                device="cpu",
                progress=False,
            )
            x = dls["dev"].dataset.tensors[0]
            table = routing_table(net, x, dls["regime"]["dev"])
            row = dict(
                task="rotten_tomatoes_vectors",
                regimes=regimes,
                width=width,
                epochs=8,
                seed=seed,
                dev_acc=evaluate(net, dls["dev"])["accuracy"],
                **routing_purity(table),
                table=json.dumps(table.tolist()),
                seconds=round(time.time() - t0, 1),
            )
            append_row(OUT, row)
            print(
                f"R={regimes} w={width} seed {seed}: purity {row['purity']:.3f} "
                f"(chance {row['chance']:.3f}), dev {row['dev_acc']:.4f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
