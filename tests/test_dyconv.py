"Properties of padnotes.dyconv: exact equivalence with a per-sample loop, conversion, attention, schedules, bad inputs."

import copy
import pytest
import torch
from torch import nn
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st, HealthCheck

from padnotes.dyconv import (
    DynamicConv2d,
    KernelAttention,
    aggregate,
    dyconv_loop,
    dyconv_kernel_agg,
    dyconv_output_agg,
    dyconv_reference,
    dyconv_from_conv,
    dynamicize,
    dynamic_layers,
    set_temperature,
    attention_entropy,
    count_flops,
    TemperatureSchedule,
    AttentionRecorder,
)
from padnotes.experiments.dyconv import (
    benchmark_dyconv,
    class_attention,
    specialisation,
)
from padnotes.train import fit
from padnotes.data import resnet8, efficientnet_lite0

MODES = ("kernel", "output")


# ---------------------------------------------------------------- equivalence with the per-sample loop


@st.composite
def conv_settings(draw):
    "Random DynamicConv2d arguments and a matching input shape (odd sizes, batch 1, grouped, depthwise)."
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    if kind == "dense":
        g, C, O = 1, draw(st.integers(1, 5)), draw(st.integers(1, 5))
    elif kind == "grouped":
        g = draw(st.integers(2, 3))
        C, O = g * draw(st.integers(1, 3)), g * draw(st.integers(1, 3))
    else:
        C = draw(st.integers(2, 6))
        g = C
        O = C * draw(st.integers(1, 2))
    ks = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["int", "pair", "same", "valid"]))
    stride = (
        (1, 1)
        if padding == "same"
        else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    )
    padding = {
        "int": draw(st.integers(0, 2)),
        "pair": (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
    }.get(padding, padding)
    pmode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    H = draw(st.integers(ks[0] * dil[0] + 2, 13))
    W = draw(st.integers(ks[1] * dil[1] + 2, 13))
    return dict(
        args=dict(
            in_channels=C,
            out_channels=O,
            kernel_size=ks,
            stride=stride,
            padding=padding,
            dilation=dil,
            groups=g,
            bias=draw(st.booleans()),
            padding_mode=pmode,
            num_kernels=draw(st.integers(1, 5)),
            temperature=draw(st.sampled_from([0.3, 1.0, 30.0])),
        ),
        shape=(draw(st.sampled_from([1, 2, 3, 5])), C, H, W),
        seed=draw(st.integers(0, 2**16)),
    )


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_settings())
def test_both_modes_equal_reference_forward_and_grads(s):
    torch.manual_seed(s["seed"])
    layer = DynamicConv2d(**s["args"]).double()
    with (
        torch.no_grad()
    ):  # sharpen the attention so that the kernels are mixed unevenly
        layer.attention.fc2.weight.mul_(10)
    x = torch.randn(*s["shape"], dtype=torch.float64, requires_grad=True)
    ref = dyconv_reference(layer, x)
    static = nn.Conv2d(
        **{
            k: v
            for k, v in s["args"].items()
            if k not in ("num_kernels", "temperature")
        }
    ).double()
    assert ref.shape == static(x).shape  # drop-in: the output shape of nn.Conv2d
    gy = torch.randn_like(ref)
    params = [x] + list(layer.parameters())
    g_ref = torch.autograd.grad(ref, params, gy)
    for mode in MODES:
        layer.mode = mode
        y = layer(x)
        assert layer.last_mode == mode
        torch.testing.assert_close(y, ref, atol=1e-10, rtol=1e-9)
        for name, a, b in zip(
            ["x"] + [n for n, _ in layer.named_parameters()],
            torch.autograd.grad(y, params, gy),
            g_ref,
        ):
            torch.testing.assert_close(
                a,
                b,
                atol=1e-9,
                rtol=1e-8,
                msg=f"gradient of {name} differs in mode {mode}",
            )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "B,C,O,g", [(1, 8, 8, 1), (7, 6, 9, 3), (4, 8, 8, 8), (32, 16, 16, 1)]
)
def test_float32_matches_reference(mode, B, C, O, g):
    torch.manual_seed(0)
    layer = DynamicConv2d(
        C, O, 3, padding=1, groups=g, num_kernels=4, temperature=1.0, mode=mode
    )
    x = torch.randn(B, C, 11, 11)
    torch.testing.assert_close(
        layer(x), dyconv_reference(layer, x), atol=1e-4, rtol=1e-4
    )


def test_functional_forms_with_one_kernel_are_a_convolution():
    torch.manual_seed(0)
    x, w, b = torch.randn(3, 6, 9, 8), torch.randn(1, 4, 3, 3, 2), torch.randn(1, 4)
    ref = F.conv2d(x, w[0], b[0], (2, 1), (1, 1), (1, 2), 2)
    for f in (dyconv_loop, dyconv_kernel_agg, dyconv_output_agg):
        torch.testing.assert_close(
            f(x, w, b, torch.ones(3, 1), (2, 1), (1, 1), (1, 2), 2),
            ref,
            atol=1e-5,
            rtol=1e-5,
        )


def test_aggregate_is_the_weighted_sum():
    torch.manual_seed(0)
    w, b, pi = (
        torch.randn(3, 4, 2, 3, 3),
        torch.randn(3, 4),
        torch.softmax(torch.randn(5, 3), 1),
    )
    wa, ba = aggregate(w, b, pi)
    assert wa.shape == (5, 4, 2, 3, 3) and ba.shape == (5, 4)
    torch.testing.assert_close(
        wa[2], pi[2, 0] * w[0] + pi[2, 1] * w[1] + pi[2, 2] * w[2]
    )
    with pytest.raises(ValueError, match=r"pi must have shape \(B, 3\)"):
        aggregate(w, b, torch.ones(5, 2))


# ---------------------------------------------------------------- attention and temperature


def test_attention_shape_sums_and_last_attention():
    torch.manual_seed(0)
    layer = DynamicConv2d(8, 8, 3, num_kernels=5, temperature=1.0)
    assert layer.last_attention is None
    x = torch.randn(6, 8, 10, 10)
    layer(x)
    pi = layer.last_attention
    assert pi.shape == (6, 5) and not pi.requires_grad
    torch.testing.assert_close(pi.sum(1), torch.ones(6))
    assert (pi >= 0).all()
    torch.testing.assert_close(pi, layer.attention(x).detach())
    assert (
        KernelAttention(1, 4).hidden == 4
        and KernelAttention(64, 4, reduction=4).hidden == 16
    )


def test_temperature_effect():
    torch.manual_seed(0)
    layer = DynamicConv2d(16, 16, 3, num_kernels=4)
    with torch.no_grad():
        layer.attention.fc2.weight.mul_(5)
    x = torch.randn(32, 16, 8, 8)
    ents = []
    for t in (1000.0, 30.0, 10.0, 3.0, 1.0, 0.3, 0.1):
        layer.temperature = t
        with torch.no_grad():
            layer(x)
        ents.append(attention_entropy(layer.last_attention))
        if t == 1000.0:
            assert (
                layer.last_attention - 0.25
            ).abs().max() < 1e-3  # high tau: near uniform
    assert all(a > b for a, b in zip(ents, ents[1:])), (
        ents
    )  # entropy falls as tau falls
    assert ents[0] > 0.999 and ents[-1] < 0.5


def test_entropy_bounds():
    assert attention_entropy(torch.full((3, 4), 0.25)) == pytest.approx(1.0)
    assert attention_entropy(torch.eye(4)) == pytest.approx(0.0, abs=1e-6)
    assert attention_entropy(torch.ones(2, 1)) == 0.0


def test_set_temperature_and_validation():
    m = nn.Sequential(DynamicConv2d(3, 4, 3), nn.ReLU(), DynamicConv2d(4, 4, 3))
    assert set_temperature(m, 2.5) == 2
    assert all(l.temperature == 2.5 for l in dynamic_layers(m).values())
    for bad in (0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            set_temperature(m, bad)
    for bad in ("1", True):  # the wrong type is a TypeError, as everywhere in padnotes
        with pytest.raises(TypeError, match="temperature must be a number"):
            set_temperature(m, bad)
    assert all(l.temperature == 2.5 for l in dynamic_layers(m).values())


# ---------------------------------------------------------------- bad inputs


def test_wrong_types_raise_type_errors():
    with pytest.raises(TypeError, match="num_kernels must be an int, got float 2.5"):
        DynamicConv2d(6, 6, 3, num_kernels=2.5)
    with pytest.raises(TypeError, match="temperature must be a number"):
        DynamicConv2d(6, 6, 3, temperature="hot")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (
            dict(in_channels=6, out_channels=4, kernel_size=3, groups=4),
            "in_channels must be divisible by groups, got in_channels=6, groups=4",
        ),
        (
            dict(in_channels=6, out_channels=4, kernel_size=3, groups=3),
            "out_channels must be divisible by groups, got out_channels=4, groups=3",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, num_kernels=0),
            "num_kernels must be an int >= 1, got 0",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, num_kernels=-2),
            "num_kernels must be an int >= 1, got -2",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, temperature=0),
            "temperature must be a finite number > 0, got 0",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, temperature=-3.0),
            "got -3.0",
        ),
        (
            dict(in_channels=0, out_channels=6, kernel_size=3),
            "in_channels must be an int >= 1, got 0",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=0),
            "kernel_size must be an int >= 1",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, padding="full"),
            "padding must be 'same', 'valid'",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, padding=-1),
            "padding must be",
        ),
        (
            dict(
                in_channels=6, out_channels=6, kernel_size=3, padding="same", stride=2
            ),
            "padding='same' needs stride 1",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, padding_mode="mirror"),
            "padding_mode must be one of",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, mode="fast"),
            "mode must be one of",
        ),
        (
            dict(in_channels=6, out_channels=6, kernel_size=3, reduction=0),
            "reduction must be an int >= 1, got 0",
        ),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match.replace("(", r"\(").replace(")", r"\)")):
        DynamicConv2d(**kwargs)


def test_bad_input_and_temperature_setter():
    layer = DynamicConv2d(6, 6, 3)
    with pytest.raises(
        ValueError, match=r"expected input of shape \(B, 6, H, W\), got \(2, 5, 8, 8\)"
    ):
        layer(torch.randn(2, 5, 8, 8))
    with pytest.raises(ValueError, match="got 0"):
        layer.temperature = 0
    assert layer.temperature == 30.0


# ---------------------------------------------------------------- dynamicize


class GroupedNet(nn.Module):
    "Grouped, depthwise, non-square, reflect-padded and shared convolutions."

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 12, 3, padding=1)
        self.grouped = nn.Conv2d(12, 12, 3, padding=1, groups=3, bias=False)
        self.depthwise = nn.Conv2d(12, 24, (3, 5), stride=2, padding=(1, 2), groups=12)
        self.pointwise = nn.Conv2d(24, 24, 1, padding_mode="reflect")
        self.same = nn.Conv2d(
            24, 24, 4, padding="same", dilation=2, padding_mode="replicate"
        )
        self.bn = nn.BatchNorm2d(24)
        self.fc = nn.Linear(24, 5)

    def forward(self, x):
        x = F.relu(self.grouped(F.relu(self.stem(x))))
        x = F.relu(self.bn(self.depthwise(x)))
        x = self.same(self.pointwise(self.pointwise(x)))
        return self.fc(x.mean((2, 3)))


def _state(model):
    "state dict copies (uninitialised lazy parameters by identity)"
    return {
        k: (v if isinstance(v, nn.parameter.UninitializedParameter) else v.clone())
        for k, v in model.state_dict().items()
    }


def _snapshot(model):
    return [(n, type(m), id(m)) for n, m in model.named_modules()], _state(model)


def _unchanged(model, snap):
    mods, sd = snap
    now = _state(model)
    same = lambda a, b: (
        a is b
        if isinstance(a, nn.parameter.UninitializedParameter)
        else torch.equal(a, b)
    )
    return (
        [(n, type(m), id(m)) for n, m in model.named_modules()] == mods
        and set(sd) == set(now)
        and all(same(v, sd[k]) for k, v in now.items())
    )


def _check_preserved(model, x, n_dynamic=None, atol=1e-4, **kw):
    model.eval()
    with torch.no_grad():
        before = model(x)
    dynamicize(model, **kw)
    with torch.no_grad():
        after = model(x)
    torch.testing.assert_close(after, before, atol=atol, rtol=1e-4)
    if n_dynamic is not None:
        assert len(dynamic_layers(model)) == n_dynamic
    return model


@pytest.mark.parametrize("mode", MODES)
def test_dynamicize_resnet8_preserves_outputs(mode):
    torch.manual_seed(0)
    m = resnet8()
    # give BN non-trivial statistics so the check is not about zeros
    m.train()
    m(torch.randn(16, 1, 28, 28))
    _check_preserved(m, torch.randn(3, 1, 28, 28), n_dynamic=8, mode=mode)
    assert isinstance(m.stem, nn.Conv2d) and isinstance(m.fc, nn.Linear)
    m.train()
    m(torch.randn(2, 1, 28, 28)).sum().backward()
    assert all(
        l.weight.grad is not None and l.attention.fc1.weight.grad is not None
        for l in dynamic_layers(m).values()
    )


def test_dynamicize_grouped_net_and_sharing():
    torch.manual_seed(0)
    m = _check_preserved(GroupedNet(), torch.randn(2, 3, 15, 15), n_dynamic=4)
    assert isinstance(m.stem, nn.Conv2d)
    assert (
        m.depthwise.groups == 12
        and m.depthwise.kernel_size == (3, 5)
        and m.pointwise.padding_mode == "reflect"
    )
    # the shared pointwise conv stays one module
    names = [
        n for n, mod in m.named_modules(remove_duplicate=False) if mod is m.pointwise
    ]
    assert names == ["pointwise"]


def test_dynamicize_shared_module_under_two_names():
    shared = nn.Conv2d(4, 4, 3, padding=1)
    m = nn.Sequential(nn.Conv2d(3, 4, 1), shared, nn.ReLU(), shared)
    _check_preserved(m, torch.randn(2, 3, 8, 8))
    assert isinstance(m[1], DynamicConv2d) and m[1] is m[3]


def test_dynamicize_efficientnet_lite0_depthwise():
    torch.manual_seed(0)
    m = _check_preserved(
        efficientnet_lite0(pretrained=True), torch.randn(1, 3, 64, 64), atol=1e-3
    )
    dw = [l for l in dynamic_layers(m).values() if l.groups == l.in_channels > 1]
    assert len(dw) == 16
    assert isinstance(m._conv_stem, nn.Conv2d)


def test_dynamicize_torchvision_resnet18():
    tv = pytest.importorskip(
        "torchvision",
        reason="torchvision is not importable here (CPU torch without a matching torchvision)",
    )
    try:
        m = tv.models.resnet18(weights=None)
    except Exception as e:
        pytest.skip(f"torchvision resnet18 unavailable: {e}")
    torch.manual_seed(0)
    _check_preserved(m, torch.randn(1, 3, 64, 64), n_dynamic=19, atol=1e-3)
    assert isinstance(m.conv1, nn.Conv2d)


def test_dynamicize_skip_keep_first_noise_and_fresh():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 15, 15)
    m = dynamicize(GroupedNet(), skip=["group*", "same"], keep_first=False)
    assert sorted(dynamic_layers(m)) == ["depthwise", "pointwise", "stem"]
    base = GroupedNet().eval()
    with torch.no_grad():
        y0 = base(x)
    a = dynamicize(copy.deepcopy(base), noise=0.2, seed=1).eval()
    b = dynamicize(copy.deepcopy(base), noise=0.2, seed=1).eval()
    with torch.no_grad():
        assert not torch.allclose(a(x), y0, atol=1e-3)
        for (n1, p1), (n2, p2) in zip(a.named_parameters(), b.named_parameters()):
            if "attention" not in n1:
                assert torch.equal(p1, p2), n1  # the noise is reproducible
    fresh = dynamicize(copy.deepcopy(base), copy_weights=False)
    assert not torch.equal(fresh.grouped.weight[0], fresh.grouped.weight[1])
    assert (
        fresh.grouped.num_kernels == 4
        and dynamicize(GroupedNet(), num_kernels=2).grouped.weight.shape[0] == 2
    )


def test_dynamicize_keeps_dtype_device_and_training_flag():
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 4, 3)).double().eval()
    dynamicize(m)
    assert (
        m[1].weight.dtype == torch.float64
        and m[1].attention.fc1.weight.dtype == torch.float64
        and not m[1].training
    )
    assert m(torch.randn(1, 3, 9, 9, dtype=torch.float64)).dtype == torch.float64


class DoubledConv(nn.Conv2d):
    def forward(self, x):
        return 2 * super().forward(x)


@pytest.mark.parametrize(
    "make,kw,err,match",
    [
        (lambda: torch.randn(3), {}, TypeError, "needs an nn.Module"),
        (lambda: GroupedNet(), dict(skip=["nope"]), ValueError, "matches no nn.Conv2d"),
        (lambda: GroupedNet(), dict(skip="*"), ValueError, "nothing to convert"),
        (
            lambda: nn.Sequential(nn.Conv2d(3, 3, 1), nn.Linear(3, 3)),
            {},
            ValueError,
            "nothing to convert",
        ),
        (lambda: nn.Sequential(nn.Linear(3, 3)), {}, ValueError, "nothing to convert"),
        (
            lambda: GroupedNet(),
            dict(num_kernels=0),
            ValueError,
            "num_kernels must be an int >= 1",
        ),
        (lambda: GroupedNet(), dict(temperature=-1), ValueError, "temperature must be"),
        (lambda: GroupedNet(), dict(noise=-0.1), ValueError, "noise must be"),
        (lambda: GroupedNet(), dict(skip=[3]), TypeError, "skip must be"),
        (
            lambda: nn.Sequential(
                nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 3), DoubledConv(3, 3, 1)
            ),
            {},
            TypeError,
            "own forward",
        ),
        (
            lambda: nn.Sequential(
                nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 3), nn.LazyConv2d(3, 1)
            ),
            {},
            TypeError,
            "lazy",
        ),
    ],
)
def test_dynamicize_refuses_and_leaves_model_untouched(make, kw, err, match):
    m = make()
    snap = _snapshot(m) if isinstance(m, nn.Module) else None
    with pytest.raises(err, match=match):
        dynamicize(m, **kw)
    if snap is not None:
        assert _unchanged(m, snap)


def test_subclass_can_be_skipped():
    m = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 3), DoubledConv(3, 3, 1))
    dynamicize(m, skip="2")
    assert isinstance(m[1], DynamicConv2d) and type(m[2]) is DoubledConv


# ---------------------------------------------------------------- FLOPs, schedule, benchmark, class attention


def test_count_flops_by_hand():
    conv = nn.Conv2d(8, 16, 3, padding=1, stride=2, groups=2, bias=False)
    x = torch.randn(2, 8, 10, 10)  # output 5x5
    conv_macs = 2 * 16 * 4 * 9 * 25
    assert count_flops(conv, x)["macs"] == conv_macs
    assert count_flops(nn.Linear(10, 3), torch.randn(4, 10)) == dict(
        macs=120, flops=240, by_layer=[dict(layer="", type="Linear", macs=120)]
    )
    dy = dyconv_from_conv(conv, num_kernels=3)
    attn = 2 * (8 * 100 + 8 * 4 + 4 * 3)
    assert count_flops(dy, x)["macs"] == attn + 2 * 3 * 16 * 4 * 9 + conv_macs
    dy.mode = "output"
    assert count_flops(dy, x)["macs"] == attn + 3 * conv_macs + 2 * 3 * 16 * 25
    m = dynamicize(resnet8())
    r = count_flops(m, torch.randn(1, 1, 28, 28))
    assert (
        len(r["by_layer"]) == 1 + 8 + 1 and r["flops"] == 2 * r["macs"]
    )  # stem, 8 dynamic, fc; no attention Linear twice


def _toy_loader(n=64, bs=16):
    g = torch.Generator().manual_seed(0)
    ds = torch.utils.data.TensorDataset(
        torch.randn(n, 1, 12, 12, generator=g), torch.randint(0, 3, (n,), generator=g)
    )
    return torch.utils.data.DataLoader(ds, batch_size=bs)


def _toy_dynamic():
    return dynamicize(
        nn.Sequential(
            nn.Conv2d(1, 4, 3),
            nn.ReLU(),
            nn.Conv2d(4, 6, 3),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(6, 3),
        )
    )


def test_temperature_schedule_steps_and_epochs():
    dl = _toy_loader()
    m = _toy_dynamic()
    s = TemperatureSchedule(30, 1, steps=4)
    rec = AttentionRecorder()
    fit(m, dl, epochs=2, cbs=[s, rec], device="cpu", progress=False)
    assert [h["temperature"] for h in s.history] == [30, 22.75, 15.5, 8.25, 1, 1, 1, 1]
    assert dynamic_layers(m)["2"].temperature == 1.0
    df = rec.frame()
    assert (
        len(df) == 8
        and set(df.layer) == {"2"}
        and list(df.temperature[:2]) == [30, 22.75]
    )
    m = _toy_dynamic()
    s = TemperatureSchedule(30, 2, epochs=2)
    fit(m, dl, epochs=3, cbs=[s], device="cpu", progress=False)
    assert [h["temperature"] for h in s.history] == [30, 16, 2]
    with pytest.raises(ValueError, match="no DynamicConv2d"):
        fit(
            nn.Sequential(nn.Flatten(), nn.Linear(144, 3)),
            dl,
            cbs=[TemperatureSchedule(steps=2)],
            device="cpu",
            progress=False,
        )
    with pytest.raises(ValueError, match="exactly one of epochs or steps"):
        TemperatureSchedule(30, 1, epochs=2, steps=3)
    with pytest.raises(ValueError, match="steps must be an int >= 1, got 0"):
        TemperatureSchedule(steps=0)


def test_class_attention_and_specialisation():
    m = _toy_dynamic()
    ca = class_attention(m, _toy_loader(), num_classes=3)
    assert list(ca) == ["2"] and ca["2"].shape == (3, 4)
    torch.testing.assert_close(
        torch.tensor(ca["2"].sum(1)), torch.ones(3, dtype=torch.float64)
    )
    sp = specialisation(ca)
    assert (
        list(sp.layer) == ["2"] and (sp.mean_tv >= 0).all() and (sp.max_tv <= 1).all()
    )
    with pytest.raises(ValueError, match="no DynamicConv2d"):
        class_attention(nn.Linear(2, 2), [], 2)


def test_benchmark_table_shape():
    df = benchmark_dyconv(
        batch_sizes=(1, 2),
        channels=4,
        size=6,
        min_run_time=0.01,
        rounds=2,
        device="cpu",
        num_threads=1,
    )
    assert len(df) == 12 and set(df.impl) == {
        "static conv",
        "static conv channels_last",
        "dyconv kernel",
        "dyconv kernel, one grouped conv",
        "dyconv output",
        "per-sample loop",
    }
    assert {
        "fwd_ms",
        "fwd_bwd_ms",
        "fwd_x_static",
        "fwd_bwd_x_static",
        "fwd_x_best_static",
        "fwd_bwd_x_best_static",
        "loop_x_fwd",
        "loop_x_fwd_bwd",
    } <= set(df.columns)
    assert (
        df.groupby("batch").fwd_x_best_static.min() == 1
    ).all()  # the faster static layout is the unit
    assert (df.fwd_ms > 0).all() and df.attrs["threads"] == 1


@pytest.mark.parametrize("chunk", [1, 3, 5, 16, None, "auto"])
@pytest.mark.parametrize("groups,bias", [(1, True), (2, False)])
def test_chunked_kernel_aggregation_equals_one_grouped_conv_forward_and_backward(
    chunk, groups, bias
):
    from padnotes.dyconv import dyconv_kernel_agg

    torch.manual_seed(0)
    B = 20
    x = torch.randn(B, 4, 7, 7, requires_grad=True)
    w = torch.randn(3, 6, 4 // groups, 3, 3, requires_grad=True)
    b = torch.randn(3, 6, requires_grad=True) if bias else None
    pi = torch.softmax(torch.randn(B, 3), 1).requires_grad_()
    ins = [t for t in (x, w, b, pi) if t is not None]
    outs = {}
    for c in (None, chunk):
        y = dyconv_kernel_agg(x, w, b, pi, 2, 1, 1, groups, chunk=c)
        outs[c] = (
            y,
            torch.autograd.grad(
                (y * torch.arange(y.numel()).view_as(y).sin()).sum(), ins
            ),
        )
    torch.testing.assert_close(outs[chunk][0], outs[None][0], rtol=1e-5, atol=1e-5)
    for g1, g0 in zip(outs[chunk][1], outs[None][1]):
        torch.testing.assert_close(g1, g0, rtol=1e-4, atol=1e-5)


def test_the_layer_chunks_on_the_cpu_by_the_rule_and_can_be_told_not_to():
    from padnotes.dyconv import auto_chunk

    assert (
        auto_chunk("cpu", 32) == 16
        and auto_chunk("cpu", 16) is None
        and auto_chunk("cuda", 128) is None
    )
    torch.manual_seed(0)
    layer = DynamicConv2d(4, 4, 3, padding=1)
    x = torch.randn(40, 4, 6, 6)
    y = layer(x)
    layer.chunk = None
    torch.testing.assert_close(layer(x), y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dyconv_reference(layer, x), y, rtol=1e-4, atol=1e-5)
