"Promises of padnotes.pad: exact ratios, exact ends, merged = unmerged, deploy size, round-trips, untouched on error."

import copy, io, math
import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from padnotes.core import deploy_numel, set_seed
from padnotes.dyconv import DynamicConv2d, dynamicize
from padnotes.moe import moefy
from padnotes.pad import (
    MergedPartialConv2d,
    PartialDynamicConv2d,
    apply_partition,
    dynamic_ratio_of,
    merge_for_inference,
    mode_scores,
    pad_conv_reference,
    padify,
    partial_layers,
    partition_report,
    scale_factors,
    to_partial,
)


class SmallNet(nn.Module):
    "Stem, a grouped conv with bias, a plain conv, classifier: made dynamic with kernels that differ."

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=1)
        self.a = nn.Conv2d(8, 8, 3, padding=1, groups=2, bias=True)
        self.b = nn.Conv2d(8, 6, (1, 3), stride=2, padding=(0, 1), bias=False)
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = torch.relu(self.a(x))
        x = self.b(x)
        return self.fc(x.mean((2, 3)))


def conv_model(seed=0):
    set_seed(seed)
    m = dynamicize(SmallNet(), copy_weights=False, temperature=1.0)
    return m.eval()


def conv_data(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(6, 1, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g))
        for _ in range(n)
    ]


def moe_model(seed=0):
    set_seed(seed)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=32,
        num_labels=2,
    )
    m = moefy(
        BertForSequenceClassification(cfg), num_experts=4, top_k=2, noisy_gating=False
    )
    with torch.no_grad():  # make the experts differ, as training would
        for p in m.parameters():
            if p.dim() == 3:
                p.add_(0.05 * torch.randn_like(p))
    return m.eval()


def moe_data(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        dict(
            input_ids=torch.randint(1, 50, (4, 7), generator=g),
            attention_mask=torch.ones(4, 7, dtype=torch.long),
            labels=torch.randint(0, 2, (4,), generator=g),
        )
        for _ in range(n)
    ]


def out(model, batch):
    with torch.no_grad():
        if isinstance(batch, dict):
            return model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return model(batch[0])


KINDS = [(conv_model, conv_data), (moe_model, moe_data)]


def n_dynamic(model):
    rep = partition_report(model)
    return sum(r["dynamic"] for r in rep), sum(r["entries"] for r in rep)


@pytest.mark.parametrize("make,data", KINDS)
@pytest.mark.parametrize("criterion", ["imp", "random", "magnitude"])
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.37, 0.5, 1.0])
def test_exact_ratio(make, data, criterion, scope, ratio):
    m = padify(make(), ratio, criterion, scope=scope, data=data(), n_batches=2)
    dyn, tot = n_dynamic(m)
    if scope == "global":
        assert dyn == round(ratio * tot)
    else:
        for l in partial_layers(m).values():
            for mask in l.masks().values():
                assert int(mask.sum()) == round(ratio * mask.numel())


@pytest.mark.parametrize("make,data", KINDS)
def test_ratio_one_is_fully_dynamic(make, data):
    ref = make()
    b = data()[0]
    m = padify(copy.deepcopy(ref), 1.0, "imp", data=data(), n_batches=2)
    assert torch.allclose(out(m, b), out(ref, b), atol=1e-6)


def test_ratio_zero_is_static_conv():
    m = padify(conv_model(), 0.0, "random")
    x = torch.randn(4, 8, 8, 8)
    layer = m.a
    lam_s = layer.lambdas()[1]
    want = nn.functional.conv2d(
        x, lam_s * layer.static_weight, lam_s * layer.static_bias, 1, 1, 1, 2
    )
    assert torch.allclose(layer(x), want, atol=1e-6) and layer.last_attention is None


def test_ratio_zero_is_static_moe():
    m = padify(moe_model(), 0.0, "random")
    ex = partial_layers(m)
    for l in ex.values():  # every expert is the same FFN
        for n in ("w1", "b1", "w2", "b2"):
            e = l.effective(n)
            assert torch.allclose(e, e[:1].expand_as(e))


@pytest.mark.parametrize("mode", ["kernel", "output"])
@pytest.mark.parametrize("ratio", [0.2, 0.6])
def test_partial_conv_equals_reference(mode, ratio):
    set_seed(1)
    dy = DynamicConv2d(
        6,
        4,
        (3, 2),
        stride=(2, 1),
        padding=(1, 0),
        dilation=(1, 2),
        groups=2,
        temperature=2.0,
        mode=mode,
    )
    p = PartialDynamicConv2d.from_dynamic(dy)
    with torch.no_grad():
        p.weight_mask.copy_((torch.rand_like(p.weight_mask) < ratio).float())
        p.bias_mask.copy_((torch.rand(4) < ratio).float())
        p.phi.fill_(-0.4)
    x = torch.randn(3, 6, 7, 9, requires_grad=True)
    y, r = p(x), pad_conv_reference(p, x)
    assert torch.allclose(y, r, atol=1e-5)
    gy = torch.autograd.grad(y.square().sum(), [x, p.weight, p.static_weight, p.phi])
    gr = torch.autograd.grad(r.square().sum(), [x, p.weight, p.static_weight, p.phi])
    assert all(torch.allclose(a, b, atol=1e-4) for a, b in zip(gy, gr))


@pytest.mark.parametrize("make,data", KINDS)
@pytest.mark.parametrize("ratio", [0.0, 0.3, 0.5, 1.0])
def test_merged_equals_unmerged_and_deploy_size(make, data, ratio):
    m = padify(make(), ratio, "imp", data=data(), n_batches=2)
    with torch.no_grad():
        for l in partial_layers(m).values():
            l.phi.fill_(0.3)  # scale factors away from 1
    merged = merge_for_inference(m)
    b = data()[1]
    assert torch.allclose(out(merged, b), out(m, b), atol=1e-5)
    assert not partial_layers(merged) and partial_layers(m)  # the original is untouched
    for (n, l), r in zip(partial_layers(m).items(), partition_report(m)):
        ml = merged.get_submodule(n)
        K = r["copies"]
        numel = sum(mk.numel() for mk in l.masks().values())
        dyn = r["dynamic"]
        extra = (
            sum(p.numel() for p in ml.attention.parameters())
            if isinstance(ml, MergedPartialConv2d) and ml.attention is not None
            else 0
        )
        assert ml.deploy_numel() == (numel - dyn) + K * dyn + extra
        assert math.isclose(r["kernel_units"], (1 - r["ratio"]) + r["ratio"] * K)
    assert deploy_numel(merged) <= deploy_numel(m)


@pytest.mark.parametrize("make,data", KINDS)
def test_save_load_round_trips(make, data):
    m = padify(make(), 0.3, "imp", data=data(), n_batches=2)
    buf = io.BytesIO()
    torch.save(m.state_dict(), buf)
    buf.seek(0)
    fresh = padify(
        make(seed=5), 0.8, "random"
    )  # same structure, different values and partition
    fresh.load_state_dict(torch.load(buf))
    b = data()[1]
    assert torch.equal(out(fresh, b), out(m, b))
    merged = merge_for_inference(m)
    buf = io.BytesIO()
    torch.save(merged.state_dict(), buf)
    buf.seek(0)
    fresh_merged = merge_for_inference(padify(make(seed=5), 0.8, "random"))
    fresh_merged.load_state_dict(torch.load(buf))
    assert torch.equal(out(fresh_merged, b), out(merged, b))


@pytest.mark.parametrize("make,data", KINDS)
@pytest.mark.parametrize("criterion", ["imp", "random"])
def test_same_seed_same_partition(make, data, criterion):
    a = padify(make(), 0.3, criterion, data=data(), n_batches=2, seed=3)
    b = padify(make(), 0.3, criterion, data=data(), n_batches=2, seed=3)
    for (n, la), lb in zip(partial_layers(a).items(), partial_layers(b).values()):
        for k in la.masks():
            assert torch.equal(la.masks()[k], lb.masks()[k])


def test_imp_differs_from_random_and_iterations_exact():
    m1 = padify(conv_model(), 0.2, "imp", data=conv_data(), n_batches=2)
    m2 = padify(conv_model(), 0.2, "random")
    assert not all(
        torch.equal(a.weight_mask, b.weight_mask)
        for a, b in zip(partial_layers(m1).values(), partial_layers(m2).values())
    )
    m3 = padify(conv_model(), 0.2, "imp", iterations=3, data=conv_data(), n_batches=2)
    assert n_dynamic(m3)[0] == round(0.2 * n_dynamic(m3)[1])


def test_scale_factors_sum_to_two_and_switch_off():
    phi = torch.linspace(-5, 5, 11)
    ld, ls = scale_factors(phi)
    assert (
        torch.allclose(ld + ls, torch.full_like(phi, 2.0))
        and ((ld > 0) & (ld < 2)).all()
    )
    m = padify(conv_model(), 0.5, "random", use_scale=False)
    for l in partial_layers(m).values():
        assert not l.phi.requires_grad and l.lambdas() == (1.0, 1.0)
    m2 = padify(conv_model(), 0.5, "random")
    for l in partial_layers(m2).values():
        with torch.no_grad():
            l.phi.fill_(1.3)
        ld, ls = l.lambdas()
        assert math.isclose(float((ld + ls).detach()), 2.0, rel_tol=1e-6)


def test_repartition_from_cached_scores():
    m = to_partial(conv_model())
    s = mode_scores(m, "imp", conv_data(), n_batches=2)
    for r in (0.1, 0.5, 0.9):
        apply_partition(m, s, r)
        assert math.isclose(
            dynamic_ratio_of(m), round(r * n_dynamic(m)[1]) / n_dynamic(m)[1]
        )


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.3", True])
def test_bad_ratio_leaves_model_untouched(bad):
    m = conv_model()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    types = [type(x) for x in m.modules()]
    with pytest.raises(
        (ValueError, TypeError), match="dynamic_ratio"
    ):  # wrong types are TypeErrors now
        padify(m, bad, "random")
    assert [type(x) for x in m.modules()] == types
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


def test_bad_inputs_leave_models_untouched():
    m = conv_model()
    types = [type(x) for x in m.modules()]
    with pytest.raises(ValueError, match="no DynamicConv2d and no MoE"):
        padify(nn.Sequential(nn.Conv2d(1, 2, 3)), 0.5, "random")
    with pytest.raises(ValueError, match="data"):
        padify(m, 0.5, "imp")
    with pytest.raises(ValueError, match="criterion"):
        padify(m, 0.5, "grasp2")
    with pytest.raises(ValueError, match="scope"):
        padify(m, 0.5, "random", scope="row")
    with pytest.raises(
        ValueError, match="could not run the model on batch 0"
    ):  # data that cannot be scored: wrong shape
        padify(m, 0.5, "imp", data=[(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))])
    with pytest.raises(ValueError, match="no batch"):
        padify(m, 0.5, "imp", data=[])
    assert [type(x) for x in m.modules()] == types
    with pytest.raises(ValueError, match="merge"):
        merge_for_inference(m)


def test_imp_is_a_registered_criterion_of_padnotes_scoring():
    "One vocabulary of criteria: PAD's IMP registers into scoring, and mode_scores goes through the registry."
    from padnotes.scoring import CRITERIA, score

    assert "imp" in CRITERIA
    m = to_partial(conv_model())
    data = conv_data()
    targets = {
        f"{ln}.{pn}": t
        for ln, l in partial_layers(m).items()
        for pn, t in l.masks().items()
    }
    via_registry = score("imp", targets, model=m, data=data, n_batches=2)
    direct = mode_scores(m, "imp", data, n_batches=2)
    assert set(direct) == set(via_registry) and all(
        torch.equal(direct[k], via_registry[k]) for k in direct
    )


def test_average_static_is_the_data_averaged_kernel():
    from padnotes.pad import average_static

    m = to_partial(conv_model())
    data = conv_data()
    before = {k: v.clone() for k, v in m.state_dict().items() if "static" not in k}
    shares = average_static(m, data, n_batches=3)
    a = partial_layers(m)["a"]
    with torch.no_grad():
        pi = torch.cat([a.attention(torch.relu(m.stem(x))) for x, _ in data]).mean(
            0
        )  # by hand: a's input
    torch.testing.assert_close(shares["a"], pi)
    torch.testing.assert_close(
        a.static_weight, torch.einsum("k,k...->...", pi, a.weight)
    )
    torch.testing.assert_close(a.static_bias, pi @ a.bias)
    assert all(
        torch.equal(v, m.state_dict()[k]) for k, v in before.items()
    )  # only the static parts changed
    mm = to_partial(moe_model())
    s = average_static(mm, moe_data(), n_batches=2)
    for n, l in partial_layers(mm).items():
        torch.testing.assert_close(s[n].sum(), torch.tensor(1.0))
        torch.testing.assert_close(l.static_w1, torch.tensordot(s[n], l.dyn_w1, dims=1))
    with pytest.raises(ValueError, match="no partially dynamic layer"):
        average_static(conv_model(), data)


def test_padify_after_to_partial_records_the_layers_and_reloads(tmp_path):
    "The labs' recipe (to_partial, average_static, then padify): the partition is recorded, so it saves and reloads exactly."
    from padnotes.tuners import from_pretrained, save_pretrained, tuner_records

    m = padify(to_partial(conv_model()), 0.3, "random", seed=1).eval()
    pads = [r for r in tuner_records(m) if r["config"].method == "pad"]
    assert pads and sorted(pads[-1]["layers"]) == sorted(partial_layers(m))
    x = conv_data()[0][0]
    plain = lambda: (set_seed(0), SmallNet())[1]  # the model conv_model converts
    back = from_pretrained(plain(), save_pretrained(m, tmp_path)).eval()
    assert torch.equal(back(x), m(x))
    # a second partition of the same layers is recorded again and still reloads
    padify(m, 0.5, "random", seed=2)
    back = from_pretrained(plain(), save_pretrained(m, tmp_path / "2")).eval()
    assert torch.equal(back(x), m.eval()(x))
