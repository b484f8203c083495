"""Train-mode against eval-mode scoring, measured once: how far the masks of the two modes differ where padnotes scores.

The authors' code (PAD-Net, SparseAdapter) scores in eval mode; padnotes' default is train mode. Seed 0, dev split untouched:
  - SparseAdapter: the Twitter grid's adapter (SparseAdapterSweep defaults) on MiniLM, SNIP at sparse ratio 0.4 and 0.8, scored on
    10 training batches as the grid does;
  - PAD-Net: IMP on a DY-Conv ResNet-8 at dynamic ratio 0.3, at initialisation, on the regime teaching task (R = 4, width 8).
For each: the Jaccard index of the kept entries of the two modes. Rows go to runs/scoring_mode_cpu.csv.

    python runs/scoring_mode.py
"""

from pathlib import Path

import pandas as pd
import torch

from padnotes.adapters import get_adapter_model, prune_adapters
from padnotes.core import set_seed
from padnotes.data import image_loaders, load_minilm, resnet8, text_loaders
from padnotes.experiments.pad import dynamicize_model
from padnotes.experiments.sparse_adapter import SparseAdapterSweep, _adapter_config
from padnotes.pad import PadConfig, padify

OUT = Path(__file__).with_name("scoring_mode_cpu.csv")


def jaccard(a: dict, b: dict) -> float:
    inter = sum(int((a[k] & b[k]).sum()) for k in a)
    union = sum(int((a[k] | b[k]).sum()) for k in a)
    return inter / max(union, 1)


def adapter_masks(cfg, dls, ratio, train):
    set_seed(0)
    _, model = load_minilm(3, seed=0)
    acfg = _adapter_config(cfg, dict(method="dense"), model.config.hidden_size)
    get_adapter_model(model, acfg)
    dls["train"].generator.manual_seed(1000)
    return {
        k: v.bool()
        for k, v in prune_adapters(
            model,
            ratio,
            "snip",
            data=dls["train"],
            n_batches=cfg.n_batches,
            seed=0,
            train=train,
        ).items()
    }


def imp_masks(dls, train):
    set_seed(0)
    net = dynamicize_model(resnet8(width=8), 4, 0)
    padify(
        net,
        data=dls["train"],
        config=PadConfig(
            dynamic_ratio=0.3, criterion="imp", n_batches=10, seed=0, train=train
        ),
    )
    return {
        n: l.weight_mask.bool()
        for n, l in net.named_modules()
        if hasattr(l, "weight_mask")
    }


def main():
    torch.set_num_threads(1)
    rows = []
    cfg = SparseAdapterSweep(task="twitter")
    dls = text_loaders(
        "twitter",
        max_len=cfg.max_len,
        batch_size=cfg.batch_size,
        subset=dict(train=cfg.train_size, dev=64, test=64),
    )
    for ratio in (0.4, 0.8):
        a, b = (
            adapter_masks(cfg, dls, ratio, True),
            adapter_masks(cfg, dls, ratio, False),
        )
        rows.append(
            dict(
                method="sparse_adapter",
                where=f"{cfg.kind} bottleneck {cfg.bottleneck}, twitter",
                criterion="snip",
                ratio=ratio,
                jaccard=round(jaccard(a, b), 4),
            )
        )
        print(rows[-1], flush=True)
    idl = image_loaders(
        "fashion_mnist",
        batch_size=64,
        subset=dict(train=8000, dev=64, test=64),
        regimes=4,
    )
    a, b = imp_masks(idl, True), imp_masks(idl, False)
    rows.append(
        dict(
            method="pad_net",
            where="DY-Conv ResNet-8 width 8 at initialisation, regimes 4",
            criterion="imp",
            ratio=0.3,
            jaccard=round(jaccard(a, b), 4),
        )
    )
    print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
