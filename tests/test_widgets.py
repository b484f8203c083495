"Promises of padnotes.widgets, driven from code: the explorer's readouts and figure equal what the library computes."

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from torch import nn

from padnotes.core import count_params, deploy_numel, set_seed
from padnotes.dyconv import dynamicize
from padnotes.moe import MoE
from padnotes.pad import (
    apply_partition,
    merge_for_inference,
    mode_scores,
    partial_layers,
    partition_report,
    to_partial,
)
from padnotes.viz import mask_grid
from padnotes.widgets import Explorer, ExplorerState, benchmark_slider, readout_html
from test_pad import SmallNet  # the small conv net the PAD-Net tests use


def conv_model(seed=0):
    set_seed(seed)
    return to_partial(
        dynamicize(SmallNet(), copy_weights=False, temperature=1.0)
    ).eval()


def batches(n=3, seed=0, size=12):
    g = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(size, 1, 8, 8, generator=g),
            torch.randint(0, 3, (size,), generator=g),
        )
        for _ in range(n)
    ]


@pytest.fixture
def explorer():
    m = conv_model()
    data = batches()
    scores = {
        c: mode_scores(m, c, data=data, n_batches=2)
        for c in ("imp", "random", "magnitude")
    }
    return Explorer(
        m,
        scores,
        batches(1, seed=9, size=40)[0],
        train_data=data,
        ratio=0.4,
        curve_points=6,
        lr=1e-2,
    )


def expected_accuracy(ex):
    x, y = ex.heldout
    with torch.no_grad():
        return float((ex.model.eval()(x).argmax(-1) == y).float().mean())


@pytest.mark.parametrize("ratio", [0.0, 0.01, 0.37, 1.0])
def test_deploy_size_equals_merged_conv(ratio):
    m = conv_model()
    apply_partition(m, mode_scores(m, "random"), ratio)
    assert deploy_numel(m) == deploy_numel(merge_for_inference(m))


@pytest.mark.parametrize("ratio", [0.0, 0.25, 1.0])
def test_deploy_size_equals_merged_moe(ratio):
    set_seed(0)
    m = to_partial(
        nn.ModuleDict(
            dict(
                moe=MoE(8, 24, num_experts=3, top_k=2, noisy_gating=False),
                head=nn.Linear(8, 2),
            )
        )
    )
    apply_partition(m, mode_scores(m, "random"), ratio)
    assert deploy_numel(m) == deploy_numel(merge_for_inference(m))


def test_deploy_size_needs_partial_layers():
    assert deploy_numel(SmallNet()) == count_params(
        SmallNet()
    )  # plain layers: the parameter count


def test_state_and_figure_equal_the_library(explorer):
    ex = explorer
    for r in (0.4, 0.15, 0.9):
        st = ex.set_ratio(r)
        ref = conv_model()
        ref.load_state_dict(ex.model.state_dict())  # same weights and masks
        apply_partition(ref, ex.scores["imp"], r)
        for (n, a), (_, b) in zip(
            partial_layers(ex.model).items(), partial_layers(ref).items()
        ):  # the cached order = apply_partition
            for k in a.masks():
                assert torch.equal(a.masks()[k], b.masks()[k]), (n, k)
        rep = partition_report(ex.model)
        assert st.ratio == r and st.realised_ratio == pytest.approx(
            sum(x["dynamic"] for x in rep) / sum(x["entries"] for x in rep)
        )
        assert st.dynamic_params == sum(x["dynamic"] * x["copies"] for x in rep)
        assert st.deploy == deploy_numel(merge_for_inference(ex.model))
        assert st.accuracy == pytest.approx(expected_accuracy(ex))
        assert st.latency_ms > 0 and st.batch == 40 and st.device == "cpu"
        d = ex.fig.data
        assert d[ex._i_acc].x == (r,) and d[ex._i_acc].y == (st.accuracy,)
        assert d[ex._i_dep].y == (st.deploy,)
        assert list(d[ex._i_bar].y) == pytest.approx([x["ratio"] for x in rep])
        np.testing.assert_allclose(
            np.array(d[ex._i_mask].z),
            mask_grid(partial_layers(ex.model)[st.layer])["z"],
        )
        assert f'data-value="{st.deploy}"' in ex.readouts.value and ex.slider.value == r
    apply_partition(ex.model, ex.scores["imp"], 0.0)
    assert ex.deploy_curve.deploy.iloc[0] == deploy_numel(ex.model)


def test_output_shows_the_present_figure(explorer):
    "The Output widget (what a page draws, whenever it is opened) holds the figure of the latest move, as plain JSON."
    st = explorer.set_ratio(0.8)
    (out,) = explorer.plot.outputs
    shown = out["data"]["application/vnd.plotly.v1+json"]
    assert out["output_type"] == "display_data" and shown["data"][explorer._i_acc][
        "x"
    ] == [0.8]
    assert shown["data"][explorer._i_dep]["y"] == [st.deploy]
    assert shown["data"][explorer._i_bar]["y"] == pytest.approx(
        [x["ratio"] for x in partition_report(explorer.model)]
    )
    assert shown["layout"]["title"]["text"] == explorer.title


def test_widgets_drive_the_explorer(explorer):
    ex = explorer
    ex.slider.value = 0.2
    assert ex.state.ratio == 0.2 and ex.state.realised_ratio == pytest.approx(
        0.2, abs=0.02
    )
    ex.criterion_w.value = "magnitude"
    assert ex.state.criterion == "magnitude" and ex.state.ratio == 0.2
    ref = conv_model()
    ref.load_state_dict(ex.model.state_dict())
    apply_partition(ref, ex.scores["magnitude"], 0.2)
    assert torch.equal(
        partial_layers(ex.model)["a"].weight_mask, partial_layers(ref)["a"].weight_mask
    )
    ex.layer_w.value = "b"
    assert ex.state.layer == "b" and np.array(ex.fig.data[ex._i_mask].z).shape == (6, 8)
    assert "mode mask of b" in ex.fig.layout.annotations[3].text


def test_fine_tune_trains_at_the_partition(explorer):
    ex = explorer
    ex.set_ratio(0.3)
    masks = {n: l.weight_mask.clone() for n, l in partial_layers(ex.model).items()}
    before = {n: p.detach().clone() for n, p in ex.model.named_parameters()}
    st = ex.fine_tune(4)
    assert (
        st.fine_tune_steps == 4
        and ex.progress.value == 4
        and ex.progress.max == 4
        and not ex.button.disabled
    )
    assert all(
        torch.equal(masks[n], l.weight_mask)
        for n, l in partial_layers(ex.model).items()
    )
    assert any(not torch.equal(before[n], p) for n, p in ex.model.named_parameters())
    assert st.accuracy == pytest.approx(
        expected_accuracy(ex)
    ) and st.deploy == deploy_numel(merge_for_inference(ex.model))
    ex.button.click()  # the button does the same with its step count
    assert ex.state.fine_tune_steps == 4 + ex.steps_w.value


def test_bad_inputs_fail_in_words(explorer):
    ex = explorer
    with pytest.raises(ValueError, match=r"\[0, 1\], got 1.2"):
        ex.set_ratio(1.2)
    with pytest.raises(TypeError, match=r"\[0, 1\], got bool True"):
        ex.set_ratio(True)
    with pytest.raises(ValueError, match="unknown criterion 'grasp'"):
        ex.set_criterion("grasp")
    with pytest.raises(ValueError, match=r"unknown layer 'stem'.*\['a', 'b'\]"):
        ex.set_layer("stem")
    m = conv_model()
    with pytest.raises(ValueError, match="no partially dynamic layer"):
        Explorer(SmallNet(), {"random": {}}, batches(1)[0])
    with pytest.raises(ValueError, match="got keys \\['grasp'\\]"):
        Explorer(m, {"grasp": {}}, batches(1)[0])
    no_train = Explorer(
        m, {"random": mode_scores(m, "random")}, batches(1)[0], curve_points=3
    )
    assert no_train.button.disabled
    with pytest.raises(ValueError, match="no training data"):
        no_train.fine_tune(2)


def test_results_curves_and_static_figure():
    m = conv_model()
    rows = []
    for seed, d in ((0, 0.0), (1, 0.02)):
        rows += [
            dict(
                ratio=np.nan,
                criterion="reference",
                scale=False,
                seed=seed,
                dev_acc=0.8 + d,
                deploy=100,
            ),
            dict(
                ratio=0.0,
                criterion="static",
                scale=True,
                seed=seed,
                dev_acc=0.7 + d,
                deploy=110,
            ),
            dict(
                ratio=1.0,
                criterion="dynamic",
                scale=True,
                seed=seed,
                dev_acc=0.9 + d,
                deploy=400,
            ),
            dict(
                ratio=0.5,
                criterion="random",
                scale=True,
                seed=seed,
                dev_acc=0.85 + d,
                deploy=250,
            ),
        ]
    res = pd.DataFrame(rows).assign(task="fashion_mnist")
    ex = Explorer(
        m,
        {"random": mode_scores(m, "random")},
        batches(1)[0],
        results=res,
        curve_points=3,
    )
    names = [t.name for t in ex.fig.data]
    assert (
        "random" in names
        and "random ± std" in names
        and any(n.startswith("fully dynamic") for n in names)
    )
    line = ex.fig.data[names.index("random")]
    assert list(line.x) == [0.0, 0.5, 1.0] and list(line.y) == pytest.approx(
        [0.71, 0.86, 0.91]
    )
    fig = ex.static_figure()
    assert type(fig) is go.Figure and len(fig.data) == len(ex.fig.data)
    assert fig.data[ex._i_acc].x == (ex.state.ratio,)
    no_res = Explorer(
        m, {"random": mode_scores(m, "random")}, batches(1)[0], curve_points=3
    )
    assert "no PAD-Net results file" in no_res.fig.layout.annotations[-1].text


def test_readouts_and_benchmark(explorer):
    h = readout_html(
        ExplorerState(
            ratio=0.5, criterion="imp", layer="a", accuracy=0.25, dynamic_params=1234
        )
    )
    assert (
        'class="pn-readout pn-accuracy" data-key="accuracy" data-value="0.25">25.00%<'
        in h
    )
    assert 'data-key="dynamic_params" data-value="1234">1,234<' in h
    b = benchmark_slider(explorer, ratios=(0.1, 0.6, 0.3), repeats=2)
    assert (
        b["moves"] == 6
        and b["min_s"] <= b["median_s"] <= b["max_s"]
        and explorer.state.ratio == 0.4
    )


def test_minilm_explorer_tiny():
    "The MiniLM-MoE explorer at a tiny size: expert masks in the mask panel, deploy size equal to the merged model's."
    ex = Explorer.for_minilm(
        train_size=16,
        steps=1,
        heldout_size=8,
        n_batches=1,
        max_len=16,
        batch_size=8,
        results=None,
        progress=False,
        curve_points=3,
    )
    assert all(n.endswith("experts") for n in ex.layers) and len(ex.layers) == 6
    st = ex.set_ratio(0.2)
    assert st.realised_ratio == pytest.approx(0.2, abs=1e-4) and st.batch == 8
    assert st.deploy == deploy_numel(merge_for_inference(ex.model))
    g = mask_grid(partial_layers(ex.model)[st.layer])
    assert g["z"].shape == (64, 64) and np.array(ex.fig.data[ex._i_mask].z).shape == (
        64,
        64,
    )


def test_cached_order_equals_apply_partition_with_ties():
    "Scores with many ties (IMP gives 0 to entries the loss ignores): the explorer's masks still equal apply_partition's."
    m = conv_model()
    sc = {
        k: (v * 0).round() + (torch.arange(v.numel()).view(v.shape) % 3 == 0).float()
        for k, v in mode_scores(m, "random").items()
    }
    ex = Explorer(m, {"random": sc}, batches(1)[0], curve_points=3)
    ref = conv_model()
    for r in (0.05, 0.33, 0.5, 0.99):
        ex.set_ratio(r)
        want = apply_partition(ref, sc, r)
        got = {
            f"{ln}.{mn}": t
            for ln, l in partial_layers(ex.model).items()
            for mn, t in l.masks().items()
        }
        for k in want:
            assert torch.equal(got[k].bool(), want[k]), (r, k)


def test_accuracy_readout_carries_its_standard_error(explorer):
    import math

    st = explorer.set_ratio(0.3)
    n = len(explorer.heldout[1])
    assert st.batch == n == 40 and st.accuracy_se == pytest.approx(
        math.sqrt(st.accuracy * (1 - st.accuracy) / n)
    )
    h = readout_html(
        ExplorerState(
            ratio=0.5, criterion="imp", layer="a", accuracy=0.8, accuracy_se=0.04
        )
    )
    assert 'data-key="accuracy_se" data-value="0.04">± 4.00%<' in h


def test_live_point_carries_its_error_bar_and_says_what_it_is(explorer):
    st = explorer.set_ratio(0.2)
    fig = explorer.static_figure()
    star = next(t for t in fig.data if t.name == "live model: held-out batch")
    assert list(star.error_y.array) == [st.accuracy_se]
    assert "re-partitioned from cached scores" in star.hovertemplate


def test_the_fine_tune_button_moves_the_live_point_toward_the_shipped_curve():
    "A briefly trained ResNet-8 explorer on real Fashion-MNIST: 60 steps at the chosen partition close most of the gap to the full-size IMP curve."
    from padnotes.experiments.pad import summarize_sweep, sweep_results

    s = summarize_sweep(sweep_results("fashion_mnist"))
    curve = float(
        s[
            (s.criterion == "imp")
            & s.scale.astype(bool)
            & np.isclose(s.ratio.astype(float), 0.3)
        ]["mean"].iloc[0]
    )
    ex = Explorer.for_resnet(
        regimes=1,  # Fashion-MNIST as it is, at the sweep's width
        width=16,
        train_size=1024,
        epochs=1,
        heldout_size=1000,
        progress=False,
        device="cpu",
    )
    ex.set_ratio(0.3)
    before = ex.refine().accuracy  # every held-out image, before and after
    ex.fine_tune(60)
    after = ex.refine()
    assert after.realised_ratio == pytest.approx(
        0.3, abs=1e-3
    )  # the partition held while it trained
    assert (
        abs(curve - after.accuracy) < abs(curve - before) - 2 * after.accuracy_se
    )  # closer to the curve by more than the noise


def quick_explorer(quick=16, **kw):
    m = conv_model()
    data = batches()
    return Explorer(
        m,
        {"random": mode_scores(m, "random", seed=1)},
        batches(1, seed=9, size=40)[0],
        train_data=data,
        ratio=0.4,
        curve_points=3,
        lr=1e-2,
        quick=quick,
        **kw,
    )


def correct_on_all(ex):
    x, y = ex.heldout
    with torch.no_grad():
        return ex.model.eval()(x).argmax(-1) == y


def test_a_move_measures_quick_examples_and_refine_measures_the_rest():
    "A move runs the model on the first `quick` held-out examples only; refine() brings the readout to all of them, and the record stays."
    import math

    ex = quick_explorer()
    seen = []
    h = ex.model.register_forward_hook(lambda mod, inp, out: seen.append(len(inp[0])))
    st = ex.set_ratio(0.7)
    assert seen == [16] and st.batch == 16 and st.heldout == 40
    ok = correct_on_all(ex)
    assert st.accuracy == pytest.approx(
        float(ok[:16].float().mean())
    ) and st.accuracy_se == pytest.approx(
        math.sqrt(st.accuracy * (1 - st.accuracy) / 16)
    )
    seen.clear()
    st = ex.refine()
    assert (
        seen == [16, 8]
        and st.batch == 40
        and st.accuracy == pytest.approx(float(ok.float().mean()))
    )
    assert st.accuracy_se == pytest.approx(
        math.sqrt(st.accuracy * (1 - st.accuracy) / 40)
    )
    ex.set_ratio(0.2)
    seen.clear()
    st = ex.set_ratio(0.7)  # back to a partition measured before: its whole record
    assert (
        seen == [16]
        and st.batch == 40
        and st.accuracy == pytest.approx(float(ok.float().mean()))
    )
    h.remove()
    with pytest.raises(
        ValueError, match="quick must be a positive number of examples or None, got 0"
    ):
        quick_explorer(quick=0)
    assert (
        quick_explorer(quick=None).set_ratio(0.1).batch == 40
    )  # None: every example on every move


def test_the_change_readout_is_paired_over_the_same_examples():
    ex = quick_explorer()
    ex.set_ratio(1.0)
    a = correct_on_all(ex).float()
    ex.refine()
    st = ex.set_ratio(0.0)
    b = correct_on_all(ex).float()
    d = (b - a)[:16]  # the new partition is measured on 16 so far
    assert st.change == pytest.approx(
        float(d.mean())
    ) and st.change_se == pytest.approx(float(d.std() / 4))
    st = ex.refine()
    d = b - a
    assert st.change == pytest.approx(
        float(d.mean())
    ) and st.change_se == pytest.approx(float(d.std() / 40**0.5))
    before = correct_on_all(ex).float()
    st = ex.fine_tune(5)
    ex.refine()  # new weights at the same partition: paired with before
    assert st.batch == 40 and st.change == pytest.approx(
        float((correct_on_all(ex).float() - before).mean())
    )
    assert "n/a" in readout_html(
        ExplorerState(ratio=0.5, criterion="imp", layer="a")
    )  # no previous partition: no change to show


def test_background_refinement_finishes_and_a_move_makes_it_stale():
    ex = quick_explorer(quick=4)
    ex.set_ratio(0.9)
    ex._start_background()
    w = ex._worker
    st = ex.set_ratio(0.1)  # waits for the chunk in flight, then measures anew
    assert not w.is_alive() and st.ratio == 0.1 and st.batch == 4
    ex._start_background()
    ex._worker.join(timeout=60)
    assert ex.state.batch == 40 and ex.state.accuracy == pytest.approx(
        float(correct_on_all(ex).float().mean())
    )
    assert (
        'data-key="batch" data-value="40"' in ex.readouts.value
    )  # the readout widget was updated from the thread
    ex.set_ratio(0.5)
    ex.background = False
    ex._start_background()
    assert (
        ex._worker is None and ex.state.batch == 4
    )  # background off: only refine() measures more


def test_benchmark_reports_the_move_and_the_refinement():
    ex = quick_explorer()
    b = benchmark_slider(ex, ratios=(0.1, 0.6))
    assert (
        b["batch"] == 16
        and b["heldout"] == 40
        and b["refine_median_s"] > 0
        and b["refined_se_median"] < b["se_median"]
    )
    assert "refine_median_s" not in benchmark_slider(ex, ratios=(0.3,), refine=False)
