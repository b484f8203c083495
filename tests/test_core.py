"Promises of padnotes.core: device choice, seeding, counting, the training loop."

import math
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from padnotes.core import (
    count_params,
    deploy_numel,
    get_device,
    in_test,
    param_report,
    set_seed,
    split_batch,
    tiny,
    time_fn,
)
from padnotes.train import AddLoss, Callback, evaluate, fit, make_scheduler


def blobs(n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.cat(
        [torch.randn(n, 2, generator=g) + 2, torch.randn(n, 2, generator=g) - 2]
    )
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    return DataLoader(
        TensorDataset(x, y),
        batch_size=32,
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )


def test_tiny_follows_in_test(monkeypatch):
    monkeypatch.setenv("IN_TEST", "1")
    assert in_test() and tiny(100, 1) == 1
    monkeypatch.setenv("IN_TEST", "false")
    assert not in_test() and tiny(100, 1) == 100
    monkeypatch.delenv("IN_TEST")
    assert tiny(100, 1) == 100


@pytest.mark.parametrize("bad", ["gpu", "tpu:0", 3.5])
def test_get_device_rejects_unknown(bad):
    with pytest.raises(ValueError, match="device"):
        get_device(bad)


def test_get_device_default_and_cuda_absent():
    assert get_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert get_device("auto") == get_device(None)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            get_device("cuda:0")


def test_set_seed_reproducible_and_checked():
    set_seed(3)
    a = (torch.rand(4), torch.randint(0, 10, (4,)))
    set_seed(3)
    b = (torch.rand(4), torch.randint(0, 10, (4,)))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(TypeError, match="seed"):
        set_seed("3")


def test_counts_shared_and_trainable():
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin, nn.Linear(3, 1))
    assert count_params(model) == 12 + 4
    model[3].weight.requires_grad_(False)
    assert count_params(model, trainable=True) == 12 + 1
    rep = param_report(model)
    assert {r["module"] for r in rep} == {
        "0",
        "1",
        "3",
    }  # a shared module is listed (and counted) once
    assert math.isclose(sum(r["share"] for r in rep), 1.0)


def test_deploy_numel_uses_module_override_only_where_defined():
    class Folded(nn.Module):
        def __init__(self):
            super().__init__()
            self.kernels = nn.Parameter(torch.zeros(4, 10))

        def deploy_numel(self):
            return 10  # stores one kernel, trains four

    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(Folded(), nn.Linear(2, 1)))
    assert count_params(model) == 6 + 40 + 3
    assert deploy_numel(model) == 6 + 10 + 3


def test_fit_learns_and_returns_history():
    set_seed(0)
    model = nn.Linear(2, 2)
    dl = blobs()
    hist = fit(model, dl, valid_dl=dl, epochs=2, lr=0.1, device="cpu", progress=False)
    assert len(hist) == 2 and hist[-1]["valid_acc"] > 0.95
    assert {"train_loss", "valid_loss", "valid_acc", "seconds"} <= set(hist[0])


def test_fit_is_reproducible_with_seed():
    outs = []
    for _ in range(2):
        set_seed(1)
        model = nn.Linear(2, 2)
        dl = blobs(seed=1)
        fit(model, dl, epochs=1, lr=0.05, device="cpu", progress=False)
        outs.append(model.weight.detach().clone())
    assert torch.equal(*outs)


def test_fit_max_steps_and_sgd():
    calls = []

    class Count(Callback):
        def after_batch(self, tr):
            calls.append(tr.step)

    fit(
        nn.Linear(2, 2),
        blobs(),
        epochs=5,
        opt="sgd",
        lr=0.01,
        max_steps=3,
        cbs=[Count()],
        device="cpu",
        progress=False,
    )
    assert calls == [1, 2, 3]


def test_add_loss_changes_training():
    set_seed(0)
    a = nn.Linear(2, 2)
    fit(a, blobs(), epochs=1, lr=0.1, device="cpu", progress=False)
    set_seed(0)
    b = nn.Linear(2, 2)
    fit(
        b,
        blobs(),
        epochs=1,
        lr=0.1,
        device="cpu",
        progress=False,
        cbs=[AddLoss(lambda tr: 10 * tr.model.weight.abs().sum())],
    )
    assert b.weight.abs().sum() < a.weight.abs().sum()


def test_dict_batches_like_hugging_face():
    class DictModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, features):
            return self.lin(features)

    dl = [dict(features=x, labels=y) for x, y in blobs()]
    res = evaluate(DictModel(), dl)
    assert res["n"] == 256 and 0 <= res["accuracy"] <= 1
    with pytest.raises(ValueError, match="labels"):
        split_batch({"features": torch.zeros(1)})


@pytest.mark.parametrize(
    "kw,msg",
    [
        (dict(epochs=0), "epochs"),
        (dict(opt="adam2"), "optimizer"),
        (dict(sched="step"), "schedule"),
    ],
)
def test_fit_bad_arguments(kw, msg):
    with pytest.raises(ValueError, match=msg):
        fit(nn.Linear(2, 2), blobs(), device="cpu", progress=False, **kw)


def test_fit_rejects_frozen_model_and_empty_loader():
    frozen = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="trainable"):
        fit(frozen, blobs(), device="cpu", progress=False)
    with pytest.raises(ValueError, match="empty"):
        fit(nn.Linear(2, 2), [], device="cpu", progress=False)
    with pytest.raises(ValueError, match="empty"):
        evaluate(nn.Linear(2, 2), [])


@pytest.mark.parametrize("name", ["cosine", "linear", "onecycle", "constant"])
def test_schedules_stay_in_range(name):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    s = make_scheduler(opt, name, n_steps=20, warmup=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        s.step()
    assert all(0 <= l <= 1.0 + 1e-9 for l in lrs) and max(lrs) > 0.5
    if name != "constant":
        assert lrs[-1] < 0.3


def test_time_fn_positive():
    assert time_fn(lambda: sum(range(1000)), repeats=3, warmup=1) > 0
