"The diff pruning grid (13a): its rows, the summary and paired claims, the figures, the tour section's sizes."

import json
import pandas as pd
import pytest
from padnotes.experiments.diff_pruning import (
    DiffPruningSweep,
    diff_claims,
    plot_accuracy_vs_density,
    plot_kept_share,
    serving_benchmark,
    summarize_diff_sweep,
    tour_sweep,
)


def rows(seeds=(0, 1, 2), shift=None):
    "Made-up rows with known accuracies (not results): full 0.80, non-adaptive 0.70, diff 0.78, structured 0.79, each + 0.01 * seed."
    acc = dict(full=0.80, nonadaptive=0.70, diff=0.78, diff_structured=0.79)
    out = []
    for m, d, s in DiffPruningSweep(seeds=seeds).rows():
        a = acc[m] + 0.01 * s + (shift or {}).get((m, s), 0.0)
        out.append(
            dict(
                task="rotten_tomatoes",
                method=m,
                density=d,
                seed=s,
                dev_acc=a,
                test_acc=a,
                pre_dev_acc=a,
                expected_density=0.5,
                nnz=1,
                numel=100,
                file_bytes=10 if m != "full" else 1000,
                kept_by_block=json.dumps({"embeddings": 3, "layer 0": 1}),
                kept_by_kind=json.dumps({"ffn in": 4}),
            )
        )
    return pd.DataFrame(out)


def test_the_grid_writes_every_setting_once_per_seed():
    cfg = DiffPruningSweep()
    r = cfg.rows()
    assert len(r) == len(set(r)) == 3 * 10
    assert {m for m, _, _ in r} == {"full", "nonadaptive", "diff", "diff_structured"}
    assert [u["method"] for u in cfg.units()[:3]] == ["full", "diff", "diff_structured"]
    assert DiffPruningSweep(structured=(False,)).rows().count(("diff", 0.005, 0)) == 1
    for bad in [
        dict(densities=()),
        dict(densities=(1.0,)),
        dict(seeds=()),
        dict(task="sst2"),
        dict(lr=0),
        dict(structured=(1,)),
    ]:
        with pytest.raises(ValueError):
            DiffPruningSweep(**bad)


def test_summary_and_paired_claims():
    df = rows()
    s = summarize_diff_sweep(df).set_index(["method", "density"])
    assert (
        s.loc[("full", 1.0), "mean"] == pytest.approx(0.81)
        and s.loc[("full", 1.0), "n"] == 3
    )
    c = diff_claims(df).set_index(["density", "comparison"])
    assert c.loc[(0.005, "diff - full"), "mean"] == pytest.approx(-0.02)
    assert c.loc[(0.005, "diff_structured - diff"), "mean"] == pytest.approx(0.01)
    assert c.loc[(0.05, "diff - nonadaptive"), "mean"] == pytest.approx(0.08)
    assert (c["std"].abs() < 1e-9).all() and (c.ci_low <= c["mean"]).all()
    noisy = diff_claims(rows(shift={("diff", 1): 0.03})).set_index(
        ["density", "comparison"]
    )
    assert (
        noisy.loc[(0.01, "diff - full"), "std"] > 0
        and noisy.loc[(0.01, "diff - full"), "ci_low"]
        < noisy.loc[(0.01, "diff - full"), "mean"]
    )
    with pytest.raises(ValueError, match="no column"):
        summarize_diff_sweep(df, "f1")


def test_figures():
    df = rows()
    fig = plot_accuracy_vs_density(df)
    assert len(fig.data) == 3 and all(len(t.x) == 3 for t in fig.data)
    share = plot_kept_share(df, 0.005)
    assert [list(t.x) for t in share.data][0] == ["embeddings", "layer 0"] and sum(
        share.data[0].y
    ) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one task"):
        plot_accuracy_vs_density(pd.concat([df, df.assign(task="twitter")]))
    with pytest.raises(ValueError, match="no rows at density"):
        plot_kept_share(df, 0.3)


def test_tour_sizes():
    assert tour_sweep("full").rows() == DiffPruningSweep().rows()
    q = tour_sweep("quick", seed=3)
    assert (
        q.rows() == [("full", 1.0, 3), ("nonadaptive", 0.005, 3), ("diff", 0.005, 3)]
        and q.train_size == 480
    )
    with pytest.raises(ValueError, match="unknown size"):
        tour_sweep("huge")


def test_serving_benchmark_refuses_mismatched_tasks(tmp_path):
    from torch import nn

    with pytest.raises(ValueError, match="same tasks"):
        serving_benchmark(nn.Linear(2, 2), {"a": tmp_path}, {"b": tmp_path})
