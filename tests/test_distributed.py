"fit and evaluate under torchrun: two gloo processes train the same model as one process on the combined batches."

import json, os, socket, subprocess, sys
from pathlib import Path
import pytest, torch
from torch.utils.data import DataLoader
from padnotes.train import distributed_loader, evaluate, fit

sys.path.insert(0, str(Path(__file__).parent))
import ddp_fit


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_torchrun_equal_one_process_on_the_combined_batch(tmp_path):
    r = torchrun(tmp_path, "8")
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in (0, 1)]
    assert [x["world"] for x in ranks] == [2, 2]
    # metrics reduced: every rank has the same history
    assert ranks[0]["history"] == ranks[1]["history"] or all(
        abs(a[k] - b[k]) < 1e-12
        for a, b in zip(ranks[0]["history"], ranks[1]["history"])
        for k in a
        if k != "seconds"
    )
    assert (
        ranks[0]["eval"]["n"] == ranks[1]["eval"]["n"] == 37
    )  # disjoint shards, every example once
    # the reference: one process, batches of 16 drawn in the same shuffled order (the DistributedSampler's, with one replica)
    m = ddp_fit.model()
    dl = distributed_loader(
        DataLoader(ddp_fit.data(), batch_size=16, shuffle=True), num_replicas=1, rank=0
    )
    hist = fit(
        m,
        dl,
        valid_dl=DataLoader(ddp_fit.data(40, seed=1), batch_size=16),
        epochs=2,
        lr=1e-2,
        device="cpu",
        progress=False,
    )
    ddp = torch.load(tmp_path / "weights.pt")
    for k, v in m.state_dict().items():
        torch.testing.assert_close(ddp[k], v, atol=1e-5, rtol=1e-5)
    for a, b in zip(hist, ranks[0]["history"]):
        assert (
            abs(a["train_loss"] - b["train_loss"]) < 1e-5
            and abs(a["valid_acc"] - b["valid_acc"]) < 1e-9
        )
    ev = evaluate(m, DataLoader(ddp_fit.data(37, seed=2), batch_size=5))
    assert (
        abs(ev["accuracy"] - ranks[0]["eval"]["accuracy"]) < 1e-9
        and abs(ev["loss"] - ranks[0]["eval"]["loss"]) < 1e-5
    )
    assert (
        r.stderr.count("train:   0%") == 1
    )  # one progress bar (rank 0 only) was started


def torchrun(tmp_path, *args):
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        PYTHONPATH=os.pathsep.join(
            [str(Path(__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(free_port()),
            str(Path(__file__).with_name("ddp_fit.py")),
            str(tmp_path),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def test_a_sweep_under_torchrun_gives_each_process_its_own_runs(tmp_path):
    import pandas as pd
    from padnotes.experiments.pad import _key
    from padnotes.tour import tour_config

    torchrun(tmp_path, "8", "sweep")
    cfg = tour_config("fashion_mnist", "tiny")
    df = pd.read_csv(tmp_path / "sweep.csv")
    keys = [_key(r) for r in df.to_dict("records")]
    assert sorted(map(str, keys)) == sorted(
        str(_key(dict(r, task=cfg.task))) for r in cfg.runs()
    )  # every run once, no duplicates
    ranks = [json.loads((tmp_path / f"sweep{i}.json").read_text()) for i in (0, 1)]
    assert [(r["rows"], r["world"]) for r in ranks] == [
        (len(cfg.runs()), 2)
    ] * 2  # every process reads all rows back
    assert all(r["mine"] for r in ranks) and not set(ranks[0]["mine"]) & set(
        ranks[1]["mine"]
    )  # each wrote its own runs


def test_fit_refuses_expert_parallel_parameters_under_torchrun(tmp_path):
    torchrun(tmp_path, "8", "expert_parallel")
    for i in (0, 1):
        assert (
            "ExpertParallelMoE keeps different parameters on each rank"
            in (tmp_path / f"ep{i}.txt").read_text()
        )


def test_distributed_loader_shares_are_disjoint_and_cover_the_epoch():
    ds = torch.utils.data.TensorDataset(torch.arange(20.0), torch.zeros(20))
    dl = DataLoader(ds, batch_size=4, shuffle=True)
    for epoch in (0, 1):
        loaders = [distributed_loader(dl, num_replicas=2, rank=r) for r in (0, 1)]
        for l in loaders:
            l.sampler.set_epoch(epoch)
        seen = [int(v) for l in loaders for x, _ in l for v in x]
        assert sorted(seen) == list(range(20))
    with pytest.raises(TypeError):
        distributed_loader([1, 2, 3])
