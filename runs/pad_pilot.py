"""Issue 16, step 1: a pilot on the dev split for a setting in which a fully dynamic DY-Conv ResNet-8 beats the static one by more
than two seed standard deviations on Fashion-MNIST. Grid: width x epochs x {static, dynamic} x seeds, the sweep's other settings
(8000 training images, 2000 dev, 2000 test, batch 64, lr 3e-3, K = 4, temperature 30 -> 1 over the first third of the steps).
Rows are appended to runs/pad_pilot.csv as they finish; a second call skips the rows already there (resume). The test split is
recorded, never used for choices.

    python runs/pad_pilot.py            # the whole grid, one thread
"""

import csv, time
from pathlib import Path

import torch

from padnotes.core import count_params, set_seed
from padnotes.train import evaluate, fit
from padnotes.data import image_loaders, resnet8
from padnotes.dyconv import TemperatureSchedule
from padnotes.experiments.pad import dynamicize_model
from padnotes.experiments.results import append_row

OUT = Path(__file__).with_name("pad_pilot.csv")
FIELDS = [
    "task",
    "width",
    "epochs",
    "model",
    "seed",
    "params",
    "dev_acc",
    "test_acc",
    "seconds",
]
GRID = [
    dict(width=w, epochs=e, model=m, seed=s)
    for w in (4, 8, 16)
    for e in (2, 4)
    for s in (0, 1, 2)
    for m in ("static", "dynamic")
]
GRID += [
    dict(width=w, epochs=4, model=m, seed=s)
    for w in (8, 16)
    for s in (3, 4)
    for m in ("static", "dynamic")
]  # 5 seeds where it may show
GRID += [
    dict(width=w, epochs=8, model=m, seed=s)
    for w in (4, 8)
    for s in (0, 1, 2)
    for m in ("static", "dynamic")
]  # longer: does the gap grow?


def run(width: int, epochs: int, model: str, seed: int, dls: dict) -> dict:
    t0 = time.time()
    set_seed(seed)
    net = resnet8(width=width)
    cbs = []
    if model == "dynamic":
        dynamicize_model(net, 4, seed)
        cbs = [
            TemperatureSchedule(
                30.0, 1.0, steps=max(1, epochs * len(dls["train"]) // 3)
            )
        ]
    dls["train"].generator.manual_seed(seed)
    fit(
        net, dls["train"], epochs=epochs, lr=3e-3, cbs=cbs, device="cpu", progress=False
    )
    return dict(
        task="fashion_mnist",
        width=width,
        epochs=epochs,
        model=model,
        seed=seed,
        params=count_params(net),
        dev_acc=evaluate(net, dls["dev"])["accuracy"],
        test_acc=evaluate(net, dls["test"])["accuracy"],
        seconds=round(time.time() - t0, 1),
    )


def main():
    torch.set_num_threads(1)
    done = set()
    if OUT.exists():
        with OUT.open() as f:
            done = {
                (int(r["width"]), int(r["epochs"]), r["model"], int(r["seed"]))
                for r in csv.DictReader(f)
            }
    todo = [
        g for g in GRID if (g["width"], g["epochs"], g["model"], g["seed"]) not in done
    ]
    print(f"{len(done)} rows done, {len(todo)} to run", flush=True)
    dls = image_loaders(
        "fashion_mnist",
        batch_size=64,
        subset=dict(train=8000, dev=2000, test=2000),
        seed=0,
    )
    for i, g in enumerate(todo):
        row = run(**g, dls=dls)
        append_row(OUT, {k: row.get(k) for k in FIELDS})  # the file's column order
        print(f"[{i + 1}/{len(todo)}] {row}", flush=True)


if __name__ == "__main__":
    main()
