"Promises of padnotes.viz: each figure's data equals what the library computes; bad inputs fail in words."

import dataclasses
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from padnotes.core import set_seed
from padnotes.data import resnet8
from padnotes.dyconv import dynamicize
from padnotes.moe import MoE
from padnotes.pad import apply_partition, mode_scores, partition_report, to_partial
from padnotes.experiments.pad import SweepConfig, pad_sweep, summarize_sweep
from padnotes import viz


@pytest.fixture(scope="module")
def net():
    set_seed(0)
    m = to_partial(dynamicize(resnet8(), num_kernels=4, copy_weights=False, seed=0))
    apply_partition(m, mode_scores(m, "magnitude"), 0.3)
    return m


@pytest.fixture(scope="module")
def moe_net():
    set_seed(0)
    m = to_partial(
        nn.ModuleDict(dict(moe=MoE(12, 40, num_experts=4, top_k=2, noisy_gating=False)))
    )
    apply_partition(m, mode_scores(m, "random"), 0.4)
    return m


def synthetic_rows(task="fashion_mnist"):
    "Rows shaped like pad_sweep's, with accuracies chosen so means and stds are known."
    rows = []
    for seed, d in ((0, 0.0), (1, 0.02)):
        rows.append(
            dict(
                ratio=np.nan,
                criterion="reference",
                scale=False,
                seed=seed,
                dev_acc=0.80 + d,
                deploy=100,
            )
        )
        rows.append(
            dict(
                ratio=0.0,
                criterion="static",
                scale=True,
                seed=seed,
                dev_acc=0.70 + d,
                deploy=110,
            )
        )
        rows.append(
            dict(
                ratio=1.0,
                criterion="dynamic",
                scale=True,
                seed=seed,
                dev_acc=0.90 + d,
                deploy=410,
            )
        )
        for crit, base in (("imp", 0.88), ("random", 0.84)):
            for r, dep in ((0.3, 200), (0.6, 290)):
                rows.append(
                    dict(
                        ratio=r,
                        criterion=crit,
                        scale=True,
                        seed=seed,
                        dev_acc=base + r / 10 + 2 * d,
                        deploy=dep,
                    )
                )
        rows.append(
            dict(
                ratio=0.3,
                criterion="imp",
                scale=False,
                seed=seed,
                dev_acc=0.5,
                deploy=200,
            )
        )
    return pd.DataFrame(rows).assign(task=task, test_acc=lambda d: d.dev_acc - 0.01)


# --- per-layer fractions ---------------------------------------------------------------------------------------------
def test_layer_fractions_match_report(net):
    rep = partition_report(net)
    fig = viz.plot_layer_fractions(rep)
    bars, line = fig.data
    assert list(bars.x) == [r["layer"] for r in rep]
    assert list(bars.y) == pytest.approx([r["ratio"] for r in rep])
    assert line.y[0] == pytest.approx(
        sum(r["dynamic"] for r in rep) / sum(r["entries"] for r in rep)
    )
    assert line.y[0] == pytest.approx(0.3, abs=1e-4)
    assert f"{rep[0]['dynamic']:,} of {rep[0]['entries']:,}" in bars.hovertext[0]
    assert (
        fig.layout.title.text
        and fig.layout.xaxis.title.text == "layer"
        and "%" in fig.layout.yaxis.title.text
    )
    assert list(viz.plot_layer_fractions(net).data[0].y) == list(
        bars.y
    )  # a model is reported first


def test_layer_fractions_bad_inputs():
    with pytest.raises(ValueError, match="empty"):
        viz.plot_layer_fractions([])
    with pytest.raises(ValueError, match="missing"):
        viz.plot_layer_fractions([dict(layer="a", ratio=0.5)])
    with pytest.raises(ValueError, match="empty.*to_partial"):
        viz.plot_layer_fractions(resnet8())


# --- mode masks --------------------------------------------------------------------------------------------------------
def test_conv_mask_grid_sums_kernel_positions(net):
    layer = viz.find_layer(net, "layers.1.conv1")
    g = viz.mask_grid(layer)
    assert g["z"].shape == (32, 16)
    np.testing.assert_allclose(g["z"], layer.weight_mask.mean((2, 3)).numpy())
    np.testing.assert_allclose(g["dynamic"], layer.weight_mask.sum((2, 3)).numpy())
    fig = viz.plot_mode_mask(net, "layers.1.conv1")
    np.testing.assert_allclose(np.array(fig.data[0].z), g["z"])
    assert (
        "layers.1.conv1" in fig.layout.title.text
        and fig.layout.xaxis.title.text == "input channel"
    )


def test_mask_grid_pools_large_axes(moe_net):
    ex = viz.find_layer(moe_net, "moe.experts")
    g = viz.mask_grid(ex, "w1", max_side=5)  # (12, 40) -> (5, 5) bands
    assert g["z"].shape == (5, 5)
    assert (
        g["dynamic"].sum() == ex.w1_mask.sum().item()
        and g["total"].sum() == ex.w1_mask.numel()
    )
    rows = np.array_split(np.arange(12), 5)
    cols = np.array_split(np.arange(40), 5)
    want = ex.w1_mask[np.ix_(rows[1], cols[2])].mean().item()
    assert g["z"][1, 2] == pytest.approx(want)
    assert g["x"][0] == "0–7" and g["y"][0] == "0–2"
    gb = viz.mask_grid(ex, "b1")
    assert gb["z"].shape == (1, 40)
    np.testing.assert_allclose(gb["z"][0], ex.b1_mask.numpy())


def test_mode_mask_bad_inputs(net, moe_net):
    with pytest.raises(ValueError, match=r"unknown layer 'stem'.*layers.0.conv1"):
        viz.plot_mode_mask(net, "stem")
    with pytest.raises(ValueError, match="unknown mask 'w1'"):
        viz.plot_mode_mask(net, "layers.0.conv1", "w1")
    with pytest.raises(ValueError, match="no partially dynamic layer"):
        viz.plot_mode_mask(resnet8(), "layers.0.conv1")
    with pytest.raises(TypeError, match="PartialDynamicConv2d"):
        viz.mask_grid(nn.Conv2d(1, 1, 3))


# --- sweep curves ------------------------------------------------------------------------------------------------------
def test_accuracy_curves_known_values():
    df = synthetic_rows()
    c = viz.accuracy_curves(df)
    imp = c[c.criterion == "imp"]
    assert list(imp.ratio) == [0.0, 0.3, 0.6, 1.0]  # ends joined to every criterion
    assert imp["mean"].tolist() == pytest.approx(
        [0.71, 0.88 + 0.03 + 0.02, 0.88 + 0.06 + 0.02, 0.91]
    )
    assert imp["std"].iloc[1] == pytest.approx(np.std([0.91, 0.95], ddof=1))
    assert (
        0.5 not in imp["mean"].round(6).tolist()
    )  # the no-scale ablation is not mixed in
    assert viz.reference_levels(df) == pytest.approx(
        dict(dynamic=0.91, static=0.71, reference=0.81)
    )


def test_accuracy_figure_data():
    df = synthetic_rows()
    fig = viz.plot_accuracy_vs_ratio(df, live=dict(ratio=0.42, accuracy=0.77))
    c = viz.accuracy_curves(df)
    s = summarize_sweep(df)
    names = [t.name for t in fig.data]
    for crit in ("imp", "random"):
        p = c[c.criterion == crit]
        band, line = fig.data[names.index(f"{crit} ± std")], fig.data[names.index(crit)]
        np.testing.assert_allclose(line.y, p["mean"])
        np.testing.assert_allclose(line.x, p.ratio)
        np.testing.assert_allclose(band.y[: len(p)], p["mean"] + p["std"])
        np.testing.assert_allclose(band.y[len(p) :], (p["mean"] - p["std"])[::-1])
        assert band.fill == "toself"
    dyn = [t for t in fig.data if t.name.startswith("fully dynamic")][0]
    assert list(dyn.x) == [0, 1] and dyn.y[0] == pytest.approx(
        float(s[s.criterion == "dynamic"]["mean"].iloc[0])
    )
    star = fig.data[-1]
    assert (star.x[0], star.y[0]) == (0.42, 0.77) and star.name == "this model"
    assert (
        "2 seeds" in fig.layout.title.text
        and "dynamic ratio" in fig.layout.xaxis.title.text
    )
    assert (
        "%" in fig.layout.yaxis.title.text
        and "±" in fig.data[names.index("imp")].hovertemplate
    )
    only = viz.accuracy_traces(df, criteria=["random"], levels=False)
    assert [t.name for t in only] == ["random ± std", "random"]


def test_deploy_figure_data():
    df = synthetic_rows()
    fig = viz.plot_deploy_vs_ratio(df, live=dict(ratio=0.3, deploy=200))
    assert list(fig.data[0].x) == [0.0, 0.3, 0.6, 1.0] and list(fig.data[0].y) == [
        110,
        200,
        290,
        410,
    ]
    assert fig.data[1].y[0] == 100 and fig.data[0].customdata[1][0] == pytest.approx(
        2.0
    )
    assert fig.layout.yaxis.title.text == "parameters stored to deploy"


def test_sweep_inputs_fail_in_words(tmp_path):
    df = synthetic_rows()
    with pytest.raises(ValueError, match="one task"):
        viz.accuracy_curves(pd.concat([df, synthetic_rows("other")]))
    with pytest.raises(ValueError, match="non-empty"):
        viz.accuracy_curves(df.iloc[:0])
    with pytest.raises(ValueError, match="non-empty"):
        viz.plot_accuracy_vs_ratio(None)
    with pytest.raises(ValueError, match="lack columns"):
        viz.accuracy_curves(df.drop(columns="deploy"))
    with pytest.raises(ValueError, match=r"criteria \['magnitude'\]"):
        viz.accuracy_traces(df, criteria=["magnitude"])
    with pytest.warns(UserWarning, match="regenerate"):
        assert viz.load_results("fashion_mnist", tmp_path / "nope.csv") is None
    df.to_csv(tmp_path / "r.csv", index=False)
    with pytest.warns(UserWarning, match="no rows"):
        assert viz.load_results("rotten_tomatoes", tmp_path / "r.csv") is None
    back = viz.load_results("fashion_mnist", tmp_path / "r.csv")
    assert len(back) == len(df)


def test_real_sweep_rows(tmp_path):
    "A real (tiny) pad_sweep feeds the figures; the curve values are the library's summaries of its rows."
    cfg = dataclasses.replace(
        SweepConfig.tiny(),
        criteria=("imp",),
        train_size=32,
        eval_size=32,
        seeds=(0, 1),
        n_batches=1,
    )
    rows = pad_sweep(cfg, tmp_path / "pad_sweep.csv", progress=False)
    fig = viz.plot_accuracy_vs_ratio(rows)
    line = [t for t in fig.data if t.name == "imp"][0]
    mid = rows[(rows.criterion == "imp") & (rows.ratio == 0.5)].dev_acc.mean()
    assert list(line.x) == [0.0, 0.5, 1.0] and line.y[1] == pytest.approx(mid)
    dep = viz.plot_deploy_vs_ratio(rows).data[0]
    assert dep.y[0] < dep.y[1] < dep.y[2]


# --- router load -------------------------------------------------------------------------------------------------------
def test_router_load_shares(moe_net):
    set_seed(0)
    with torch.no_grad():
        moe_net["moe"](torch.randn(100, 12))
    loads = viz.router_loads(moe_net)
    assert loads.shape == (1, 4) and loads.sum().item() == 200
    fig = viz.plot_router_load(moe_net, ["moe"])
    np.testing.assert_allclose(
        fig.data[0].y, (loads[0] / loads[0].sum()).numpy(), rtol=1e-6
    )
    assert list(fig.data[0].customdata) == loads[0].tolist()
    assert fig.data[-1].y[0] == pytest.approx(0.25) and fig.layout.barmode == "group"
    two = viz.plot_router_load(torch.tensor([[1.0, 3.0], [2.0, 2.0]]), ["a", "b"])
    assert list(two.data[0].y) == [0.25, 0.75] and list(two.data[1].y) == [0.5, 0.5]


def test_router_load_bad_inputs(net):
    with pytest.raises(ValueError, match="no MoE layer"):
        viz.router_loads(net)
    with pytest.raises(ValueError, match="forward once"):
        viz.router_loads(MoE(4, 8, num_experts=2, top_k=1))
    with pytest.raises(ValueError, match="3 layer names for 2 layers"):
        viz.plot_router_load(torch.ones(2, 4), ["a", "b", "c"])
    with pytest.raises(ValueError, match="negative"):
        viz.plot_router_load(-torch.ones(1, 4))
