"""Issue 16, step 1 (text): a pilot on the dev split for a setting in which a MiniLM-MoE beats the dense MiniLM by more than two seed
standard deviations on Rotten Tomatoes. Models: the dense MiniLM-L6; MoE with E = 4 copied experts, top-2 (PAD-Net's code); MoE with
the FFN split into 4 experts (MoEfication), top-2. Longer training than the shipped sweep (1000 snippets, 3 epochs). Rows are appended
to runs/pad_pilot_text.csv as they finish; a second call resumes. The test split is recorded, never used for choices.

    python runs/pad_pilot_text.py
"""

import csv, time
from pathlib import Path

import torch

from padnotes.core import count_params, set_seed
from padnotes.train import AddLoss, evaluate, fit
from padnotes.data import load_minilm, text_loaders
from padnotes.experiments.pad import moe_aux_loss
from padnotes.experiments.results import append_row
from padnotes.moe import moefy, moe_param_counts

OUT = Path(__file__).with_name("pad_pilot_text.csv")
FIELDS = [
    "task",
    "model",
    "train",
    "epochs",
    "seed",
    "params",
    "active",
    "dev_acc",
    "test_acc",
    "seconds",
]
TRAIN, EPOCHS, LR = 1000, 3, 1e-4
GRID = [
    dict(model=m, seed=s) for s in (0, 1, 2) for m in ("dense", "moe_copy", "moe_split")
]


def run(model: str, seed: int, tok) -> dict:
    t0 = time.time()
    dls = text_loaders(
        "rotten_tomatoes",
        tokenizer=tok,
        max_len=48,
        batch_size=16,
        subset=dict(train=TRAIN, dev=500, test=500),
        seed=0,
    )
    set_seed(seed)
    _, net = load_minilm(2, seed=seed)
    cbs = []
    if model != "dense":
        moefy(
            net,
            num_experts=4,
            top_k=2,
            init="copy" if model == "moe_copy" else "split",
            seed=seed,
        )
        cbs = [AddLoss(moe_aux_loss)]
    pc = (
        moe_param_counts(net)
        if model != "dense"
        else dict(total=count_params(net), active=count_params(net))
    )
    dls["train"].generator.manual_seed(seed)
    fit(net, dls["train"], epochs=EPOCHS, lr=LR, cbs=cbs, device="cpu", progress=False)
    return dict(
        task="rotten_tomatoes",
        model=model,
        train=TRAIN,
        epochs=EPOCHS,
        seed=seed,
        params=pc["total"],
        active=pc["active"],
        dev_acc=evaluate(net, dls["dev"])["accuracy"],
        test_acc=evaluate(net, dls["test"])["accuracy"],
        seconds=round(time.time() - t0, 1),
    )


def main():
    torch.set_num_threads(1)
    done = set()
    if OUT.exists():
        with OUT.open() as f:
            done = {(r["model"], int(r["seed"])) for r in csv.DictReader(f)}
    todo = [g for g in GRID if (g["model"], g["seed"]) not in done]
    print(f"{len(done)} rows done, {len(todo)} to run", flush=True)
    tok, _ = load_minilm(2)
    for i, g in enumerate(todo):
        row = run(**g, tok=tok)
        append_row(OUT, {k: row.get(k) for k in FIELDS})  # the file's column order
        print(f"[{i + 1}/{len(todo)}] {row}", flush=True)


if __name__ == "__main__":
    main()
