"Promises of the PAD-Net sweep machinery: the grid, the results file, the summaries and trends computed from it."

import dataclasses, json, math
import pandas as pd
import pytest

from padnotes.pad import PAD_CRITERIA
from padnotes.experiments.pad import (
    SweepConfig,
    _key,
    layer_ratios,
    pad_sweep,
    pad_trends,
    plot_layer_ratios,
    plot_sweep,
    summarize_sweep,
    sweep_results,
)


def fake_rows(seeds=(0, 1, 2), task="fashion_mnist"):
    "A results table with known accuracies: acc = base + 0.01 * seed, so every mean is base + 0.01 and every std 0.01."
    base = {
        ("reference", None, False): 0.80,
        ("static", 0.0, True): 0.81,
        ("dynamic", 1.0, True): 0.83,
    }
    for r in (0.1, 0.3, 0.5, 0.7):
        base[("imp", r, True)] = 0.84 + r / 10
        base[("random", r, True)] = 0.82
        base[("magnitude", r, True)] = 0.815
        base[("imp", r, False)] = 0.835
    rows = []
    for (crit, r, sc), acc in base.items():
        for s in seeds:
            layers = {} if r is None else {"a": r / 2, "b": min(1.0, 1.5 * r)}
            rows.append(
                dict(
                    task=task,
                    ratio=r,
                    criterion=crit,
                    scale=sc,
                    seed=s,
                    dev_acc=acc + 0.01 * s,
                    test_acc=acc,
                    params=100,
                    deploy=50 + (0 if r is None else 30 * r),
                    realised_ratio=r,
                    seconds=1.0,
                    layers=json.dumps(layers),
                    settings="{}",
                )
            )
    return pd.DataFrame(rows)


def test_full_grid_and_validation():
    cfg = SweepConfig.full("fashion_mnist")
    runs = cfg.runs()
    assert len(runs) == 3 * (
        1 + 2 + 4 * (len(PAD_CRITERIA) + 1)
    )  # reference, static, dynamic, 4 ratios x (3 + ablation)
    assert {r["seed"] for r in runs} == {0, 1, 2}
    assert sorted({r["ratio"] for r in runs if r["ratio"] is not None}) == [
        0.0,
        0.1,
        0.3,
        0.5,
        0.7,
        1.0,
    ]
    assert SweepConfig.full("rotten_tomatoes").lr == 1e-4 and cfg.lr == 3e-3
    with pytest.raises(ValueError, match="imagenet"):
        SweepConfig(task="imagenet")
    with pytest.raises(ValueError, match="dynamic_ratio"):
        SweepConfig(ratios=(0.5, 1.5))
    with pytest.raises(ValueError, match="unknown criteria"):
        SweepConfig(criteria=("imp", "snip"))
    with pytest.raises(ValueError, match="seeds"):
        SweepConfig(seeds=())


def test_summarize_and_trends_on_known_rows():
    df = fake_rows()
    s = summarize_sweep(df)
    assert s.n.min() == 3 and len(s) == 3 + 4 * 4
    imp3 = s[(s.criterion == "imp") & (s.ratio == 0.3) & s.scale]
    assert math.isclose(
        float(imp3["mean"].iloc[0]), 0.84 + 0.03 + 0.01
    ) and math.isclose(float(imp3["std"].iloc[0]), 0.01)
    tr = pad_trends(df).set_index("ratio")
    assert list(tr.index) == [0.1, 0.3, 0.5, 0.7]
    assert tr.loc[0.5, "imp_minus_dynamic"] == pytest.approx(0.84 + 0.05 - 0.83)
    assert tr.loc[0.5, "imp_minus_static"] == pytest.approx(0.84 + 0.05 - 0.81)
    assert tr.loc[0.1, "imp_minus_random"] == pytest.approx(0.85 - 0.82)
    assert tr.loc[0.7, "imp_minus_magnitude"] == pytest.approx(0.91 - 0.815)
    assert tr.loc[0.3, "scale_on_minus_off"] == pytest.approx(0.87 - 0.835)


def test_layer_ratios_and_heatmap():
    t = layer_ratios(fake_rows())
    assert list(t.index) == [0.1, 0.3, 0.5, 0.7] and list(t.columns) == ["a", "b"]
    assert t.loc[0.5, "a"] == pytest.approx(0.25) and t.loc[0.7, "b"] == pytest.approx(
        1.0
    )
    fig = plot_layer_ratios(t)
    assert fig.data[0].z.tolist() == t.values.tolist() and list(fig.data[0].x) == [
        "a",
        "b",
    ]
    with pytest.raises(ValueError, match="snip"):
        layer_ratios(fake_rows(), "snip")


def test_plot_sweep_data():
    df = fake_rows()
    fig = plot_sweep(df)
    imp = next(t for t in fig.data if t.name == "imp")
    assert list(imp.x) == [
        0.0,
        0.1,
        0.3,
        0.5,
        0.7,
        1.0,
    ]  # static and dynamic ends joined to the curve
    assert list(imp.y) == pytest.approx([0.82, 0.86, 0.88, 0.90, 0.92, 0.84])
    assert list(imp.error_y.array) == pytest.approx([0.01] * 6)
    assert {t.name for t in fig.data} == {
        "imp",
        "imp, no scale factors",
        "random",
        "magnitude",
    }
    assert len(fig.layout.shapes) == 3  # dynamic, static and reference lines
    deploy = plot_sweep(df, x="deploy")
    assert list(next(t for t in deploy.data if t.name == "imp").x) == pytest.approx(
        [50, 53, 59, 65, 71, 80]
    )


def test_sweep_results_reads_and_refuses(tmp_path):
    p = tmp_path / "r.csv"
    pd.concat([fake_rows(), fake_rows(task="rotten_tomatoes")]).to_csv(p, index=False)
    assert len(sweep_results(path=p)) == 2 * len(fake_rows())
    assert set(sweep_results("rotten_tomatoes", path=p).task) == {"rotten_tomatoes"}
    with pytest.raises(ValueError, match="imagenet"):
        sweep_results("imagenet", path=p)
    with pytest.raises(FileNotFoundError, match="main_sweep"):
        sweep_results(path=tmp_path / "none.csv")


def test_tiny_conv_sweep_resumes_with_exact_ratios(tmp_path):
    cfg = SweepConfig(
        task="fashion_mnist",
        ratios=(0.0, 0.3, 1.0),
        criteria=("imp",),
        ablate_scale=False,
        seeds=(0,),
        train_size=64,
        eval_size=32,
        epochs=1,
        batch_size=32,
        n_batches=1,
    )
    out = tmp_path / "s.csv"
    res = pad_sweep(cfg, out, progress=False)
    assert len(res) == len(cfg.runs()) == 4
    part = res[res.criterion == "imp"]
    assert part.realised_ratio.iloc[0] == pytest.approx(0.3, abs=1e-3)
    assert set(json.loads(part.layers.iloc[0])) and all(
        0 <= v <= 1 for v in json.loads(part.layers.iloc[0]).values()
    )
    assert (
        res.deploy[res.criterion == "static"].iloc[0]
        == res.deploy[res.criterion == "reference"].iloc[0]
    )
    again = pad_sweep(cfg, out, progress=False)
    assert len(again) == 4 and len(pd.read_csv(out)) == 4


def test_shipped_results_are_the_full_grid():
    "The results file that ships (RESULTS_FILE) holds every run of SweepConfig.full for both tasks, made with those settings, once."
    df = sweep_results()
    for task in ("fashion_mnist", "rotten_tomatoes"):
        cfg, rows = SweepConfig.full(task), df[df.task == task]
        want = {_key(dict(r, task=task)) for r in cfg.runs()}
        got = [_key(r) for r in rows.to_dict("records")]
        assert len(got) == len(set(got)), f"{task}: repeated runs in the results file"
        assert set(got) == want, (
            f"{task}: missing {sorted(want - set(got), key=str)[:3]}, extra {sorted(set(got) - want, key=str)[:3]}"
        )
        added_later = dict(
            conv_warmup_epochs=0.0,
            width=16,
            iterations=1,
            average_static=False,
            regimes=1,
        )  # fields added after the file was made, at the values it was made with
        assert {
            json.dumps(added_later | json.loads(s), sort_keys=True)
            for s in rows.settings
        } == {
            json.dumps(json.loads(json.dumps(dataclasses.asdict(cfg))), sort_keys=True)
        }
        assert (
            rows.dev_acc.between(0.5, 1).all() and rows.test_acc.between(0.5, 1).all()
        )  # every run learned something
        part = rows[rows.criterion.isin(PAD_CRITERIA)]
        assert (
            part.realised_ratio - part.ratio
        ).abs().max() < 1e-3  # the ratio asked for is the ratio kept


def test_paired_difference_on_a_hand_made_table():
    import math
    import pandas as pd
    from padnotes.experiments.pad import paired_claims
    from padnotes.experiments.stats import paired_difference

    rows = [
        dict(task="t", ratio=0.3, criterion=c, scale=True, seed=s, dev_acc=v)
        for c, vals in (
            ("imp", (0.80, 0.82, 0.84, 0.83)),
            ("random", (0.79, 0.80, 0.81, 0.80)),
        )
        for s, v in enumerate(vals)
    ]
    rows += [
        dict(task="t", ratio=None, criterion="dynamic", scale=True, seed=s, dev_acc=0.9)
        for s in range(3)
    ]  # seed 3 missing
    df = pd.DataFrame(rows)
    d = paired_difference(
        df, dict(criterion="imp", ratio=0.3), dict(criterion="random", ratio=0.3)
    )
    diffs = [0.01, 0.02, 0.03, 0.03]
    m = sum(diffs) / 4
    sd = math.sqrt(sum((x - m) ** 2 for x in diffs) / 3)
    assert d["n"] == 4 and math.isclose(d["mean"], m) and math.isclose(d["std"], sd)
    assert math.isclose(
        d["ci_high"] - d["mean"], 3.182446305284263 * sd / 2
    )  # t(0.975, 3 dof)
    dyn = paired_difference(
        df, dict(criterion="imp", ratio=0.3), dict(criterion="dynamic")
    )
    assert dyn["seeds"] == [0, 1, 2] and math.isclose(
        dyn["mean"], (0.80 + 0.82 + 0.84) / 3 - 0.9
    )
    t = paired_claims(df)
    assert list(t.comparison) == ["imp - dynamic", "imp - random"] and bool(
        t.set_index("comparison").loc["imp - random", "clear"]
    )
    with pytest.raises(ValueError, match="more than one row per seed"):
        paired_difference(df, dict(ratio=0.3), dict(criterion="random"))


def test_conv_warmup_partitions_after_training(tmp_path, monkeypatch):
    "With conv_warmup_epochs the fully dynamic model trains (temperature 30 -> 1) before padify scores it; the reference gets the same budget."
    import padnotes.experiments.pad as X

    seen = []
    real = X.padify

    def spy(model, *a, **k):
        seen.append(
            sorted(
                {
                    round(l.temperature, 6)
                    for l in model.modules()
                    if hasattr(l, "attention") and hasattr(l, "num_kernels")
                }
            )
        )
        return real(model, *a, **k)

    monkeypatch.setattr(X, "padify", spy)
    cfg = SweepConfig(
        task="fashion_mnist",
        ratios=(0.5,),
        criteria=("imp",),
        ablate_scale=False,
        seeds=(0,),
        train_size=64,
        eval_size=32,
        epochs=1,
        batch_size=32,
        n_batches=1,
        conv_warmup_epochs=1.0,
    )
    res = pad_sweep(cfg, tmp_path / "w.csv", progress=False)
    assert len(res) == 2 and seen == [
        [1.0]
    ]  # scored once, after the annealing reached tau = 1
    cfg0 = dataclasses.replace(cfg, conv_warmup_epochs=0.0)
    seen.clear()
    pad_sweep(cfg0, tmp_path / "w0.csv", progress=False)
    assert seen == [[30.0]]  # at initialisation: the shipped protocol


def test_pilot_summary_and_the_regenerate_command_import():
    import re
    from padnotes.experiments.pad import REGENERATE
    from padnotes.experiments.results import pilot_results
    from padnotes.experiments.stats import pilot_summary

    mod = re.search(r"from ([\w.]+) import (\w+)", REGENERATE)
    assert hasattr(
        __import__(mod.group(1), fromlist=[mod.group(2)]), mod.group(2)
    )  # the command names a real function
    df = pd.DataFrame(
        [
            dict(
                width=4,
                model=m,
                seed=s,
                dev_acc=0.8 + (0.03 if m == "dynamic" else 0) + 0.001 * s,
            )
            for m in ("static", "dynamic")
            for s in range(3)
        ]
    )
    t = pilot_summary(df, ["width"], "static")
    assert (
        len(t) == 1
        and t.beats_by_2_std.iloc[0]
        and t["diff"].iloc[0] == pytest.approx(0.03)
    )
    with pytest.raises(ValueError, match="task must be one of"):
        pilot_results("imagenet")


def test_shipped_fashion_pilot_pairs_static_and_dynamic():
    "The shipped pilot rows (runs/pad_pilot.py): every setting has static and dynamic runs on the same seeds, and they learned."
    from padnotes.experiments.results import pilot_results

    df = pilot_results("fashion_mnist")
    for _, g in df.groupby(["width", "epochs"]):
        assert (
            set(g[g.model == "static"].seed) == set(g[g.model == "dynamic"].seed)
            and len(g) == 2 * g.seed.nunique()
        )
    assert df.dev_acc.between(0.5, 1).all()
    p = df.groupby(["width", "model"]).params.first().unstack()
    assert (
        p.dynamic > p.static
    ).all()  # K kernels and the attention: more parameters at every width


def test_shipped_text_pilot_pairs_dense_and_moe():
    "The shipped Rotten Tomatoes pilot rows (runs/pad_pilot_text.py): dense, copied and split experts on the same seeds; MoE copies hold more."
    from padnotes.experiments.results import pilot_results

    df = pilot_results("rotten_tomatoes")
    seeds = {m: set(g.seed) for m, g in df.groupby("model")}
    assert (
        set(seeds) == {"dense", "moe_copy", "moe_split"}
        and len({frozenset(s) for s in seeds.values()}) == 1
    )
    p = df.groupby("model").params.first()
    assert (
        p.moe_copy > p.dense
        and (df.active <= df.params).all()
        and df.dev_acc.between(0.5, 1).all()
    )


def test_the_evidence_grid_and_its_settings_reach_the_run(tmp_path, monkeypatch):
    "SweepConfig.evidence is issue 16's grid; width, iterations and the data-averaged static start reach the model IMP scores."
    ev = SweepConfig.evidence()
    assert (
        len(ev.runs()) == 5 * (1 + 2 + 4 * 4)
        and ev.width == 8
        and ev.conv_warmup_epochs == 1.0
        and ev.average_static
    )
    with pytest.raises(ValueError, match="no setting"):
        SweepConfig.evidence("rotten_tomatoes")
    import padnotes.experiments.pad as X
    from padnotes.pad import PartialDynamicConv2d

    seen = []
    real = X.padify

    def spy(model, *a, **k):
        parts = [m for m in model.modules() if isinstance(m, PartialDynamicConv2d)]
        seen.append(
            dict(
                width=model.stem.out_channels,
                partial_before=len(parts),
                iterations=k.get("iterations"),
            )
        )
        return real(model, *a, **k)

    monkeypatch.setattr(X, "padify", spy)
    cfg = dataclasses.replace(
        ev,
        ratios=(0.5,),
        criteria=("imp",),
        ablate_scale=False,
        seeds=(0,),
        train_size=64,
        eval_size=32,
        epochs=1,
        batch_size=32,
        n_batches=1,
        conv_warmup_epochs=0.5,
        iterations=2,
    )
    res = pad_sweep(cfg, tmp_path / "e.csv", progress=False)
    assert (
        len(res) == 2
        and seen[0]
        == dict(width=8, partial_before=seen[0]["partial_before"], iterations=2)
        and seen[0]["partial_before"] > 0
    )  # already partial: static parts averaged first
    assert abs(res[res.criterion == "imp"].realised_ratio.iloc[0] - 0.5) < 0.01


def test_the_regime_grid_runs_on_the_teaching_task_and_names_its_rows(tmp_path):
    import dataclasses
    from padnotes.experiments.pad import pad_sweep

    cfg = SweepConfig.regime(4, 4)
    assert (cfg.regimes, cfg.width, cfg.row_task, cfg.seeds) == (
        4,
        4,
        "fashion_mnist_r4",
        (0, 1, 2, 3, 4),
    )
    tiny = dataclasses.replace(SweepConfig.tiny(), regimes=4, width=4)
    df = pad_sweep(tiny, tmp_path / "r.csv", device="cpu", progress=False)
    assert set(df.task) == {"fashion_mnist_r4"} and len(df) == len(tiny.runs())
    with pytest.raises(ValueError, match="not to the MiniLM-MoE"):
        SweepConfig(task="rotten_tomatoes", regimes=4)


def test_the_text_regime_grid_runs_an_moe_with_an_expert_per_frame(tmp_path):
    import dataclasses, json
    from padnotes.experiments.pad import pad_sweep

    cfg = SweepConfig.text_regime(8, 4, epochs=8)
    assert (cfg.row_task, cfg.num_kernels, cfg.width, cfg.lr) == (
        "rotten_tomatoes_vectors_r8",
        8,
        4,
        3e-3,
    )
    assert (cfg.warmup_epochs, cfg.epochs) == (2, 6)  # the pilot's 8 epochs in all
    tiny = dataclasses.replace(
        cfg, seeds=(0, 1), train_size=64, eval_size=32, epochs=1, warmup_epochs=1
    )
    tiny = dataclasses.replace(tiny, ratios=(0.0, 0.5, 1.0), ablate_scale=False)
    df = pad_sweep(tiny, tmp_path / "v.csv", device="cpu", progress=False)
    assert set(df.task) == {"rotten_tomatoes_vectors_r8"}
    assert len(df) == len(tiny.runs())
    dyn = df[df.criterion == "dynamic"].iloc[0]
    ref = df[df.criterion == "reference"].iloc[0]
    assert dyn.params > 7 * ref.params / 2  # eight experts where the dense has one FFN
    part = df[df.criterion == "imp"].iloc[0]
    assert abs(part.realised_ratio - 0.5) < 0.01
    assert json.loads(part.layers)  # the MoE's partition is reported
    from padnotes.experiments.pad import pad_verdict, plot_sweep

    assert "vs the dense FFN" in pad_verdict(df)[0]
    assert any("dense FFN" in a.text for a in plot_sweep(df).layout.annotations)


def test_the_pad_moe_grid():
    cfg = SweepConfig.pad_moe()
    runs = cfg.runs()
    assert {(r["criterion"], r["ratio"]) for r in runs} == {
        ("reference", None),
        ("imp", 0.5),
        ("dynamic", 1.0),
    }
    assert (
        len(runs) == 5 * 3 and cfg.task == "rotten_tomatoes" and cfg.eval_size is None
    )
