"""The regime teaching tasks' pilots: in which setting does a fully dynamic model beat the static one clearly?

image (the default): a fully dynamic DY-Conv ResNet-8 against the static one.

Fashion-MNIST drawn in R regimes (`image_loaders(..., regimes=R)`: inversion, rotations, mirror images; chapter 01). The recipe is
the earlier Fashion-MNIST pilot's (runs/pad_pilot.py): 8000 training images, 2000 dev, 2000 test, batch 64, lr 3e-3 with the cosine
schedule, K = 4 fresh kernels in every block conv, temperature 30 -> 1 over the first third of the steps. Choices read the dev split
only; the test split is recorded, never used for choices.

Three stages, each decided from the rows already in the file, so the script resumes where it stopped and a later call goes on:
  screen   R in (4, 8, 16) x width in (4, 8), 4 epochs, seeds 0-2, static and dynamic;
  confirm  the two settings with the largest paired t statistic get seeds 3 and 4, and the best of them 8 epochs, seeds 0-4;
           (and every setting that has 5 seeds gets every model on all 5: the text task's dense FFNs of both sizes)
  decide   the rule: among settings with 5 seeds, dynamic minus static (paired by seed, dev) above 2 standard deviations of the
           paired differences and a paired 95% interval above 0; the largest mean difference wins. Printed, and written to
           runs/regime_pilot_decision.json.

text: MiniLM's sentence vectors of Rotten Tomatoes drawn in R rotated frames (`vector_loaders(..., regimes=R)`; chapter 01),
classified by `VectorClassifier` (chapter 03): one residual FFN block, R top-1 experts of width h ("dynamic"), against a dense
FFN of width h ("static", the experts' own size) and a dense FFN with as many parameters as the MoE uses per example, its router
included ("active", `VectorClassifier.matching_width`); 6824 training vectors, the whole dev (852) and test (854) splits, batch
64, lr 3e-3 with the cosine schedule, the Switch balancing loss. Screen: R in (4, 8, 16) x h in (2, 4, 8), 8 epochs; the longer
run has 16. The text pilot ranks and decides against "active": equal parameters per example.

One thread, niced by the caller; rows are appended to runs/regime_pilot.csv (text: runs/regime_pilot_text.csv) as they finish.

    nice -n 10 python runs/regime_pilot.py [text]
"""

import json, sys, time
from pathlib import Path

import pandas as pd
import torch

from padnotes.core import count_params, set_seed
from padnotes.train import evaluate, fit
from padnotes.data import image_loaders, resnet8, vector_loaders
from padnotes.dyconv import TemperatureSchedule
from padnotes.moe import MoEAuxLoss
from padnotes.experiments.moe import VectorClassifier
from padnotes.experiments.pad import dynamicize_model, regime_pilot_table
from padnotes.experiments.results import append_row

HERE = Path(__file__).parent
TEXT = sys.argv[1:] == ["text"]
TASK = "rotten_tomatoes_vectors" if TEXT else "fashion_mnist_regimes"
OUT = HERE / ("regime_pilot_text.csv" if TEXT else "regime_pilot.csv")
DECISION = HERE / (
    "regime_pilot_text_decision.json" if TEXT else "regime_pilot_decision.json"
)
KEY = ["regimes", "width", "epochs", "model", "seed"]
EPOCHS = 8 if TEXT else 4  # the screen's; the longer run doubles it
WIDTHS = (2, 4, 8) if TEXT else (4, 8)
SCREEN = [dict(regimes=r, width=w, epochs=EPOCHS) for r in (4, 8, 16) for w in WIDTHS]
MODELS = ("static", "dynamic", "active") if TEXT else ("static", "dynamic")
BASELINE = (
    "active" if TEXT else "static"
)  # what the rule compares the dynamic model with


def per_regime_accuracy(net, dl, regime) -> list:
    "Accuracy on each regime's examples of an evaluation loader (unshuffled, so its order is the regime tensor's)."
    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x).argmax(-1) for x, _ in dl])
    y = dl.dataset.tensors[1]
    return [
        round((pred[regime == r] == y[regime == r]).float().mean().item(), 4)
        for r in range(int(regime.max()) + 1)
    ]


def run(
    regimes: int, width: int, epochs: int, model: str, seed: int, dls: dict
) -> dict:
    t0 = time.time()
    set_seed(seed)
    if TEXT:  # the MoE has one expert per frame
        experts = regimes if model == "dynamic" else 1
        ffn = width  # "active": the dense FFN as large as the MoE per example
        if model == "active":
            ffn = VectorClassifier.matching_width(width, regimes)
        net = VectorClassifier(width=ffn, num_experts=experts, seed=seed)
        cbs = [MoEAuxLoss()] if model == "dynamic" else []
    else:
        net = resnet8(width=width)
        cbs = []
    if model == "dynamic" and not TEXT:
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
        task=TASK,
        regimes=regimes,
        width=width,
        epochs=epochs,
        model=model,
        seed=seed,
        params=count_params(net),
        **(dict(ffn_width=ffn) if TEXT else {}),
        dev_acc=evaluate(net, dls["dev"])["accuracy"],
        test_acc=evaluate(net, dls["test"])["accuracy"],
        dev_by_regime=json.dumps(
            per_regime_accuracy(net, dls["dev"], dls["regime"]["dev"])
        ),
        seconds=round(time.time() - t0, 1),
    )


def grid(settings, seeds) -> list:
    return [dict(s, model=m, seed=sd) for s in settings for sd in seeds for m in MODELS]


def run_all(todo, done, loaders):
    todo = [g for g in todo if tuple(g[k] for k in KEY) not in done]
    for i, g in enumerate(todo):
        row = run(**g, dls=loaders(g["regimes"]))
        append_row(OUT, row)
        done.add(tuple(g[k] for k in KEY))
        print(
            f"[{i + 1}/{len(todo)}] R={g['regimes']} w={g['width']} e={g['epochs']} {g['model']:7s} seed {g['seed']}: "
            f"dev {row['dev_acc']:.4f} by regime {row['dev_by_regime']} ({row['seconds']} s)",
            flush=True,
        )


def main():
    torch.set_num_threads(1)
    cache = {}

    def loaders(r):
        if r not in cache and TEXT:
            cache.clear()
            cache[r] = vector_loaders(batch_size=64, seed=0, regimes=r)
        if r not in cache:
            cache.clear()
            cache[r] = image_loaders(
                "fashion_mnist",
                batch_size=64,
                subset=dict(train=8000, dev=2000, test=2000),
                seed=0,
                regimes=r,
            )
        return cache[r]

    def read():
        return pd.read_csv(OUT) if OUT.exists() else pd.DataFrame(columns=KEY)

    done = {tuple(r) for r in read()[KEY].itertuples(index=False)}
    print(f"{len(done)} rows done", flush=True)
    run_all(grid(SCREEN, (0, 1, 2)), done, loaders)  # stage 1: screen
    screen = regime_pilot_table(read(), task=TASK, baseline=BASELINE)
    screen = screen.query(f"epochs == {EPOCHS}")
    print(screen.round(2).to_string(), flush=True)
    top = screen.sort_values("t", ascending=False).head(2)
    confirm = [
        dict(regimes=int(r.regimes), width=int(r.width), epochs=EPOCHS)
        for r in top.itertuples()
    ]
    longer = [dict(confirm[0], epochs=2 * EPOCHS)]
    run_all(
        grid(confirm, (3, 4)) + grid(longer, (0, 1, 2, 3, 4)), done, loaders
    )  # stage 2: confirm
    every = read().groupby(["regimes", "width", "epochs"]).seed.nunique()
    five = [dict(zip(every.index.names, k)) for k, n in every.items() if n >= 5]
    run_all(grid(five, (0, 1, 2, 3, 4)), done, loaders)  # every model on their 5 seeds
    table = regime_pilot_table(read(), task=TASK, baseline=BASELINE)
    pd.set_option("display.width", 200)
    print(table.round(2).to_string(), flush=True)
    five = table[table.n >= 5]
    ok = five[(five["diff"] > 2 * five["sd"]) & (five["low"] > 0)]
    pick = ok.sort_values("diff", ascending=False).head(1)
    decision = dict(
        rule=f"5 seeds; dynamic - {BASELINE} (dev, paired by seed) > 2 sd of the paired differences and its 95% interval > 0; "
        "the largest mean difference",
        candidates=five.round(3).to_dict("records"),
        chosen=None
        if pick.empty
        else {
            k: (
                int(v)
                if k in ("regimes", "width", "epochs", "n")
                else round(float(v), 3)
            )
            for k, v in pick.iloc[0].items()
        },
    )
    DECISION.write_text(json.dumps(decision, indent=1) + "\n")
    print("chosen:", decision["chosen"] or "none passes the rule", flush=True)


if __name__ == "__main__":
    main()
