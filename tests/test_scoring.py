"Promises of padnotes.scoring: exact kept counts for every criterion and scope, determinism, clear errors."
import math
import pytest
import torch
from torch import nn
from hypothesis import given, settings, strategies as st

from padnotes.scoring import (CRITERIA, grad_scores, iterative_masks, jaccard, keep_masks, magnitude_scores, ratio_schedule,
                              score, topk_mask)


def tiny_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def batches(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g)) for _ in range(n)]


def targets_of(net):
    return {"conv": net[0].weight, "fc": net[4].weight}


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4), ratio=st.floats(0, 1), scope=st.sampled_from(["global", "layer"]),
       ties=st.booleans(), seed=st.integers(0, 1000))
def test_keep_masks_exact_counts(sizes, ratio, scope, ties, seed):
    g = torch.Generator().manual_seed(seed)
    scores = {f"t{i}": (torch.randint(0, 3, (n,), generator=g).float() if ties else torch.randn(n, generator=g)) for i, n in enumerate(sizes)}
    masks = keep_masks(scores, ratio, scope)
    if scope == "global":
        assert sum(int(m.sum()) for m in masks.values()) == round(ratio * sum(sizes))
    else:
        assert [int(m.sum()) for m in masks.values()] == [round(ratio * n) for n in sizes]
    again = keep_masks(scores, ratio, scope)
    assert all(torch.equal(masks[k], again[k]) for k in masks)
    # every kept entry scores at least as high as every dropped entry of the same ranking pool
    pools = [list(scores)] if scope == "global" else [[k] for k in scores]
    for pool in pools:
        kept = torch.cat([scores[k][masks[k]] for k in pool]); dropped = torch.cat([scores[k][~masks[k]] for k in pool])
        if len(kept) and len(dropped): assert kept.min() >= dropped.max()


@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.37, 1.0])
def test_every_criterion_gives_exact_ratio(criterion, scope, ratio):
    net = tiny_net(); t = targets_of(net)
    s = score(criterion, t, net, batches(), n_batches=2)
    assert {k: v.shape for k, v in s.items()} == {k: v.shape for k, v in t.items()}
    masks = keep_masks(s, ratio, scope)
    n = sum(v.numel() for v in t.values())
    if scope == "global": assert sum(int(m.sum()) for m in masks.values()) == round(ratio * n)
    else: assert [int(m.sum()) for m in masks.values()] == [round(ratio * v.numel()) for v in t.values()]


@pytest.mark.parametrize("criterion", CRITERIA)
def test_same_seed_same_scores_and_model_untouched(criterion):
    net = tiny_net(); before = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [p.requires_grad for p in net.parameters()]
    a = score(criterion, targets_of(net), net, batches(), n_batches=2, seed=5)
    b = score(criterion, targets_of(net), net, batches(), n_batches=2, seed=5)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # BN statistics too
    assert [p.requires_grad for p in net.parameters()] == flags and net.training


def test_snip_equals_manual_gradient():
    net = tiny_net(); data = batches(2); t = targets_of(net)
    s = grad_scores(net, t, data, n_batches=2)
    net.eval(); net.zero_grad()
    sum(nn.functional.cross_entropy(net(x), y) for x, y in data).backward()
    assert torch.allclose(s["fc"], (net[4].weight.grad * net[4].weight).abs(), atol=1e-6)
    taylor = grad_scores(net, t, data, n_batches=2, times_value=False)
    assert torch.allclose(taylor["conv"], net[0].weight.grad.abs(), atol=1e-6)


def test_grasp_matches_finite_difference_hessian_product():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2).double(); data = [(torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1]))]
    w = lin.weight
    def grad_at(wv):
        with torch.no_grad(): w.copy_(wv)
        return torch.autograd.grad(nn.functional.cross_entropy(lin(data[0][0]), data[0][1]), w)[0]
    w0 = w.detach().clone(); g = grad_at(w0); eps = 1e-6
    hg = (grad_at(w0 + eps * g) - grad_at(w0 - eps * g)) / (2 * eps)
    with torch.no_grad(): w.copy_(w0)
    s = score("grasp", {"w": w}, lin, data, n_batches=1)
    assert torch.allclose(s["w"], w0 * hg, atol=1e-6)


def test_magnitude_and_ties():
    t = {"w": torch.tensor([[0.1, -3.0], [2.0, 0.0]])}
    assert torch.equal(keep_masks(magnitude_scores(t), 0.5)["w"], torch.tensor([[False, True], [True, False]]))
    assert torch.equal(topk_mask(torch.zeros(5), 2), torch.tensor([True, True, False, False, False]))


@pytest.mark.parametrize("bad", [-0.1, 1.01, float("nan"), "0.5", None, True])
def test_bad_ratios(bad):
    with pytest.raises(ValueError, match="keep_ratio"):
        keep_masks({"w": torch.ones(3)}, bad)
    with pytest.raises(ValueError, match="keep_ratio"):
        ratio_schedule(bad, 2)


def test_bad_inputs():
    net = tiny_net()
    with pytest.raises(ValueError, match="unknown criterion"):
        score("obd", targets_of(net))
    with pytest.raises(ValueError, match="needs a model and data"):
        score("snip", targets_of(net))
    with pytest.raises(ValueError, match="no batch"):
        score("snip", targets_of(net), net, [])
    with pytest.raises(ValueError, match="scope"):
        keep_masks({"w": torch.ones(3)}, 0.5, scope="row")
    with pytest.raises(ValueError, match="no scores"):
        keep_masks({}, 0.5)
    with pytest.raises(TypeError, match="expected a tensor"):
        score("magnitude", {"w": [1, 2]})
    with pytest.raises(ValueError, match="NaN"):
        keep_masks({"w": torch.tensor([1.0, float("nan")])}, 0.5)
    with pytest.raises(ValueError, match="not parameters"):
        score("synflow", {"x": torch.ones(2, requires_grad=True)}, net, batches())
    with pytest.raises(ValueError, match="iterations"):
        ratio_schedule(0.5, 0)


@pytest.mark.parametrize("kind", ["exp", "linear"])
@pytest.mark.parametrize("T", [1, 2, 5])
def test_schedule_monotone_and_exact_end(kind, T):
    r = ratio_schedule(0.2, T, kind)
    assert len(r) == T and math.isclose(r[-1], 0.2) and all(a >= b for a, b in zip(r, r[1:])) and r[0] <= 1
    if kind == "exp" and T > 1: assert math.isclose(r[1] / r[0], r[0])  # the same fraction removed each step


def test_iterative_masks_nested_and_exact():
    g = torch.Generator().manual_seed(0)
    shapes = {"a": torch.Size([50]), "b": torch.Size([30])}
    seen = []
    def score_fn(masks):
        seen.append({k: v.clone() for k, v in masks.items()})
        return {k: torch.rand(s, generator=g) for k, s in shapes.items()}  # fresh random scores each round
    final = iterative_masks(score_fn, shapes, 0.25, iterations=4)
    assert sum(int(m.sum()) for m in final.values()) == 20
    for prev, nxt in zip(seen, seen[1:] + [final]):  # removed entries stay removed
        assert all(not (nxt[k] & ~prev[k]).any() for k in shapes)
    assert jaccard(final["a"], final["a"]) == 1.0
