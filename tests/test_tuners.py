"Promises of the tuner protocol (padnotes.tuners), as peft tests its tuners: on DY-Conv, PAD-Net and a model no tutorial uses."

import json, math
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from padnotes.core import count_params, deploy_numel, set_seed
from padnotes.dyconv import (
    DynamicConv2d,
    DynamicConvConfig,
    dynamicize,
    set_temperature,
)
from padnotes.pad import (
    MergedPartialConv2d,
    PadConfig,
    PartialDynamicConv2d,
    merge_for_inference,
    padify,
)
from padnotes.sparse import saved_bytes, tensor_bytes
from padnotes.tuners import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    TunerConfig,
    TunerLayer,
    disable_tuners,
    from_pretrained,
    inject,
    merge,
    merge_and_unload,
    save_pretrained,
    trainable_parameters,
    tuner_layers,
    unload,
    unmerge,
)


class UNetLike(nn.Module):
    "A model no tutorial uses: an encoder-decoder with a transposed conv, a dilated conv, a depthwise conv, BatchNorm and a skip."

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()
        )
        self.down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.mid = nn.ModuleDict(
            dict(
                dil=nn.Conv2d(16, 16, 3, padding=2, dilation=2),
                dw=nn.Conv2d(16, 16, 3, padding=1, groups=16),
            )
        )
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.head = nn.Conv2d(16, 4, 1)

    def forward(self, x):
        e = self.enc(x)
        m = torch.relu(self.down(e))
        m = torch.relu(self.mid["dw"](torch.relu(self.mid["dil"](m))))
        y = self.head(torch.cat([e, self.up(m)], 1))
        return y.mean((2, 3))


def data(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(4, 3, 12, 12, generator=g), torch.randint(0, 4, (4,), generator=g))
        for _ in range(n)
    ]


def snapshot(m):
    return {k: v.clone() for k, v in m.state_dict().items()}


def same_state(m, snap):
    return set(m.state_dict()) == set(snap) and all(
        torch.equal(v, snap[k]) for k, v in m.state_dict().items()
    )


def dyconv_tuned(seed=0, freeze_base=True):
    set_seed(seed)
    base = UNetLike().eval()
    cfg = DynamicConvConfig(
        num_kernels=3, noise=0.3, seed=seed, temperature=2.0, freeze_base=freeze_base
    )
    return base, inject(base, cfg)


def pad_tuned(seed=0, ratio=0.4):
    set_seed(seed)
    base = UNetLike().eval()
    m = dynamicize(base, num_kernels=3, noise=0.3, seed=seed, temperature=2.0)
    return padify(m, ratio, criterion="imp", data=data(), n_batches=2).eval()


# ---------------------------------------------------------------- wrapping, switching off, unloading


def test_inject_wraps_and_keeps_the_original_modules():
    set_seed(0)
    base = UNetLike()
    orig = {n: m for n, m in base.named_modules()}
    inject(base, DynamicConvConfig(num_kernels=2))
    for n, l in tuner_layers(base).items():
        assert isinstance(l, DynamicConv2d) and isinstance(l, TunerLayer)
        assert (
            l.base_layer is orig[n] and type(l.base_layer) is nn.Conv2d
        )  # the very object, its class unchanged
    assert "enc.0" not in tuner_layers(base)  # keep_first: the stem stays static
    assert isinstance(base.up, nn.ConvTranspose2d)  # not an nn.Conv2d: not a target


def test_switching_off_restores_base_outputs_exactly():
    set_seed(0)
    ref = UNetLike().eval()
    x = data()[0][0]
    with torch.no_grad():
        y0 = ref(x)
    for tuned in (dyconv_tuned()[1], pad_tuned()):
        with torch.no_grad():
            assert not torch.allclose(tuned(x), y0)
            with disable_tuners(tuned):
                assert torch.equal(tuned(x), y0)
            assert not torch.allclose(tuned(x), y0)  # on again after the block


def test_unload_gives_back_a_model_equal_to_the_original():
    set_seed(0)
    ref = UNetLike()
    snap = snapshot(ref)
    flags = [p.requires_grad for p in ref.parameters()]
    for make in (
        lambda b: inject(b, DynamicConvConfig(num_kernels=3, noise=0.1, seed=0)),
        lambda b: padify(dynamicize(b, noise=0.1, seed=0), 0.3, criterion="random"),
    ):
        set_seed(0)
        base = UNetLike()
        mods = dict(base.named_modules())
        back = unload(make(base))
        assert (
            same_state(back, snap)
            and [p.requires_grad for p in back.parameters()] == flags
        )
        assert all(back.get_submodule(n) is m for n, m in mods.items() if n)
        assert not tuner_layers(back)


@pytest.mark.parametrize("make", [lambda: dyconv_tuned()[1], pad_tuned])
def test_merged_equals_unmerged(make):
    m = make()
    x = data()[0][0]
    with torch.no_grad():
        y = m(x)
        merge(m)
        assert all(l.merged for l in tuner_layers(m).values())
        assert torch.allclose(m(x), y, atol=1e-5)
        unmerge(m)
        assert torch.equal(m(x), y)
        dep = merge_and_unload(m)
        assert torch.allclose(dep(x), y, atol=1e-5) and torch.equal(
            m(x), y
        )  # the tuned model is untouched
    assert not any(
        isinstance(l, TunerLayer) and l.base_layer is not None for l in dep.modules()
    )  # deployed: no base layers


# ---------------------------------------------------------------- training touches only what it should


def test_only_the_method_parameters_train_with_a_frozen_base():
    base, m = dyconv_tuned(freeze_base=True)
    before = snapshot(m)
    m.train()
    c = trainable_parameters(m)
    method = {
        f"{n}.{k}"
        for n, l in tuner_layers(m).items()
        for k, _ in l.named_parameters()
        if not k.startswith("base_layer.")
    }
    assert {n for n, p in m.named_parameters() if p.requires_grad} == method and c[
        "trainable"
    ] < c["total"]
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    for x, y in data(3):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    changed = {k for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(
        any(k.startswith(f"{n}.") and ".base_layer." not in k for n in tuner_layers(m))
        or "running_" in k
        or "num_batches" in k
        for k in changed
    ), changed


def test_dynamicize_trains_the_whole_network_but_never_the_base_layers():
    set_seed(0)
    m = dynamicize(UNetLike(), num_kernels=2)
    base_params = {
        id(p) for l in tuner_layers(m).values() for p in l.base_layer.parameters()
    }
    assert all(not p.requires_grad for p in m.parameters() if id(p) in base_params)
    assert all(p.requires_grad for p in m.parameters() if id(p) not in base_params)


# ---------------------------------------------------------------- save / load


@pytest.mark.parametrize("kind", ["dyconv_frozen", "dyconv_whole", "pad"])
def test_save_and_from_pretrained_round_trip_bit_for_bit(kind, tmp_path):
    set_seed(0)
    fresh = UNetLike().eval()
    pristine = snapshot(fresh)
    if kind == "pad":
        m = pad_tuned()
    else:
        _, m = dyconv_tuned(freeze_base=(kind == "dyconv_frozen"))
    set_temperature(
        m, 1.0
    )  # a temperature changed after conversion travels with the weights
    m.train()
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    for x, y in data(2, seed=1):
        opt.zero_grad()
        F.cross_entropy(m(x), y).backward()
        opt.step()
    m.eval()
    x = data(1, seed=5)[0][0]
    with torch.no_grad():
        y = m(x)
    save_pretrained(m, tmp_path)
    saved = json.loads((tmp_path / CONFIG_NAME).read_text())
    assert [t["config"]["method"] for t in saved["tuners"]] == (
        ["dynamic_conv", "pad"] if kind == "pad" else ["dynamic_conv"]
    )
    from safetensors.torch import load_file

    keys = set(load_file(str(tmp_path / WEIGHTS_NAME)))
    assert not any(".base_layer." in k for k in keys)  # never the wrapped originals
    if (
        kind == "dyconv_frozen"
    ):  # the method's tensors and the base's buffers, no base parameter
        base_params = {
            n
            for n, _ in m.named_parameters()
            if not any(n.startswith(t + ".") for t in tuner_layers(m))
        }
        assert keys.isdisjoint(base_params) and any("running_mean" in k for k in keys)
    fresh.load_state_dict(pristine)
    re_m = from_pretrained(fresh, tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(re_m(x), y)
    assert {type(l) for l in tuner_layers(re_m).values()} == {
        type(l) for l in tuner_layers(m).values()
    }


def test_from_pretrained_refuses_a_folder_that_does_not_fit_and_leaves_the_base_as_it_was(
    tmp_path,
):
    _, m = dyconv_tuned()
    save_pretrained(m, tmp_path)
    other = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3))
    snap = snapshot(other)
    with pytest.raises(ValueError, match="target_modules entry|does not fit"):
        from_pretrained(other, tmp_path)
    assert same_state(other, snap) and type(other[1]) is nn.Conv2d
    with pytest.raises(FileNotFoundError, match=CONFIG_NAME):
        from_pretrained(UNetLike(), tmp_path / "nope")


# ---------------------------------------------------------------- bad configs change nothing


@pytest.mark.parametrize(
    "make,err,match",
    [
        (
            lambda: DynamicConvConfig(target_modules=["decoder"]),
            ValueError,
            "no module has that name",
        ),
        (
            lambda: DynamicConvConfig(target_modules=["up"]),
            ValueError,
            "which this method cannot convert",
        ),
        (
            lambda: DynamicConvConfig(target_modules=5),
            TypeError,
            "target_modules must be None",
        ),
        (
            lambda: DynamicConvConfig(num_kernels=0),
            ValueError,
            "num_kernels must be an int >= 1",
        ),
        (
            lambda: DynamicConvConfig(num_kernels=2.0),
            TypeError,
            "num_kernels must be an int",
        ),
        (
            lambda: DynamicConvConfig(temperature="warm"),
            TypeError,
            "temperature must be a number",
        ),
        (lambda: DynamicConvConfig(mode="fastest"), ValueError, "mode must be one of"),
        (
            lambda: PadConfig(dynamic_ratio=1.5),
            ValueError,
            r"dynamic_ratio must be a number in \[0, 1\]",
        ),
        (
            lambda: PadConfig(dynamic_ratio="0.3"),
            TypeError,
            "dynamic_ratio must be a number",
        ),
        (lambda: PadConfig(criterion="snip2"), ValueError, "criterion must be one of"),
    ],
)
def test_bad_configs_raise_clear_errors_and_change_nothing(make, err, match):
    set_seed(0)
    m = UNetLike()
    snap = snapshot(m)
    types = [type(x) for x in m.modules()]
    with pytest.raises(err, match=match):
        cfg = make()
        inject(m, cfg)
    assert same_state(m, snap) and [type(x) for x in m.modules()] == types


def test_configs_round_trip_through_json():
    for cfg in (
        DynamicConvConfig(
            num_kernels=3, target_modules=["down", "mid.*"], noise=0.1, seed=4
        ),
        PadConfig(dynamic_ratio=0.3, scope="layer"),
    ):
        again = TunerConfig.from_json(cfg.to_json())
        assert again == cfg and type(again) is type(cfg)


# ---------------------------------------------------------------- deploy size in bytes


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5])
def test_saved_merged_pad_conv_bytes_match_the_formula(ratio):
    from padnotes.scoring import keep_masks

    set_seed(0)
    K = 4
    dy = DynamicConv2d(64, 64, 3, padding=1, bias=True, num_kernels=K)
    p = PartialDynamicConv2d.from_dynamic(dy)
    with torch.no_grad():
        for mk in p.masks().values():
            mk.copy_(keep_masks({"m": torch.rand(mk.shape)}, ratio)["m"].float())
    merged = MergedPartialConv2d.from_partial(p)
    n_w, n_b = p.weight_mask.numel(), p.bias_mask.numel()
    r_w, r_b = float(p.weight_mask.mean()), float(p.bias_mask.mean())
    att = count_params(p.attention) + 1  # weights, biases and the temperature
    settings = 8 * len(
        merged.state_settings
    )  # one float64 per setting (the formulation)
    formula = (
        4 * (((1 - r_w) + r_w * K) * n_w + ((1 - r_b) + r_b * K) * n_b + att)
        + math.ceil(n_w / 8)
        + math.ceil(n_b / 8)
        + settings
    )
    assert abs(saved_bytes(merged) / formula - 1) < 0.02
    assert abs(tensor_bytes(merged) - formula) <= 2
    full = saved_bytes(dy)  # the fully dynamic layer it came from
    assert (
        saved_bytes(merged)
        < full * ((1 - ratio) + ratio * K) / K + 4 * att + n_w / 8 + 2048
    )


def test_one_accounting_function_agrees_with_the_merged_model():
    m = pad_tuned(ratio=0.3)
    merged = merge_for_inference(m)
    assert deploy_numel(m) == deploy_numel(merged)
    assert deploy_numel(m) < count_params(
        m
    )  # no base layers, no K-fold copies of the static entries


def test_padify_refuses_merged_models():
    merged = merge_for_inference(pad_tuned())
    with pytest.raises(ValueError, match="merged for deployment"):
        padify(merged, 0.2, criterion="random")


def test_count_flops_works_on_merged_models():
    "A bug before the protocol: count_flops broke on merged layers (they were DynamicConv2d subclasses without kernels)."
    from padnotes.dyconv import count_flops

    m = pad_tuned(ratio=0.3)
    x = data(1)[0][0][:1]
    merged = merge_for_inference(m)
    assert (
        count_flops(merged, x)["macs"]
        == count_flops(m, x)["macs"]
        > count_flops(UNetLike(), x)["macs"]
    )


# ---------------------------------------------------------------- MoE on the protocol (a tiny BERT)


def tiny_bert(seed=0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=2,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return BertForSequenceClassification(cfg).eval()


def bert_batches(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        dict(
            input_ids=torch.randint(0, 50, (4, 9), generator=g),
            labels=torch.randint(0, 2, (4,), generator=g),
        )
        for _ in range(n)
    ]


def test_moefy_wraps_both_halves_of_each_ffn_and_switches_off_exactly():
    from padnotes.moe import FFNBypass, MoEFFN, moefy

    m = tiny_bert()
    inter, dense = (
        m.bert.encoder.layer[0].intermediate,
        m.bert.encoder.layer[0].output.dense,
    )
    ids = bert_batches(1)[0]["input_ids"]
    with torch.no_grad():
        y0 = m(input_ids=ids).logits
    moefy(m, num_experts=4, top_k=2, noisy_gating=False)
    layer = m.bert.encoder.layer[0]
    assert (
        isinstance(layer.intermediate, MoEFFN)
        and layer.intermediate.base_layer is inter
    )
    assert (
        isinstance(layer.output.dense, FFNBypass)
        and layer.output.dense.base_layer is dense
    )
    with torch.no_grad():
        for l in m.modules():
            if hasattr(l, "moe"):
                l.moe.experts.w1.add_(
                    0.1 * torch.randn_like(l.moe.experts.w1)
                )  # the experts now differ
        assert not torch.allclose(m(input_ids=ids).logits, y0)
        with disable_tuners(m):
            assert torch.equal(m(input_ids=ids).logits, y0)
        layer.intermediate.disabled = True
        assert layer.output.dense.disabled  # the two halves switch together
        layer.intermediate.disabled = False
    back = unload(m)
    assert (
        back.bert.encoder.layer[0].intermediate is inter
        and back.bert.encoder.layer[0].output.dense is dense
    )
    with torch.no_grad():
        assert torch.equal(back(input_ids=ids).logits, y0)


@pytest.mark.parametrize("with_pad", [False, True])
def test_moe_models_save_and_reload_bit_for_bit(with_pad, tmp_path):
    from padnotes.moe import moefy

    fresh = tiny_bert()
    pristine = snapshot(fresh)
    m = moefy(
        tiny_bert(), num_experts=4, top_k=1, init="split", capacity_factor=1.5
    )  # settings outside the state_dict
    if with_pad:
        padify(m, 0.4, criterion="imp", data=bert_batches(), n_batches=2)
    m.train()
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.05)
    for b in bert_batches(2, seed=1):
        opt.zero_grad()
        m(**b).loss.backward()
        opt.step()
    m.eval()
    ids = bert_batches(1, seed=7)[0]["input_ids"]
    with torch.no_grad():
        y = m(input_ids=ids).logits
    save_pretrained(m, tmp_path)
    fresh.load_state_dict(pristine)
    re_m = from_pretrained(fresh, tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(re_m(input_ids=ids).logits, y)
    from padnotes.moe import moe_layers

    assert [(l.top_k, l.capacity_factor) for l in moe_layers(re_m)] == [(1, 1.5)] * 2
    with torch.no_grad():
        dep = merge_and_unload(m) if not with_pad else merge_for_inference(m)
        assert torch.allclose(dep(input_ids=ids).logits, y, atol=1e-5)
    assert not any(
        isinstance(l, TunerLayer) and l.base_layer is not None for l in dep.modules()
    )
    assert deploy_numel(dep) == deploy_numel(m)


def test_moe_bad_configs_change_nothing():
    from padnotes.moe import MoEConfig

    for make, err in (
        (lambda: MoEConfig(top_k=9, num_experts=8), ValueError),
        (lambda: MoEConfig(top_k=2.0), TypeError),
        (lambda: MoEConfig(capacity_factor="1"), TypeError),
        (lambda: MoEConfig(target_modules=["bert.encoder.layer.7"]), ValueError),
    ):
        m = tiny_bert()
        snap = snapshot(m)
        types = [type(x) for x in m.modules()]
        with pytest.raises(err):
            inject(m, make())
        assert same_state(m, snap) and [type(x) for x in m.modules()] == types


def test_moe_with_a_frozen_base_trains_only_the_moe_layers():
    from padnotes.moe import MoEConfig

    m = inject(tiny_bert(), MoEConfig(num_experts=4, top_k=2, freeze_base=True)).train()
    before = snapshot(m)
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.5)
    for b in bert_batches(2):
        opt.zero_grad()
        m(**b).loss.backward()
        opt.step()  # the loss includes the MoE aux loss (aux_loss_in_output)
    changed = {k for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(".intermediate.moe." in k for k in changed), sorted(changed)[
        :5
    ]


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5])
def test_saved_merged_pad_experts_bytes_match_the_formula(ratio):
    "Experts stand where kernels stood: E copies at the dynamic entries, one at the static ones, one bit per entry."
    from padnotes.moe import Experts
    from padnotes.pad import MergedPartialExperts, PartialExperts
    from padnotes.scoring import keep_masks

    set_seed(0)
    E = 4
    p = PartialExperts.from_experts(Experts(E, 64, 256))
    masks = p.masks()
    with torch.no_grad():
        kept = keep_masks({n: torch.rand(m.shape) for n, m in masks.items()}, ratio)
        for n, m in masks.items():
            m.copy_(kept[n].float())
    merged = MergedPartialExperts.from_partial(p)
    formula = sum(
        4 * ((1 - float(m.mean())) + float(m.mean()) * E) * m.numel()
        + math.ceil(m.numel() / 8)
        for m in masks.values()
    )
    assert (
        abs(saved_bytes(merged) / formula - 1) < 0.02
        and abs(tensor_bytes(merged) - formula) <= 4
    )


def test_method_modules_import_neither_pandas_nor_plotly():
    "Methods apart from experiments: importing a method module pulls in no pandas and no plotly."
    import subprocess, sys

    code = (
        "import sys; import padnotes.dyconv, padnotes.moe, padnotes.scoring, padnotes.pad, padnotes.tuners, padnotes.sparse; "
        "bad = [m for m in ('pandas', 'plotly') if m in sys.modules]; assert not bad, bad"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# ---------------------------------------------------------------- a method outside padnotes


from dataclasses import dataclass  # noqa: E402
from typing import ClassVar  # noqa: E402

from padnotes.moe import MoEConfig, moefy  # noqa: E402
from padnotes.tuners import Tuner, register_tuner, tuner_for  # noqa: E402


@dataclass
class ShiftConfig(TunerConfig):
    "A user's method: a learned shift added to each linear layer's output."

    method: ClassVar[str] = "test_shift"
    start: float = 0.0


class ShiftLayer(TunerLayer):
    def __init__(self, base, start):
        super().__init__()
        self.attach_base(base)
        self.shift = nn.Parameter(torch.full((base.out_features,), float(start)))

    def tuned_forward(self, x):
        return self.base_layer(x) + self.shift


@register_tuner(ShiftConfig)
class ShiftTuner(Tuner):
    def candidates(self, model):
        return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]

    def build_layers(self, targets, rebuild=False):
        return {id(m): ShiftLayer(m, self.config.start) for _, m in targets}


def test_a_method_registered_outside_padnotes_gets_the_whole_protocol(tmp_path):
    set_seed(0)
    make = lambda: nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    base, x = make(), torch.randn(3, 4)
    fresh = make()
    fresh.load_state_dict(base.state_dict())
    y0 = base(x).detach()
    m = inject(base, ShiftConfig(start=0.5, target_modules=["2"]))
    assert isinstance(m[2], ShiftLayer) and isinstance(m[0], nn.Linear)
    assert torch.allclose(m(x), y0 + 0.5)
    with disable_tuners(m):
        assert torch.equal(m(x), y0)
    # saved and rebuilt through the registry: config from JSON, layers by the tuner
    back = from_pretrained(fresh, save_pretrained(m, tmp_path))
    assert isinstance(back[2], ShiftLayer) and torch.equal(back(x), m(x))
    assert torch.equal(unload(back)(x), y0)


def test_tuner_registry_refuses_what_it_cannot_serve():
    @dataclass
    class Unserved(TunerConfig):
        method: ClassVar[str] = "test_unserved"

    with pytest.raises(TypeError, match=r"no tuner is registered for Unserved"):
        inject(nn.Linear(2, 2), Unserved())
    with pytest.raises(TypeError, match="TunerConfig subclass"):
        register_tuner(dict)
    with pytest.raises(TypeError, match="decorates a Tuner subclass"):
        register_tuner(Unserved)(object)
    with pytest.raises(TypeError, match="made from a TunerConfig"):
        tuner_for({"method": "pad"})

    # a subclass of a registered config is served by its parent's tuner
    @dataclass
    class Shift2(ShiftConfig):
        method: ClassVar[str] = "test_shift2"

    assert type(tuner_for(Shift2())) is ShiftTuner


def test_convenience_functions_take_a_config_or_its_fields():
    x = torch.randn(2, 3, 16, 16)
    set_seed(0)
    a = dynamicize(UNetLike(), DynamicConvConfig(num_kernels=3, seed=1, noise=0.1))
    set_seed(0)
    b = dynamicize(UNetLike(), num_kernels=3, seed=1, noise=0.1)
    assert torch.equal(a.eval()(x), b.eval()(x))
    with pytest.raises(TypeError, match="not both"):
        dynamicize(UNetLike(), DynamicConvConfig(), num_kernels=3)
    with pytest.raises(TypeError, match="the fields of DynamicConvConfig are"):
        dynamicize(UNetLike(), num_kernel=3)
    with pytest.raises(TypeError, match="needs a DynamicConvConfig"):
        dynamicize(UNetLike(), PadConfig())
    # padify: a config, or the ratio and criterion in place, or keywords
    forms = [
        lambda m: padify(m, PadConfig(dynamic_ratio=0.3, criterion="random", seed=2)),
        lambda m: padify(m, 0.3, "random", seed=2),
        lambda m: padify(m, dynamic_ratio=0.3, criterion="random", seed=2),
    ]
    masks = []
    for form in forms:
        set_seed(0)
        m = form(dynamicize(UNetLike(), seed=0, noise=0.1))
        masks.append([l.weight_mask.clone() for l in tuner_layers(m).values()])
    for other in masks[1:]:
        assert all(torch.equal(p, q) for p, q in zip(masks[0], other))
    with pytest.raises(TypeError, match="not both"):
        padify(dynamicize(UNetLike()), PadConfig(criterion="random"), "imp")
    set_seed(0)
    c = moefy(tiny_bert(), MoEConfig(num_experts=4, top_k=2))
    set_seed(0)
    d = moefy(tiny_bert(), num_experts=4, top_k=2)
    ids = torch.randint(0, 50, (2, 6))
    assert torch.equal(c.eval()(ids).logits, d.eval()(ids).logits)
