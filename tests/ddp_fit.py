"""A user's training script, unchanged for torchrun: `python -m torch.distributed.run --nproc_per_node 2 tests/ddp_fit.py OUT_DIR`.
Used by tests/test_distributed.py (not collected by pytest: no test_ prefix). Writes rank 0's final weights and both ranks' histories."""

import json, os, sys
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from padnotes.core import set_seed
from padnotes.train import dist_info, evaluate, fit


def data(n=96, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long()
    return TensorDataset(x, y)


def model():
    set_seed(0)
    return nn.Sequential(
        nn.Linear(6, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 2)
    )


if __name__ == "__main__":
    out = sys.argv[1]
    per_rank_batch = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    torch.set_num_threads(1)
    if (
        len(sys.argv) > 3 and sys.argv[3] == "sweep"
    ):  # a sweep under torchrun: each process takes its own runs
        import padnotes.experiments.pad as xp
        from padnotes.experiments.pad import pad_sweep
        from padnotes.tour import tour_config

        mine, write = [], xp.append_row
        xp.append_row = lambda path, row: (
            mine.append(str(xp._key(row))),
            write(path, row),
        )  # which runs this process wrote
        df = pad_sweep(
            tour_config("fashion_mnist", "tiny"),
            os.path.join(out, "sweep.csv"),
            device="cpu",
            progress=False,
        )
        rank, world = dist_info()
        from padnotes.train import world_info

        with open(os.path.join(out, f"sweep{world_info()[0]}.json"), "w") as f:
            json.dump(dict(rows=len(df), world=world_info()[1], mine=mine), f)
        sys.exit(0)
    if (
        len(sys.argv) > 3 and sys.argv[3] == "expert_parallel"
    ):  # fit must refuse rank-local parameters
        import torch.distributed as dist
        from padnotes.train import init_distributed
        from padnotes.moe import MoE, ExpertParallelMoE

        init_distributed()
        net = nn.Sequential(
            nn.Linear(6, 8), ExpertParallelMoE(MoE(8, 16, num_experts=4, top_k=1))
        )
        try:
            fit(net, DataLoader(data(), batch_size=8), device="cpu", progress=False)
            msg = "no error"
        except NotImplementedError as e:
            msg = str(e)
        with open(os.path.join(out, f"ep{dist.get_rank()}.txt"), "w") as f:
            f.write(msg)
        sys.exit(0)
    m = model()
    dl = DataLoader(data(), batch_size=per_rank_batch, shuffle=True)
    hist = fit(
        m,
        dl,
        valid_dl=DataLoader(data(40, seed=1), batch_size=16),
        epochs=2,
        lr=1e-2,
        device="cpu",
        progress=True,
    )
    rank, world = dist_info()
    ev = evaluate(
        m, DataLoader(data(37, seed=2), batch_size=5)
    )  # 37: shards of 19 and 18, reduced to all 37
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump(dict(history=hist, world=world, eval=ev), f)
    if rank == 0:
        torch.save(m.state_dict(), os.path.join(out, "weights.pt"))
