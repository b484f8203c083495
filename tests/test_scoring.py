"Promises of padnotes.scoring: exact kept counts by selection, seeded tie-breaking, a registry of criteria, scoring without side effects, clear errors."

import copy
import math
import subprocess
import sys

import pytest
import torch
from torch import nn
from hypothesis import assume, given, settings, strategies as st

from padnotes.scoring import (
    CRITERIA,
    ScoreContext,
    _kth_largest,
    grad_scores,
    grasp_scores,
    iterative_masks,
    jaccard,
    keep_masks,
    magnitude_scores,
    ratio_schedule,
    register_criterion,
    score,
    scoring_mode,
    synflow_scores,
    topk_mask,
)

BUILTIN = (
    "random",
    "magnitude",
    "snip",
    "taylor",
    "grasp",
    "synflow",
)  # not list(CRITERIA): other modules (PAD's IMP) register too


def tiny_net(seed=0, dropout=0.0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    )


def batches(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(8, 1, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g))
        for _ in range(n)
    ]


def targets_of(net):
    return {"conv": net[0].weight, "fc": net[5].weight}


def sort_reference(scores, keep_ratio, scope="global"):
    "The plain rule: a full descending sort, the first round(keep_ratio * N) kept (equal to ours whenever nothing ties)."
    pools = [list(scores)] if scope == "global" else [[n] for n in scores]
    out = {}
    for pool in pools:
        flat = torch.cat([scores[n].flatten() for n in pool])
        m = torch.zeros(flat.numel(), dtype=torch.bool)
        m[
            torch.sort(flat, descending=True).indices[
                : round(keep_ratio * flat.numel())
            ]
        ] = True
        out.update(
            {
                n: part.view(scores[n].shape)
                for n, part in zip(pool, m.split([scores[n].numel() for n in pool]))
            }
        )
    return out


@pytest.fixture
def registry():
    "Names registered by a test are removed after it."
    before = set(CRITERIA)
    yield CRITERIA
    for n in set(CRITERIA) - before:
        del CRITERIA[n]


# ---------------------------------------------------------------- thresholds

shapes_st = st.lists(
    st.lists(st.integers(1, 7), min_size=1, max_size=3).map(tuple),
    min_size=1,
    max_size=4,
)


@settings(max_examples=80, deadline=None)
@given(
    shapes=shapes_st,
    ratio=st.floats(0, 1),
    scope=st.sampled_from(["global", "layer"]),
    ties=st.sampled_from(["none", "some", "all"]),
    seed=st.integers(0, 1000),
    tie_seed=st.integers(0, 3),
)
def test_keep_masks_exact_counts(shapes, ratio, scope, ties, seed, tie_seed):
    g = torch.Generator().manual_seed(seed)

    def make(s):
        if ties == "all":
            return torch.zeros(s)
        return (
            torch.randint(0, 3, s, generator=g).float()
            if ties == "some"
            else torch.randn(s, generator=g)
        )

    scores = {f"t{i}": make(s) for i, s in enumerate(shapes)}
    counts = (
        [round(ratio * sum(s.numel() for s in scores.values()))]
        if scope == "global"
        else [round(ratio * s.numel()) for s in scores.values()]
    )
    if ratio > 0 and not any(
        counts
    ):  # a ratio above 0 that keeps nothing is refused, with the count
        with pytest.raises(ValueError, match="0 entries"):
            keep_masks(scores, ratio, scope, seed=tie_seed)
        return
    masks = keep_masks(scores, ratio, scope, seed=tie_seed)
    assert {k: m.shape for k, m in masks.items()} == {
        k: s.shape for k, s in scores.items()
    }
    if scope == "global":
        assert sum(int(m.sum()) for m in masks.values()) == round(
            ratio * sum(s.numel() for s in scores.values())
        )
    else:
        assert [int(m.sum()) for m in masks.values()] == [
            round(ratio * s.numel()) for s in scores.values()
        ]
    again = keep_masks(scores, ratio, scope, seed=tie_seed)
    assert all(torch.equal(masks[k], again[k]) for k in masks)
    # every kept entry scores at least as high as every dropped entry of the same ranking pool
    pools = [list(scores)] if scope == "global" else [[k] for k in scores]
    for pool in pools:
        kept = torch.cat([scores[k][masks[k]] for k in pool])
        dropped = torch.cat([scores[k][~masks[k]] for k in pool])
        if len(kept) and len(dropped):
            assert kept.min() >= dropped.max()


@settings(max_examples=60, deadline=None)
@given(
    shapes=shapes_st,
    ratio=st.floats(0, 1),
    scope=st.sampled_from(["global", "layer"]),
    seed=st.integers(0, 1000),
)
def test_equals_full_sort_when_nothing_ties(shapes, ratio, scope, seed):
    g = torch.Generator().manual_seed(seed)
    sizes = [math.prod(s) for s in shapes]
    values = (
        torch.randperm(sum(sizes), generator=g).double() * 0.37 - 5
    )  # distinct values
    scores = {
        f"t{i}": v.view(s) for i, (v, s) in enumerate(zip(values.split(sizes), shapes))
    }
    counts = (
        [round(ratio * sum(sizes))]
        if scope == "global"
        else [round(ratio * n) for n in sizes]
    )
    assume(
        ratio == 0 or any(counts)
    )  # a ratio above 0 that keeps nothing is refused (test_keep_masks_exact_counts)
    ours, ref = (
        keep_masks(scores, ratio, scope, seed=seed),
        sort_reference(scores, ratio, scope),
    )
    assert all(torch.equal(ours[k], ref[k]) for k in scores)


def test_zero_scores_do_not_keep_the_leading_rows():
    z = {"B": torch.zeros(100, 10)}
    m = keep_masks(z, 0.5)["B"]
    assert int(m.sum()) == 500
    assert (
        not m[:50].all() and 0.35 < m[:50].float().mean() < 0.65
    )  # spread, not the first 50 rows
    assert 0.3 < m[:, :5].float().mean() < 0.7  # nor the first 5 columns
    assert torch.equal(keep_masks(z, 0.5, seed=0)["B"], m)  # same seed, same mask
    other = keep_masks(z, 0.5, seed=1)["B"]
    assert not torch.equal(other, m) and int(other.sum()) == 500
    layer = keep_masks(
        {"B": torch.zeros(100, 10), "A": torch.zeros(4, 10)}, 0.5, scope="layer"
    )
    assert not layer["B"][:50].all() and int(layer["A"].sum()) == 20
    t = topk_mask(torch.zeros(100, 10), 500)
    assert not t[:50].all() and torch.equal(
        t, topk_mask(torch.zeros(100, 10), 500, seed=0)
    )


def test_only_ties_at_the_threshold_are_drawn():
    s = torch.tensor([5.0, 1.0, 1.0, 1.0, 1.0, 0.0, 9.0])
    for seed in range(10):
        m = topk_mask(s, 4, seed=seed)
        assert m[[0, 6]].all() and not m[5] and int(m[1:5].sum()) == 2
    assert len({tuple(topk_mask(s, 4, seed=seed).tolist()) for seed in range(10)}) > 1


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 60),
    n_removed=st.integers(0, 60),
    ratio=st.floats(0, 1),
    seed=st.integers(0, 100),
)
def test_minus_inf_never_kept_while_finite_remain(n, n_removed, ratio, seed):
    g = torch.Generator().manual_seed(seed)
    s = torch.randint(-2, 2, (n,), generator=g).float()
    removed = torch.randperm(n, generator=g)[: min(n_removed, n)]
    s[removed] = float("-inf")
    assume(ratio == 0 or round(ratio * n) > 0)
    m = keep_masks({"s": s}, ratio, seed=seed)["s"]
    finite, k = torch.isfinite(s), round(ratio * n)
    assert int(m.sum()) == k
    assert int((m & ~finite).sum()) == max(
        0, k - int(finite.sum())
    )  # -inf only once every finite entry is kept


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kth_largest_methods_agree(dtype):
    g = torch.Generator().manual_seed(0)
    for flat in (
        torch.randn(1001, generator=g),
        torch.randint(0, 4, (500,), generator=g).float(),
        torch.cat([torch.full((7,), float("-inf")), torch.randn(20, generator=g)]),
    ):
        flat = flat.to(dtype)
        ref = torch.sort(flat, descending=True).values
        for k in (
            1,
            2,
            flat.numel() // 3,
            flat.numel() // 2,
            flat.numel() - 1,
            flat.numel(),
        ):
            for method in ("kthvalue", "topk"):
                assert _kth_largest(flat, k, method).item() == ref[k - 1].item()


def test_float64_scores_are_not_rounded_to_float32():
    s = {"a": torch.tensor([1.0, 1.0 + 1e-12], dtype=torch.float64)}  # equal in float32
    for seed in range(5):
        assert keep_masks(s, 0.5, seed=seed)["a"].tolist() == [False, True]


def test_global_scope_needs_one_device():
    with pytest.raises(ValueError, match="one device"):
        keep_masks({"a": torch.ones(3), "b": torch.ones(3, device="meta")}, 0.5)


def test_magnitude_masks():
    t = {"w": torch.tensor([[0.1, -3.0], [2.0, 0.0]])}
    assert torch.equal(
        keep_masks(magnitude_scores(t), 0.5)["w"],
        torch.tensor([[False, True], [True, False]]),
    )


@pytest.mark.parametrize("bad", [-0.1, 1.01, float("nan"), float("inf")])
def test_bad_ratio_values(bad):
    with pytest.raises(ValueError, match="keep_ratio"):
        keep_masks({"w": torch.ones(3)}, bad)
    with pytest.raises(ValueError, match="keep_ratio"):
        ratio_schedule(bad, 2)


@pytest.mark.parametrize("bad", ["0.5", None, True, [0.5]])
def test_bad_ratio_types(bad):
    with pytest.raises(TypeError, match="keep_ratio"):
        keep_masks({"w": torch.ones(3)}, bad)
    with pytest.raises(TypeError, match="keep_ratio"):
        ratio_schedule(bad, 2)


def test_bad_threshold_inputs():
    with pytest.raises(ValueError, match="scope"):
        keep_masks({"w": torch.ones(3)}, 0.5, scope="row")
    with pytest.raises(ValueError, match="no scores"):
        keep_masks({}, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        keep_masks({"w": torch.tensor([1.0, float("nan")])}, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        keep_masks({"w": torch.tensor([1.0, float("nan")])}, 0.5, scope="layer")
    with pytest.raises(ValueError, match="NaN"):
        topk_mask(torch.tensor([float("nan")]), 1)
    with pytest.raises(TypeError, match="expected a tensor"):
        keep_masks({"w": [1.0, 2.0]}, 0.5)
    with pytest.raises(ValueError, match="at most"):
        topk_mask(torch.ones(3), 4)
    with pytest.raises(ValueError, match="k must be"):
        topk_mask(torch.ones(3), -1)
    with pytest.raises(TypeError, match="seed"):
        keep_masks({"w": torch.ones(3)}, 0.5, seed=0.5)


# ---------------------------------------------------------------- criteria and the registry


@pytest.mark.parametrize("criterion", BUILTIN)
@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("ratio", [0.0, 0.1, 0.37, 1.0])
def test_every_criterion_gives_exact_ratio(criterion, scope, ratio):
    net = tiny_net()
    t = targets_of(net)
    s = score(criterion, t, net, batches(), n_batches=2)
    assert {k: v.shape for k, v in s.items()} == {k: v.shape for k, v in t.items()}
    masks = keep_masks(s, ratio, scope)
    n = sum(v.numel() for v in t.values())
    if scope == "global":
        assert sum(int(m.sum()) for m in masks.values()) == round(ratio * n)
    else:
        assert [int(m.sum()) for m in masks.values()] == [
            round(ratio * v.numel()) for v in t.values()
        ]


def test_builtins_are_registered():
    assert all(c in CRITERIA for c in BUILTIN) and list(CRITERIA)[:6] == list(BUILTIN)
    assert (
        not CRITERIA["magnitude"].needs_model
        and not CRITERIA["random"].needs_data
        and CRITERIA["snip"].needs_data
    )


def test_register_and_use_a_criterion(registry):
    seen = {}

    @register_criterion("neg_magnitude", needs_model=False, needs_data=False)
    def neg(targets, ctx):
        seen.update(seed=ctx.seed, train=ctx.train, n_batches=ctx.n_batches)
        return {n: -t.detach().abs() for n, t in targets.items()}

    assert (
        neg.__name__ == "neg" and "neg_magnitude" in CRITERIA
    )  # the decorator returns the function
    t = {"w": torch.tensor([[0.1, -3.0], [2.0, 0.0]])}
    s = score("neg_magnitude", t, seed=3, train=False, n_batches=4)
    assert seen == dict(seed=3, train=False, n_batches=4)
    assert torch.equal(
        keep_masks(s, 0.5)["w"], torch.tensor([[True, False], [False, True]])
    )

    with pytest.raises(ValueError, match="already registered"):
        register_criterion("neg_magnitude", neg)
    register_criterion(
        "neg_magnitude",
        lambda targets, ctx: magnitude_scores(targets),
        overwrite=True,
        needs_model=False,
        needs_data=False,
    )
    assert torch.equal(score("neg_magnitude", t)["w"], t["w"].abs())


def test_registered_criterion_gets_model_and_data(registry):
    def grad_norm(targets, ctx):
        assert isinstance(ctx, ScoreContext) and ctx.example_input is None
        return grad_scores(
            ctx.model,
            targets,
            ctx.data,
            ctx.n_batches,
            ctx.loss_fn,
            times_value=False,
            train=ctx.train,
            seed=ctx.seed,
        )

    register_criterion("grad_norm", grad_norm)
    net = tiny_net()
    data = batches()
    assert all(
        torch.equal(a, b)
        for a, b in zip(
            score("grad_norm", targets_of(net), net, data, n_batches=2).values(),
            score("taylor", targets_of(net), net, data, n_batches=2).values(),
        )
    )
    with pytest.raises(ValueError, match="needs a model and data"):
        score("grad_norm", targets_of(net))
    with pytest.raises(ValueError, match="got no data"):
        score("grad_norm", targets_of(net), net)


def test_registry_checks(registry):
    with pytest.raises(ValueError, match="already registered"):
        register_criterion("snip", lambda targets, ctx: {})
    with pytest.raises(TypeError, match="name"):
        register_criterion("", lambda targets, ctx: {})
    with pytest.raises(TypeError, match="name"):
        register_criterion(3, lambda targets, ctx: {})
    with pytest.raises(TypeError, match="function"):
        register_criterion("bad", 3)
    register_criterion(
        "wrong_keys",
        lambda targets, ctx: {"nope": torch.zeros(1)},
        needs_model=False,
        needs_data=False,
    )
    register_criterion(
        "wrong_shape",
        lambda targets, ctx: {n: torch.zeros(1) for n in targets},
        needs_model=False,
        needs_data=False,
    )
    register_criterion(
        "model_only", lambda targets, ctx: magnitude_scores(targets), needs_data=False
    )
    t = {"w": torch.ones(2, 2)}
    with pytest.raises(ValueError, match="returned scores for"):
        score("wrong_keys", t)
    with pytest.raises(ValueError, match="shape"):
        score("wrong_shape", t)
    with pytest.raises(ValueError, match="needs a model to score with"):
        score("model_only", t)


def test_bad_inputs():
    net = tiny_net()
    with pytest.raises(
        ValueError, match="unknown criterion 'obd': registered are .*'snip'"
    ):
        score("obd", targets_of(net))
    with pytest.raises(ValueError, match="needs a model and data"):
        score("snip", targets_of(net))
    with pytest.raises(ValueError, match="no batch"):
        score("snip", targets_of(net), net, [])
    with pytest.raises(ValueError, match="n_batches"):
        score("snip", targets_of(net), net, batches(), n_batches=0)
    with pytest.raises(TypeError, match="train"):
        score("snip", targets_of(net), net, batches(), train="yes")
    with pytest.raises(TypeError, match="expected a tensor"):
        score("magnitude", {"w": [1, 2]})
    with pytest.raises(ValueError, match="not parameters"):
        score("synflow", {"x": torch.ones(2, requires_grad=True)}, net, batches())
    with pytest.raises(ValueError, match="example_input"):
        score("synflow", targets_of(net), net)
    with pytest.raises(ValueError, match="iterations"):
        ratio_schedule(0.5, 0)
    with pytest.raises(ValueError, match="kind"):
        ratio_schedule(0.5, 2, "cosine")


def test_snip_equals_manual_gradient_in_both_modes():
    net = tiny_net()
    data = batches(2)
    t = targets_of(net)
    for train in (False, True):
        s = grad_scores(net, t, data, n_batches=2, train=train)
        taylor = grad_scores(net, t, data, n_batches=2, times_value=False, train=train)
        ref = copy.deepcopy(net).train(train)
        loss = sum(nn.functional.cross_entropy(ref(x), y) for x, y in data)
        gc, gf = torch.autograd.grad(loss, [ref[0].weight, ref[5].weight])
        assert torch.allclose(s["fc"], (gf * ref[5].weight).abs(), atol=1e-6)
        assert torch.allclose(taylor["conv"], gc.abs(), atol=1e-6)


def test_train_mode_is_the_default_and_reproduces_dropout():
    net = tiny_net(dropout=0.5)
    data = batches(2)
    t = targets_of(net)
    s = grad_scores(net, t, data, n_batches=2, seed=7)
    ref = copy.deepcopy(net).train()
    with torch.random.fork_rng():
        torch.manual_seed(7)  # the same draws as scoring_mode(seed=7)
        loss = [nn.functional.cross_entropy(ref(x), y) for x, y in data]
        gf = sum(torch.autograd.grad(l, ref[5].weight)[0] for l in loss)
    assert torch.allclose(s["fc"], (gf * ref[5].weight).abs(), atol=1e-6)
    assert torch.equal(score("snip", t, net, data, n_batches=2, seed=7)["fc"], s["fc"])
    assert not torch.equal(
        grad_scores(net, t, data, n_batches=2, seed=8)["fc"], s["fc"]
    )  # other dropout masks
    ev = grad_scores(net, t, data, n_batches=2, train=False)
    assert torch.equal(
        ev["fc"], grad_scores(net, t, data, n_batches=2, train=False, seed=8)["fc"]
    )  # eval: no randomness
    assert not torch.allclose(ev["fc"], s["fc"])


@pytest.mark.parametrize("criterion", BUILTIN)
@pytest.mark.parametrize("train", [True, False])
def test_scoring_leaves_the_model_bit_identical(criterion, train):
    net = tiny_net(dropout=0.3)
    net.eval()
    net[1].train()  # a mixed state, restored module by module
    modes = [m.training for m in net.modules()]
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flags = [p.requires_grad for p in net.parameters()]
    rng = torch.get_rng_state()
    a = score(
        criterion, targets_of(net), net, batches(), n_batches=2, seed=5, train=train
    )
    b = score(
        criterion, targets_of(net), net, batches(), n_batches=2, seed=5, train=train
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    after = net.state_dict()
    assert before.keys() == after.keys() and all(
        torch.equal(before[k], after[k]) for k in before
    )  # BN statistics too
    assert [m.training for m in net.modules()] == modes and [
        p.requires_grad for p in net.parameters()
    ] == flags
    assert torch.equal(
        torch.get_rng_state(), rng
    )  # the caller's random stream is not disturbed


def test_scoring_mode_restores_on_error():
    net = tiny_net().eval()
    before = copy.deepcopy(net.state_dict())
    with pytest.raises(RuntimeError, match="boom"):
        with scoring_mode(net, train=True):
            net(torch.randn(4, 1, 6, 6))
            raise RuntimeError("boom")
    assert not net.training and all(
        torch.equal(before[k], v) for k, v in net.state_dict().items()
    )


def test_grasp_matches_finite_difference_hessian_product():
    torch.manual_seed(0)
    lin = nn.Linear(3, 2).double()
    data = [(torch.randn(5, 3, dtype=torch.float64), torch.tensor([0, 1, 1, 0, 1]))]
    w = lin.weight

    def grad_at(wv):
        with torch.no_grad():
            w.copy_(wv)
        return torch.autograd.grad(
            nn.functional.cross_entropy(lin(data[0][0]), data[0][1]), w
        )[0]

    w0 = w.detach().clone()
    g = grad_at(w0)
    eps = 1e-6
    hg = (grad_at(w0 + eps * g) - grad_at(w0 - eps * g)) / (2 * eps)
    with torch.no_grad():
        w.copy_(w0)
    s = score("grasp", {"w": w}, lin, data, n_batches=1)
    assert torch.allclose(s["w"], w0 * hg, atol=1e-6)


def test_grasp_passes_see_the_same_dropout():
    "With dropout, GraSP in train mode equals GraSP of the one function that the seeded masks define."
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(5, 8), nn.Tanh(), nn.Dropout(0.5), nn.Linear(8, 3)
    ).double()
    data = [(torch.randn(6, 5, dtype=torch.float64), torch.randint(0, 3, (6,)))]
    s = grasp_scores(net, {"w": net[3].weight}, data, n_batches=1, seed=2)
    with torch.random.fork_rng():
        torch.manual_seed(2)
        net.train()
        drop = (
            net[2](torch.ones(6, 8, dtype=torch.float64)) != 0
        ).double() * 2  # the mask the seeded forward draws
    net.eval()
    fixed = lambda x: net[3](torch.tanh(net[0](x)) * drop)
    w = net[3].weight
    g = torch.autograd.grad(
        nn.functional.cross_entropy(fixed(data[0][0]), data[0][1]), w, create_graph=True
    )[0]
    hg = torch.autograd.grad((g * g.detach()).sum(), w)[0]
    assert torch.allclose(s["w"], w.detach() * hg, atol=1e-9)


def test_synflow_builds_its_input_on_the_model_device():
    class Checked(nn.Linear):
        def forward(self, x):
            assert x.device == self.weight.device, (
                f"input on {x.device}, weights on {self.weight.device}"
            )
            return super().forward(x)

    lin = Checked(6, 2)
    meta = torch.empty(3, 6, device="meta")  # a shape without data, on another device
    s = synflow_scores(lin, {"w": lin.weight}, meta)
    assert s["w"].device == lin.weight.device
    assert torch.allclose(
        s["w"], lin.weight.detach().abs() * 3
    )  # one linear layer: dR/d|w| = batch size
    assert torch.equal(
        score("synflow", {"w": lin.weight}, lin, example_input=meta)["w"], s["w"]
    )

    class DictNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.lin = nn.Embedding(5, 4), Checked(4, 2)

        def forward(self, input_ids, scale):
            return self.lin(self.emb(input_ids) * scale)

    dn = DictNet()
    out = synflow_scores(
        dn,
        {"w": dn.lin.weight},
        {
            "input_ids": torch.tensor([[1, 2]]),
            "scale": torch.empty(1, 2, 1, device="meta"),
        },
    )
    assert out["w"].shape == dn.lin.weight.shape and torch.isfinite(out["w"]).all()


# ---------------------------------------------------------------- schedule


@pytest.mark.parametrize("kind", ["exp", "linear"])
@pytest.mark.parametrize("T", [1, 2, 5])
def test_schedule_monotone_and_exact_end(kind, T):
    r = ratio_schedule(0.2, T, kind)
    assert (
        len(r) == T
        and math.isclose(r[-1], 0.2)
        and all(a >= b for a, b in zip(r, r[1:]))
        and r[0] <= 1
    )
    if kind == "exp" and T > 1:
        assert math.isclose(r[1] / r[0], r[0])  # the same fraction removed each step


def test_iterative_masks_nested_and_exact():
    g = torch.Generator().manual_seed(0)
    shapes = {"a": torch.Size([50]), "b": torch.Size([30])}
    seen = []

    def score_fn(masks):
        seen.append({k: v.clone() for k, v in masks.items()})
        return {
            k: torch.rand(s, generator=g) for k, s in shapes.items()
        }  # fresh random scores each round

    final = iterative_masks(score_fn, shapes, 0.25, iterations=4)
    assert sum(int(m.sum()) for m in final.values()) == 20
    for prev, nxt in zip(seen, seen[1:] + [final]):  # removed entries stay removed
        assert all(not (nxt[k] & ~prev[k]).any() for k in shapes)
    assert jaccard(final["a"], final["a"]) == 1.0


def test_iterative_masks_pass_the_seed_on():
    shapes = {"a": torch.Size([40, 5])}
    zeros = lambda masks: {"a": torch.zeros(40, 5)}
    m0 = iterative_masks(zeros, shapes, 0.3, iterations=3, seed=0)
    assert int(m0["a"].sum()) == 60 and not m0["a"][:12].all()
    assert torch.equal(
        iterative_masks(zeros, shapes, 0.3, iterations=3, seed=0)["a"], m0["a"]
    )
    assert not torch.equal(
        iterative_masks(zeros, shapes, 0.3, iterations=3, seed=1)["a"], m0["a"]
    )


# ---------------------------------------------------------------- module boundaries


def test_importing_scoring_pulls_in_neither_pandas_nor_plotly():
    code = "import padnotes.scoring, sys; bad = [m for m in ('pandas', 'plotly') if m in sys.modules]; assert not bad, bad"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_mask_pictures_runs_outside_the_notebook():
    "It used make_subplots and go without importing them: a NameError anywhere but in the notebook."
    from padnotes.experiments.scoring import mask_pictures

    masks = {
        "random": torch.rand(5, 16) < 0.5,
        "none": torch.zeros(5, 16, dtype=torch.bool),
    }
    fig = mask_pictures(masks, (4, 4))
    assert (
        len(fig.data) == 2
        and fig.data[0].z.sum() == int(masks["random"].sum())
        and fig.data[1].z.sum() == 0
    )


def test_ranking_prefixes_are_exactly_the_masks_kept():
    "One tie order for every k: the first k of `ranking` are what topk_mask and keep_masks keep (the explorer relies on it)."
    from padnotes.scoring import ranking, tie_keys

    g = torch.Generator().manual_seed(3)
    flat = torch.randint(0, 4, (997,), generator=g).float()  # heavy ties
    for seed in (0, 5):
        o = ranking(flat, seed)
        assert sorted(o.tolist()) == list(range(997))
        for k in (0, 1, 250, 251, 500, 996, 997):
            m = torch.zeros(997, dtype=torch.bool)
            m[o[:k]] = True
            assert torch.equal(m, topk_mask(flat, k, seed)), (seed, k)
    assert torch.equal(tie_keys(torch.arange(10), 1), tie_keys(torch.arange(10), 1))
    assert not torch.equal(tie_keys(torch.arange(10), 1), tie_keys(torch.arange(10), 2))
