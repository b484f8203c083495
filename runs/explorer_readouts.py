"""What the ResNet explorer shows: its readouts at dynamic ratio 1, 0.3, 0.1 (IMP, random, magnitude) and 0, on the regime
teaching task (`Explorer.for_resnet()`, 16 regimes) and on Fashion-MNIST as it is (`regimes=1`), for 3 seeds (one explorer each).

Each move is read twice: right after `set_ratio` / `set_criterion` (the first `quick` held-out images, what a move waits for) and
after `refine()` (all 2000). The last move goes from 0 straight back to 1, so its `change` is ratio 1 minus ratio 0, paired over
the same images. Move times here are taken with other jobs running; chapter 07's timings come from runs/explorer_slider.py on a
quiet machine. Rows go to runs/explorer_readouts_<task>.csv as each explorer finishes; a second call resumes.

    nice -n 10 python runs/explorer_readouts.py; python runs/ship_results.py
"""

import os, time
from pathlib import Path

import torch

from padnotes.experiments.results import append_row, results_csv
from padnotes.widgets import Explorer

HERE = Path(__file__).parent
MOVES = (
    ("imp", 1.0),
    ("imp", 0.3),
    ("imp", 0.1),
    ("random", 0.1),
    ("magnitude", 0.1),
    ("imp", 0.0),
    ("imp", 1.0),
)
READ = ("accuracy", "accuracy_se", "change", "change_se", "batch")


def main():
    torch.set_num_threads(1)
    for regimes in (16, 1):
        task = f"fashion_mnist_r{regimes}" if regimes > 1 else "fashion_mnist"
        out = HERE / f"explorer_readouts_{task}.csv"
        done = results_csv(out, missing_ok=True)
        for seed in (0, 1, 2):
            if len(done) and ((done.task == task) & (done.seed == seed)).any():
                continue
            t0 = time.time()
            ex = Explorer.for_resnet(
                regimes=regimes, seed=seed, progress=False, device="cpu", num_threads=1
            )
            built = time.time() - t0
            rows = []
            for step, (criterion, ratio) in enumerate(MOVES):
                t1 = time.perf_counter()
                ex.set_criterion(criterion)
                st = ex.set_ratio(ratio)
                move_s = time.perf_counter() - t1
                quick = {f"quick_{k}": getattr(st, k) for k in READ}
                t1 = time.perf_counter()
                st = ex.refine()
                refine_s = time.perf_counter() - t1
                rows.append(
                    dict(
                        task=task,
                        seed=seed,
                        step=step,
                        criterion=criterion,
                        ratio=ratio,
                        realised_ratio=st.realised_ratio,
                        deploy=st.deploy,
                        **quick,
                        **{k: getattr(st, k) for k in READ},
                        move_s=move_s,
                        refine_s=refine_s,
                        build_s=built,
                        load_average=round(os.getloadavg()[0], 2),
                    )
                )
            for r in rows:
                append_row(out, r)
            print(
                task,
                seed,
                [(r["criterion"], r["ratio"], round(r["accuracy"], 4)) for r in rows],
                f"{time.time() - t0:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
