"""PAD-Net's questions on the regime teaching task, in the setting the pilot chose (runs/regime_pilot_decision.json, written by
runs/regime_pilot.py): `SweepConfig.regime(R, width)`, dynamic ratio 0, 0.1, 0.3, 0.5, 0.7, 1; IMP, random and magnitude; IMP
without scale factors; 5 seeds, paired by seed. Dev split for choices; test recorded.

text: the text teaching task's grid (runs/regime_pilot_text_decision.json, from `runs/regime_pilot.py text`):
`SweepConfig.text_regime(R, width, epochs)`, the same ratios and criteria on the MoE's experts.

One thread; rows are appended to runs/pad_regime_<task>_r<R>.csv as runs finish, and a second call resumes.

    nice -n 10 python runs/regime_grid.py [text]
"""

import json, sys, time
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
    text = sys.argv[1:] == ["text"]
    name = "regime_pilot_text_decision.json" if text else "regime_pilot_decision.json"
    decision = json.loads((HERE / name).read_text())
    chosen = decision["chosen"]
    if chosen is None:
        sys.exit(f"the pilot chose no setting (runs/{name}): nothing to run")
    t0 = time.time()
    cfg = (
        SweepConfig.text_regime(chosen["regimes"], chosen["width"], chosen["epochs"])
        if text
        else SweepConfig.regime(chosen["regimes"], chosen["width"])
    )
    df = pad_sweep(cfg, HERE / f"pad_regime_{cfg.row_task}.csv", progress=False)
    print(summarize_sweep(df).to_string(), flush=True)
    print(paired_claims(df).to_string(), flush=True)
    print(f"done in {time.time() - t0:.0f} s this call", flush=True)


if __name__ == "__main__":
    main()
