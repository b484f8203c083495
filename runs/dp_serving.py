"""Issue 13, step 5: many tasks on one MiniLM base. Rotten Tomatoes (2 classes) and Twitter (3 classes, its head in its diff) as
TaskDiffs at 0.5% density against one full fine-tuned model per task (transformers' save_pretrained), bytes per task and the seconds
to switch tasks, measured side by side by `serving_benchmark` (outputs checked equal first). The diffs are trained only a few steps:
bytes and switch times do not depend on how well they learned. Pause other jobs on the machine while it runs.

    python runs/dp_serving.py
"""

import tempfile, time
from pathlib import Path

import pandas as pd
import torch

from padnotes.core import set_seed
from padnotes.data import load_minilm, text_loaders
from padnotes.diff_pruning import (
    DiffPruningConfig,
    TaskDiff,
    fit_diff,
    get_diff_model,
    project_diff,
)
from padnotes.experiments.diff_pruning import (
    DP_TASKS,
    save_full_model,
    serving_benchmark,
)

if __name__ == "__main__":
    torch.set_num_threads(2)
    t0 = time.time()
    root = Path(tempfile.mkdtemp())
    tok, base = load_minilm(2)
    diffs, full = {}, {}
    for task, classes in DP_TASKS.items():
        dls = text_loaders(
            task,
            tokenizer=tok,
            max_len=32,
            batch_size=16,
            subset=dict(train=64, dev=32, test=32),
        )
        set_seed(0)
        _, m = load_minilm(classes)
        get_diff_model(m, DiffPruningConfig(lr=5e-5, l0_coef=1e-5))
        fit_diff(m, dls["train"], max_steps=4, device="cpu", progress=False)
        project_diff(m)
        td = TaskDiff.from_model(m)
        diffs[task] = td.save(root / task / "diff")
        full[task] = save_full_model(base, td, root / task / "full")
    bench = serving_benchmark(base, diffs, full, repeats=10)
    pd.set_option("display.width", 200)
    print(bench["bytes"].to_string(index=False))
    print(bench["total"])
    print(bench["switch"].to_string(index=False))
    print(f"{time.time() - t0:.0f} s", flush=True)
