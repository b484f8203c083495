"SparseAdapter (chapter 12) and its grid (12a): exact sparse ratios, fixed masks, the zero-B handling, the Large-Sparse budget, the sweep's CSV."

import dataclasses, warnings
import pytest, torch
from transformers import BertConfig, BertForSequenceClassification
from padnotes.adapters import (
    AdapterConfig,
    adapter_masks,
    get_adapter_model,
    prune_adapters,
    adapter_layers,
)
from padnotes.core import count_params
from padnotes.scoring import UnrankableScoresWarning
from padnotes.sparse_adapter import (
    SPARSE_CRITERIA,
    large_sparse_config,
    realised_sparse_ratio,
    sparse_adapter_model,
    unpruned_numel,
)


def bert(seed=0, hidden=32):
    torch.manual_seed(seed)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=99,
            hidden_size=hidden,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=2,
        )
    )


def batches(n, seed=0, bs=8):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(8, 99, (n, bs, 10), generator=g)
    lab = torch.randint(0, 2, (n, bs), generator=g)
    ids[..., 3] = torch.where(lab.bool(), 7, ids[..., 3])
    return list(zip(ids, lab))


def adapter_cfg(kind, **kw):
    return AdapterConfig(
        kind=kind, **({"r": 4} if kind == "lora" else {"bottleneck": 8}), **kw
    )


@pytest.mark.parametrize("kind", ["pfeiffer", "lora"])
@pytest.mark.parametrize("crit", SPARSE_CRITERIA)
def test_every_criterion_keeps_exactly_the_asked_count(kind, crit):
    data = batches(1)
    for rho in (0.2, 0.4, 0.6, 0.8):
        m = sparse_adapter_model(
            bert(),
            adapter_cfg(kind, sparse_ratio=rho, criterion=crit),
            data,
            n_batches=1,
        )
        masks = adapter_masks(m)
        w = dict(m.named_parameters())
        N = sum(v.numel() for v in masks.values())
        assert sum(int(v.sum()) for v in masks.values()) == round((1 - rho) * N), (
            crit,
            rho,
        )
        assert abs(realised_sparse_ratio(m) - rho) <= 1 / N
        assert all(
            int((w[k][~v] != 0).sum()) == 0 for k, v in masks.items()
        )  # pruned entries stored as 0
        assert unpruned_numel(m) == count_params(m, trainable=True) - (
            N - round((1 - rho) * N)
        )


@pytest.mark.parametrize(
    "kind,crit", [("houlsby", "snip"), ("lora", "random")]
)  # (SNIP at 0.6 can empty a LoRA A: its B then cannot train)
def test_masked_entries_stay_zero_under_adamw_with_weight_decay(kind, crit):
    m = sparse_adapter_model(
        bert(),
        adapter_cfg(kind, sparse_ratio=0.6, criterion=crit),
        batches(2),
        n_batches=2,
        train_modules=("classifier",),
    )
    masks = {k: v.clone() for k, v in adapter_masks(m).items()}
    start = {k: p.detach().clone() for k, p in m.named_parameters() if k in masks}
    opt = torch.optim.AdamW(
        [p for p in m.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1
    )
    for ids, lab in batches(6, seed=1):
        loss = m(input_ids=ids, labels=lab).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = dict(m.named_parameters())
    for k, v in masks.items():
        assert torch.equal(adapter_masks(m)[k], v)
        assert int((w[k][~v] != 0).sum()) == 0, k
    trained = [
        k for k, v in masks.items() if v.any() and not torch.equal(w[k][v], start[k][v])
    ]
    assert trained == list(masks)  # the kept entries did train
    assert any(
        p.requires_grad for n, p in m.named_parameters() if n.startswith("classifier")
    )


@pytest.mark.parametrize("crit", ["snip", "synflow"])
@pytest.mark.parametrize("kind,init", [("lora", "bert"), ("pfeiffer", "identity")])
def test_zero_matrices_warn_unscored_and_are_scored_with_noise(kind, init, crit):
    data = batches(2)

    def zero_names(m):
        return [
            k
            for k, p in m.named_parameters()
            if k in adapter_masks(m) and not p.detach().any()
        ]

    m = get_adapter_model(bert(), adapter_cfg(kind, init=init, sparse_ratio=0.5))
    zeros = zero_names(m)
    assert zeros and len(zeros) < len(adapter_masks(m))
    with pytest.warns(UnrankableScoresWarning):
        prune_adapters(m, 0.5, crit, data=data, n_batches=2, zero_init="none")
    m = get_adapter_model(bert(), adapter_cfg(kind, init=init, sparse_ratio=0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnrankableScoresWarning)
        masks = prune_adapters(
            m, 0.5, crit, data=data, n_batches=2
        )  # zero_init="noise" by default: no warning
    assert zero_names(m) == zeros  # back to exactly 0: the base model at first
    zk, other = (
        sum(int(masks[k].sum()) for k in zeros),
        sum(int(v.sum()) for k, v in masks.items() if k not in zeros),
    )
    assert zk > 0 and other > 0  # both kinds of matrix partly kept
    assert sum(int(v.sum()) for v in masks.values()) == round(
        0.5 * sum(v.numel() for v in masks.values())
    )


def test_noise_scores_rank_independently_of_the_noise_scale():
    from padnotes.scoring import jaccard

    def masks(std):
        m = get_adapter_model(bert(), adapter_cfg("lora", sparse_ratio=0.5))
        ms = prune_adapters(
            m, 0.5, "snip", data=batches(2), n_batches=2, noise_std=std, seed=0
        )
        return torch.cat([v.flatten() for v in ms.values()])

    assert jaccard(masks(2e-3), masks(2e-4)) > 0.95


def test_magnitude_on_zero_b_without_noise_removes_b_whole():
    m = get_adapter_model(bert(), adapter_cfg("lora", sparse_ratio=0.5))
    with pytest.warns(UnrankableScoresWarning):
        ms = prune_adapters(m, 0.5, "magnitude", zero_init="none")
    assert all(int(v.sum()) == 0 for k, v in ms.items() if "lora_B" in k)
    ms = prune_adapters(
        get_adapter_model(bert(), adapter_cfg("lora", sparse_ratio=0.5)),
        0.5,
        "magnitude",
    )
    assert all(0 < int(v.sum()) < v.numel() for k, v in ms.items() if "lora_B" in k)


@pytest.mark.parametrize("kind", ["houlsby", "pfeiffer", "parallel", "lora"])
@pytest.mark.parametrize("mult", [2, 3, 4])
def test_large_sparse_trains_as_many_numbers_as_the_dense_adapter(kind, mult):
    dense_cfg = (
        AdapterConfig(kind=kind, bottleneck=4)
        if kind != "lora"
        else AdapterConfig(kind="lora", r=2, alpha=4)
    )
    dense = unpruned_numel(sparse_adapter_model(bert(), dense_cfg))
    cfg = large_sparse_config(dense_cfg, mult, 32)
    assert (
        (cfg.r == 2 * mult and cfg.alpha / cfg.r == 2.0)
        if kind == "lora"
        else cfg.bottleneck == 4 * mult
    )
    large = unpruned_numel(
        sparse_adapter_model(bert(), dataclasses.replace(cfg, criterion="random"))
    )
    assert abs(large - dense) <= 1, (dense, large)
    if kind != "lora":
        n_adapters = len(adapter_layers(sparse_adapter_model(bert(), dense_cfg)))
        paper = unpruned_numel(
            sparse_adapter_model(
                bert(),
                dataclasses.replace(
                    large_sparse_config(dense_cfg, mult, 32, "weights"),
                    criterion="random",
                ),
            )
        )
        assert (
            abs(paper - dense - n_adapters * (mult - 1) * 4) <= 1
        )  # the paper's 1 - 1/m adds (m - 1) b biases per adapter


def test_bad_requests_fail_clearly():
    with pytest.raises(ValueError, match="pass data"):
        sparse_adapter_model(
            m := bert(), AdapterConfig(sparse_ratio=0.5, criterion="snip")
        )
    assert not adapter_layers(m)  # nothing was changed
    with pytest.raises(TypeError, match="AdapterConfig"):
        sparse_adapter_model(bert(), dict(kind="lora"))
    with pytest.raises(ValueError, match="m must"):
        large_sparse_config(AdapterConfig(), 0, 32)
    with pytest.raises(ValueError, match="already has sparse_ratio"):
        large_sparse_config(AdapterConfig(sparse_ratio=0.3), 2, 32)
    with pytest.raises(ValueError, match="match"):
        large_sparse_config(AdapterConfig(), 2, 32, "budget")
    m = get_adapter_model(bert(), AdapterConfig(kind="lora", sparse_ratio=0.5))
    with pytest.raises(ValueError, match="zero_init"):
        prune_adapters(m, 0.5, "random", zero_init="zeros")
    with pytest.raises(ValueError, match="noise_std"):
        prune_adapters(m, 0.5, "random", noise_std=0.0)


def test_sweep_grid_and_bad_settings():
    from padnotes.experiments.sparse_adapter import SparseAdapterSweep

    runs = SparseAdapterSweep().runs()
    assert len(runs) == 3 * 18 and {r["method"] for r in runs} == {
        "full",
        "dense",
        "sparse",
        "large_sparse",
    }
    assert sorted(
        {
            (r["criterion"], r["sparse_ratio"])
            for r in runs
            if r["criterion"] in ("grasp", "synflow")
        }
    ) == [("grasp", 0.4), ("synflow", 0.4)]
    for bad, msg in (
        (dict(ratios=(0.0,)), "fraction removed"),
        (dict(ratios=(1.0,)), "fraction removed"),
        (dict(criteria=("taylr",)), "unknown criteria"),
        (dict(task="sst2"), "task"),
        (dict(large=(1,)), "Large-Sparse"),
        (dict(seeds=()), "seeds"),
        (dict(lr=0), "lr"),
        (dict(kind="prefix"), "kind"),
    ):
        with pytest.raises(ValueError, match=msg):
            SparseAdapterSweep(**bad)


def test_tiny_sweep_writes_and_resumes(tmp_path):
    from padnotes.experiments.sparse_adapter import (
        SparseAdapterSweep,
        sparse_adapter_sweep,
        summarize_sparse_sweep,
    )

    csv = tmp_path / "sa.csv"
    cfg = SparseAdapterSweep.tiny(large=(), max_steps=1, train_size=16, eval_size=16)
    df = sparse_adapter_sweep(cfg, csv, device="cpu", progress=False)
    assert (
        list(df.method) == ["full", "dense", "sparse"]
        and df.dev_acc.between(0, 1).all()
    )
    assert (
        abs(df.realised_sparse_ratio.iloc[2] - 0.4) < 1e-4
        and df.trainable.iloc[0] > df.trainable.iloc[1] > df.trainable.iloc[2]
    )
    text = csv.read_text()
    sparse_adapter_sweep(cfg, csv, device="cpu", progress=False)
    assert csv.read_text() == text  # resumed: nothing re-run
    df = sparse_adapter_sweep(
        dataclasses.replace(cfg, criteria=("snip", "random")),
        csv,
        device="cpu",
        progress=False,
    )
    assert (
        len(df) == 4
        and df.criterion.iloc[-1] == "random"
        and csv.read_text().startswith(text)
    )
    s = summarize_sparse_sweep(df)
    assert len(s) == 4 and (s.n == 1).all()


def test_method_module_stays_light():
    "import padnotes.sparse_adapter pulls in no pandas, plotly or transformers (the grid in padnotes.experiments.sparse_adapter does)."
    import subprocess, sys

    code = "import sys; import padnotes.sparse_adapter; bad = [m for m in ('pandas', 'plotly', 'transformers') if m in sys.modules]; assert not bad, bad"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_the_authors_adapter_and_scoring():
    "SparseAdapterSweep.authors(): Houlsby's placement, bottleneck 64, ReLU, a LayerNorm on the adapter's input, eval-mode scoring."
    import dataclasses
    from padnotes.adapters import (
        AdapterConfig,
        adapter_numel,
        bottleneck_numel,
        get_adapter_model,
    )
    from padnotes.experiments.sparse_adapter import SparseAdapterSweep, _adapter_config

    cfg = SparseAdapterSweep.authors()
    assert (
        cfg.kind,
        cfg.bottleneck,
        cfg.non_linearity,
        cfg.layer_norm,
        cfg.score_train,
        cfg.protocol,
    ) == ("houlsby", 64, "relu", "in", False, "authors")
    assert len(cfg.runs()) == 5 * (
        2 + 2 * 2 + 1
    )  # per seed: full, dense, 2 criteria x 2 ratios, Large-Sparse m = 2
    acfg = _adapter_config(
        cfg, dict(method="sparse", sparse_ratio=0.4, criterion="snip"), 32
    )
    assert (
        acfg.kind,
        acfg.bottleneck,
        acfg.non_linearity,
        acfg.layer_norm,
        acfg.sparse_ratio,
    ) == ("houlsby", 64, "relu", "in", 0.4)
    torch.manual_seed(0)
    m = get_adapter_model(
        bert(), dataclasses.replace(acfg, bottleneck=8, sparse_ratio=0.0)
    )
    n = sum(p.numel() for p in m.parameters() if p.requires_grad)
    assert (
        n
        == adapter_numel(dataclasses.replace(acfg, bottleneck=8), 32, 2)
        == 2 * 2 * bottleneck_numel(32, 8, layer_norm=True)
    )
    with pytest.raises(ValueError, match="layer_norm belongs to bottleneck adapters"):
        AdapterConfig(kind="lora", layer_norm="in")
    with pytest.raises(ValueError, match="protocol must be"):
        SparseAdapterSweep(protocol="paper")
