"""Chapter 02's experiment at full size: a static and a dynamic ResNet-8 (K = 4, tau annealed from 30 to 1 over the first third of
the steps) trained from scratch on the whole of Fashion-MNIST with the same seed, data order and budget (2 epochs, batch 128, AdamW
3e-3, cosine), by `compare_static_dynamic`, once per seed. Run it with the machine otherwise quiet: it records seconds per epoch.
Appends to runs/dyconv_compare_cpu.csv (one row per model and seed, with the settings and the load average) and
runs/dyconv_class_attention_cpu.csv (the dynamic model's mean attention per test class, layer and kernel), and skips the seeds
already there; then `python runs/ship_results.py` copies them to padnotes/assets, where chapter 02 reads them (`compare_results()`).

    python runs/dyconv_compare.py 0 1 2    # the seeds; about 3.5 minutes each on 2 CPU cores
"""

import os, sys, time
from pathlib import Path
import pandas as pd, torch

from padnotes.core import set_seed
from padnotes.data import image_loaders
from padnotes.experiments.dyconv import compare_static_dynamic
from padnotes.experiments.results import append_row

SETTINGS = dict(epochs=2, batch_size=128)
HERE = Path(__file__).parent
TABLE, ATTENTION = (
    HERE / "dyconv_compare_cpu.csv",
    HERE / "dyconv_class_attention_cpu.csv",
)


def append(path: Path, df: pd.DataFrame):
    for row in df.to_dict("records"):
        append_row(path, row)


def run(seed: int):
    t0, load0 = time.time(), os.getloadavg()[0]
    set_seed(seed)
    dls = image_loaders("fashion_mnist", batch_size=SETTINGS["batch_size"], seed=seed)
    res = compare_static_dynamic(
        dls, epochs=SETTINGS["epochs"], seed=seed, progress=True
    )
    tab = res["table"].assign(
        **SETTINGS,
        seed=seed,
        threads=torch.get_num_threads(),
        train_images=len(dls["train"].dataset),
        dev_images=len(dls["dev"].dataset),
        test_images=len(dls["test"].dataset),
        load_before=round(load0, 2),
        load_after=round(os.getloadavg()[0], 2),
    )
    rows = [
        dict(seed=seed, layer=n, cls=dls["classes"][c], kernel=k, weight=float(a[c, k]))
        for n, a in res["class_attention"].items()
        for c in range(a.shape[0])
        for k in range(a.shape[1])
    ]
    append(ATTENTION, pd.DataFrame(rows).rename(columns={"cls": "class"}))
    append(TABLE, tab)  # the table last: a seed is done when it is there
    print(
        tab.round(4).to_string(index=False),
        f"\nseed {seed} written in {time.time() - t0:.0f} s",
        flush=True,
    )


if __name__ == "__main__":
    done = set(pd.read_csv(TABLE).seed) if TABLE.exists() else set()
    for s in [int(a) for a in sys.argv[1:]] or [0]:
        if s in done:
            print(f"seed {s}: already in {TABLE.name}, skipped", flush=True)
        else:
            run(s)
