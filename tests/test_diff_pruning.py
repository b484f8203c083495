"Diff pruning (chapter 13): the hard-concrete gate, the diff layers, exact projection, fixed masks, TaskDiff files and their errors."

import pytest, torch
from torch import nn
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)
from padnotes.core import set_seed
from padnotes.train import fit
from padnotes.diff_pruning import (
    DIFF_WEIGHTS,
    LOUIZOS_GATE,
    PAPER_GATE,
    DiffLayer,
    DiffPruningConfig,
    TaskDiff,
    applied_task_diff,
    diff_config,
    diff_deltas,
    diff_layers,
    diff_numel,
    expected_l0,
    fingerprint,
    fit_diff,
    get_diff_model,
    hard_concrete,
    hard_concrete_cdf,
    hard_concrete_density,
    hard_concrete_law,
    hard_concrete_mean_gate,
    head_copies,
    l0_norm,
    project_diff,
    remove_task_diff,
)
from padnotes.tuners import (
    TunerConfig,
    disable_tuners,
    from_pretrained,
    merge_and_unload,
    save_pretrained,
    unload,
)


def bert(seed=0, hidden=32, num_labels=2):
    torch.manual_seed(seed)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=99,
            hidden_size=hidden,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=num_labels,
        )
    )


def distilbert(seed=0):
    torch.manual_seed(seed)
    return DistilBertForSequenceClassification(
        DistilBertConfig(
            vocab_size=99,
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=64,
            num_labels=2,
        )
    )


class TorchEncoder(nn.Module):
    "An architecture the tutorial does not use: torch's own TransformerEncoder (nn.MultiheadAttention: parameters and a child) and a Conv1d."

    def __init__(self, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = nn.Embedding(99, 16)
        self.conv = nn.Conv1d(16, 16, 3, padding=1)
        self.enc = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True),
            2,
            enable_nested_tensor=False,
        )
        self.classifier = nn.Linear(16, 2)

    def forward(self, x):
        h = self.conv(self.emb(x).transpose(1, 2)).transpose(1, 2)
        return self.classifier(self.enc(h).mean(1))


MODELS = {"bert": bert, "distilbert": distilbert, "torch": TorchEncoder}


def batches(n, seed=0, bs=8):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(8, 99, (n, bs, 10), generator=g)
    lab = torch.randint(0, 2, (n, bs), generator=g)
    ids[..., 3] = torch.where(lab.bool(), 7, ids[..., 3])
    return list(zip(ids, lab))


def logits(m, x):
    m.eval()
    with torch.no_grad():
        out = m(x)
        return out.logits if hasattr(out, "logits") else out


def snap(m):
    return {k: v.detach().clone() for k, v in m.state_dict().items()}


def same(m, s):
    return set(m.state_dict()) == set(s) and all(
        torch.equal(s[k], v) for k, v in m.state_dict().items()
    )


def trained(make, mode="gated", structured=False, density=0.05, steps=3, seed=0):
    "A diff model trained a few steps, projected, and fine-tuned a few more."
    set_seed(seed)
    m = get_diff_model(
        make(),
        DiffPruningConfig(mode=mode, structured=structured, lr=1e-2, l0_coef=1e-3),
    )
    fit_diff(m, batches(steps), device="cpu", progress=False)
    project_diff(m, density=density)
    fit_diff(m, batches(steps, seed=1), lr=1e-2, device="cpu", progress=False)
    return m


# --- the gate ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gate", [PAPER_GATE, LOUIZOS_GATE])
@pytest.mark.parametrize("a", [-3.0, -0.5, 0.0, 1.0, 4.0])
def test_monte_carlo_matches_the_closed_forms(gate, a):
    g = torch.Generator().manual_seed(0)
    z = hard_concrete(torch.full((400_000,), a), **gate, generator=g)
    law = hard_concrete_law(a, **gate)
    assert (
        abs(
            (z != 0).float().mean().item() - expected_l0(torch.tensor(a), **gate).item()
        )
        < 0.004
    )  # > 5 standard errors
    assert abs((z == 0).float().mean().item() - law["P(z=0)"]) < 0.004
    assert abs((z == 1).float().mean().item() - law["P(z=1)"]) < 0.004
    inside = z[(z > 0) & (z < 1)]  # the continuous part: P(z <= 0.5) from the cdf
    assert (
        abs(
            ((z > 0) & (z <= 0.5)).float().mean().item()
            - (hard_concrete_cdf(0.5, a, **gate) - law["P(z=0)"]).item()
        )
        < 0.004
    )
    assert inside.numel() > 0


@pytest.mark.parametrize("gate", [PAPER_GATE, LOUIZOS_GATE])
def test_density_integrates_to_the_continuous_mass(gate):
    x = torch.linspace(0, 1, 200_001, dtype=torch.float64)[1:-1]
    for a in (-1.0, 0.0, 2.0):
        integral = torch.trapezoid(hard_concrete_density(x, a, **gate), x).item()
        assert abs(integral - hard_concrete_law(a, **gate)["P(0<z<1)"]) < 1e-3


def test_expected_l0_is_differentiable_and_gates_are_deterministic_at_evaluation():
    a = torch.tensor([0.0, 2.0], requires_grad=True)
    expected_l0(a).sum().backward()
    assert torch.allclose(
        a.grad, torch.sigmoid(a.detach()) * (1 - torch.sigmoid(a.detach()))
    )
    lin = nn.Linear(5, 3)
    layer = DiffLayer(lin).eval()
    with torch.no_grad():
        layer.diff["weight"].normal_()
        layer.alpha["weight"].normal_(0, 3)
    x = torch.randn(4, 5)
    with torch.no_grad():
        assert torch.equal(layer(x), layer(x))
    layer.train()
    with torch.no_grad():
        assert not torch.equal(layer.gate("weight"), layer.gate("weight"))


def test_the_structured_gate_multiplies_the_entry_gate():
    layer = DiffLayer(nn.Linear(5, 3), structured=True)
    with torch.no_grad():
        layer.alpha["weight"].normal_(0, 2)
        layer.group_alpha["weight"].fill_(0.4)
        layer.diff["weight"].normal_()
    layer.eval()
    with torch.no_grad():
        zg = hard_concrete_mean_gate(layer.group_alpha["weight"])
        assert 0 < zg < 1
        assert torch.equal(
            layer.gate("weight"), hard_concrete_mean_gate(layer.alpha["weight"]) * zg
        )
        assert torch.equal(
            layer.delta("weight"), layer.diff["weight"] * layer.gate("weight")
        )
        e = expected_l0(layer.alpha["weight"]) * expected_l0(
            layer.group_alpha["weight"]
        )
        assert torch.allclose(
            layer.l0(),
            e.sum()
            + (
                expected_l0(layer.alpha["bias"])
                * expected_l0(layer.group_alpha["bias"])
            ).sum(),
        )
    layer.train()
    torch.manual_seed(0)
    closed = (
        sum(bool((layer.gate("weight") == 0).all()) for _ in range(3000)) / 3000
    )  # the group gate closes the matrix at once
    assert abs(closed - hard_concrete_law(0.4)["P(z=0)"]) < 0.03


def test_the_two_structured_penalties_differ_only_in_how_a_group_gate_counts():
    layer = DiffLayer(nn.Linear(50, 4), structured=True)
    with torch.no_grad():
        layer.alpha["weight"].normal_(2, 1)
        layer.group_alpha["weight"].fill_(1.5)
    e_w, e_b = expected_l0(layer.alpha["weight"]), expected_l0(layer.alpha["bias"])
    g_w, g_b = (
        expected_l0(layer.group_alpha["weight"]),
        expected_l0(layer.group_alpha["bias"]),
    )
    with torch.no_grad():
        assert torch.allclose(layer.l0("sum"), e_w.sum() + g_w + e_b.sum() + g_b)
        assert torch.allclose(layer.l0("product"), e_w.sum() * g_w + e_b.sum() * g_b)
    grads = {}
    for form in ("sum", "product"):
        layer.zero_grad()
        layer.l0(form).backward()
        grads[form] = layer.group_alpha["weight"].grad.item()
    # the product's push on a group logit is the group's expected entry count times the sum's (here about 190 times)
    assert (
        grads["product"] == pytest.approx(grads["sum"] * e_w.sum().item(), rel=1e-5)
        and e_w.sum() > 100
    )
    with pytest.raises(ValueError, match="group"):
        layer.l0("mean")
    plain = DiffLayer(nn.Linear(5, 3))
    assert torch.equal(plain.l0("sum"), plain.l0("product"))


def test_the_penalty_follows_group_penalty_and_the_record_stays_the_exact_count():
    moved = {}
    for form in ("sum", "product"):
        set_seed(0)
        m = get_diff_model(
            bert(), DiffPruningConfig(structured=True, group_penalty=form, l0_coef=1e-6)
        )
        n = diff_numel(m)
        rec = fit_diff(m, batches(3), device="cpu", progress=False)["l0"]
        assert rec[0]["expected_l0"] == pytest.approx(
            n * expected_l0(torch.tensor(5.0)).item() ** 2, rel=1e-5
        )  # the exact count, either form
        moved[form] = [
            5.0 - a.item()
            for l in diff_layers(m).values()
            for a in l.group_alpha.values()
        ]
    # three AdamW steps on fit's cosine schedule (0.1 + 0.075 + 0.025 = 0.2 at most): the product's gradient on a group logit dwarfs
    # AdamW's eps, so each logit moves nearly the full 0.2; the sum's is near eps, so it moves under half of that
    assert min(moved["product"]) > 0.18 and max(moved["sum"]) < 0.1


@pytest.mark.parametrize(
    "kw", [dict(l=0.0), dict(l=0.2), dict(r=1.0), dict(beta=0.0), dict(beta=-1.0)]
)
def test_bad_gate_parameters_are_refused(kw):
    with pytest.raises(ValueError):
        hard_concrete(torch.zeros(3), **{**PAPER_GATE, **kw})
    with pytest.raises(ValueError):
        DiffPruningConfig(**kw)


# --- the model ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_a_fresh_diff_model_computes_the_base_and_switching_off_restores_it(name):
    x = batches(1)[0][0]
    ref = logits(MODELS[name](), x)
    m = get_diff_model(MODELS[name](), DiffPruningConfig(structured=True))
    assert torch.equal(logits(m, x), ref)
    fit_diff(m, batches(2), lr=1e-2, device="cpu", progress=False)
    assert not torch.equal(logits(m, x), ref)
    with disable_tuners(m):
        assert torch.equal(logits(m, x), ref)
    assert list(head_copies(m)) == (
        ["pre_classifier", "classifier"] if name == "distilbert" else ["classifier"]
    )
    base_numel = sum(
        p.numel() for n, p in MODELS[name]().named_parameters() if "classifier" not in n
    )
    assert diff_numel(m) == base_numel  # every parameter outside the head has a diff
    unload(m)
    assert torch.equal(logits(m, x), ref)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("mode", ["gated", "dense"])
def test_training_changes_only_the_diffs_the_gates_and_the_head(name, mode):
    m = get_diff_model(
        MODELS[name](), DiffPruningConfig(mode=mode, structured=True, lr=1e-2)
    )
    before = {k: p.detach().clone() for k, p in m.named_parameters()}
    fit_diff(m, batches(3), device="cpu", progress=False)
    changed = {k for k, p in m.named_parameters() if not torch.equal(before[k], p)}
    method = lambda k: (
        any(s in k for s in (".diff.", ".alpha.", ".group_alpha."))
        or k.split(".")[0] in ("classifier", "pre_classifier")
        and ".module." in k
    )
    assert changed and all(method(k) for k in changed), sorted(
        k for k in changed if not method(k)
    )[:5]
    assert all(
        ".base_layer." in k or method(k) for k in before
    )  # nothing else is left to train
    assert any(".diff." in k for k in changed) and any(".module." in k for k in changed)


def test_dense_mode_is_full_fine_tuning():
    x = batches(1)[0][0]
    a = get_diff_model(bert(), DiffPruningConfig(mode="dense", lr=1e-3))
    set_seed(0)
    fit_diff(a, batches(4), device="cpu", progress=False, sched="constant")
    b = bert()
    opt = torch.optim.AdamW(b.parameters(), lr=1e-3, weight_decay=0.0)
    set_seed(0)
    fit(b, batches(4), opt=opt, device="cpu", progress=False, sched="constant")
    assert torch.allclose(logits(a, x), logits(b, x), atol=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize(
    "mode,structured", [("gated", False), ("gated", True), ("dense", False)]
)
def test_projection_keeps_exactly_round_density_n(name, mode, structured):
    for density in (0.005, 0.05, 0.3):
        set_seed(0)
        m = get_diff_model(
            MODELS[name](), DiffPruningConfig(mode=mode, structured=structured, lr=1e-2)
        )
        fit_diff(m, batches(1), device="cpu", progress=False)
        n = diff_numel(m)
        masks = project_diff(m, density=density)
        assert sum(int(v.sum()) for v in masks.values()) == round(density * n)
        assert (
            l0_norm(m).item() == round(density * n)
            and diff_config(m).mode == "masked"
            and diff_config(m).density == density
        )
        d = diff_deltas(m)
        assert all(bool((d[k][~masks[k]] == 0).all()) for k in d)


def test_projection_is_exact_when_every_entry_ties():
    m = get_diff_model(
        bert(), DiffPruningConfig(mode="dense")
    )  # w = 0 everywhere: every |delta| ties at the threshold
    masks = project_diff(m, density=0.0123)
    assert sum(int(v.sum()) for v in masks.values()) == round(0.0123 * diff_numel(m))


def test_projection_keeps_the_largest_entries():
    set_seed(0)
    m = get_diff_model(bert(), DiffPruningConfig(mode="dense", lr=1e-2))
    fit_diff(m, batches(2), device="cpu", progress=False)
    d = {k: v.abs() for k, v in diff_deltas(m).items()}
    masks = project_diff(m, density=0.02)
    kept = torch.cat([d[k][masks[k]] for k in d])
    dropped = torch.cat([d[k][~masks[k]] for k in d])
    assert kept.min() >= dropped.max()


@pytest.mark.parametrize("name", ["bert", "torch"])
def test_masked_entries_stay_zero_through_training_with_any_adamw(name):
    m = trained(MODELS[name])
    masks = {
        f"{n}.{p}": getattr(l.mask, k).clone()
        for n, l in diff_layers(m).items()
        for p, k in zip(l.names, l.keys)
    }
    opt = torch.optim.AdamW(
        [p for p in m.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1
    )  # a user's own optimiser, decay on
    fit(m, batches(5), opt=opt, device="cpu", progress=False)
    d = diff_deltas(m)
    assert all(bool((d[k][~masks[k]] == 0).all()) for k in d)
    w = {
        f"{n}.{p}": l.diff[k]
        for n, l in diff_layers(m).items()
        for p, k in zip(l.names, l.keys)
    }
    assert all(
        bool((w[k][~masks[k]] == 0).all()) for k in w
    )  # stored as 0, not only multiplied by 0


@pytest.mark.parametrize("mode", ["gated", "masked"])
def test_save_pretrained_round_trips_and_merge_equals_unmerged(tmp_path, mode):
    x = batches(1)[0][0]
    if mode == "gated":
        m = get_diff_model(bert(), DiffPruningConfig(structured=True, lr=1e-2))
        fit_diff(m, batches(2), device="cpu", progress=False)
    else:
        m = trained(bert, structured=True)
    out = logits(m, x)
    save_pretrained(m, tmp_path)
    back = from_pretrained(bert(), tmp_path)
    assert torch.equal(logits(back, x), out) and diff_config(back).mode == mode
    assert torch.allclose(logits(merge_and_unload(m), x), out, atol=1e-6)
    m.eval()
    [l.merge() for l in diff_layers(m).values()]
    assert torch.allclose(logits(m, x), out, atol=1e-6)


def test_config_round_trips_through_json_and_refuses_bad_values():
    c = DiffPruningConfig(
        structured=True, density=0.01, modules_to_save=["classifier"], **LOUIZOS_GATE
    )
    assert TunerConfig.from_json(c.to_json()) == c
    for kw, word in [
        (dict(density=0.0), "density"),
        (dict(density=1.5), "density"),
        (dict(mode="sparse"), "mode"),
        (dict(lr=0), "lr"),
        (dict(alpha_lr=-1), "alpha_lr"),
        (dict(l0_coef=-1e-7), "l0_coef"),
        (dict(group_penalty="mean"), "group_penalty"),
    ]:
        with pytest.raises(ValueError, match=word):
            DiffPruningConfig(**kw)
    with pytest.raises(TypeError):
        DiffPruningConfig(structured="yes")
    with pytest.raises(TypeError):
        DiffPruningConfig(modules_to_save="classifier")
    m = bert()
    s = snap(m)
    with pytest.raises(ValueError, match="names no module"):
        get_diff_model(m, DiffPruningConfig(modules_to_save=["head"]))
    with pytest.raises(ValueError, match="target_modules"):
        get_diff_model(m, DiffPruningConfig(target_modules=["nothing_here"]))
    assert same(m, s) and not diff_layers(m)


# --- TaskDiff ---------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_apply_and_remove_round_trip_bit_for_bit(tmp_path, name):
    m = trained(MODELS[name])
    x = batches(1)[0][0]
    out = logits(m, x)
    TaskDiff.from_model(m).save(tmp_path)
    td = TaskDiff.load(tmp_path)
    plain = MODELS[name]()
    s = snap(plain)
    td.apply(plain)
    assert torch.equal(logits(plain, x), out) and applied_task_diff(plain) is td
    td.remove(plain)
    assert same(plain, s) and applied_task_diff(plain) is None
    td.apply(plain)
    assert remove_task_diff(plain) is td and same(plain, s)
    assert td.nnz() == round(0.05 * diff_numel(m))


def test_a_head_for_another_number_of_classes_is_applied_and_removed(tmp_path):
    m = trained(lambda: bert(num_labels=3))
    x = batches(1)[0][0]
    out = logits(m, x)
    td = TaskDiff.from_model(m)
    assert td.num_labels == 3
    plain = bert(num_labels=2)
    s = snap(plain)
    td.apply(plain)
    assert (
        plain.num_labels == 3
        and plain.config.num_labels == 3
        and plain.classifier.out_features == 3
    )
    assert torch.equal(logits(plain, x), out)
    loss = plain(
        input_ids=x, labels=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    ).loss  # transformers' own loss sees 3 classes
    assert torch.isfinite(loss)
    remove_task_diff(plain)
    assert (
        same(plain, s)
        and plain.num_labels == 2
        and plain.config.num_labels == 2
        and plain.classifier.out_features == 2
    )


def test_wrong_base_truncated_or_corrupt_files_and_shape_mismatch_change_nothing(
    tmp_path,
):
    m = trained(bert)
    td = TaskDiff.from_model(m)
    td.save(tmp_path / "ok")
    other = bert(seed=1)
    s = snap(other)
    with pytest.raises(ValueError, match="another base model"):
        td.apply(other)
    assert same(other, s) and applied_task_diff(other) is None
    nudged = bert()
    s = snap(nudged)
    with torch.no_grad():
        nudged.bert.encoder.layer[1].output.dense.weight[0, 0] += (
            1e-6  # one weight, a hair off
        )
    with pytest.raises(ValueError, match="another base model"):
        td.apply(nudged)
    wide = bert(hidden=48)
    s = snap(wide)
    with pytest.raises(ValueError, match="shape mismatch"):
        td.apply(wide)
    assert same(wide, s)
    deeper = BertForSequenceClassification(
        BertConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
        )
    )
    with pytest.raises(ValueError, match="does not have"):
        td.apply(deeper)
    blob = (tmp_path / "ok" / DIFF_WEIGHTS).read_bytes()
    for name, bad in [
        ("cut", blob[:-64]),
        ("flipped", blob[:-10] + bytes([blob[-10] ^ 1]) + blob[-9:]),
        ("empty", b""),
    ]:
        d = tmp_path / name
        td.save(d)
        (d / DIFF_WEIGHTS).write_bytes(bad)
        with pytest.raises(ValueError, match="corrupt or truncated"):
            TaskDiff.load(d)
    d = tmp_path / "json"
    td.save(d)
    (d / "task_diff.json").write_text((d / "task_diff.json").read_text()[:40])
    with pytest.raises(ValueError, match="not valid JSON"):
        TaskDiff.load(d)
    with pytest.raises(FileNotFoundError):
        TaskDiff.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="tuned layers"):
        td.apply(m)


def test_fingerprint_is_the_same_for_a_diff_model_and_its_plain_base():
    plain = bert()
    fp = fingerprint(plain)
    m = get_diff_model(bert(), DiffPruningConfig())
    assert fingerprint(m) == fp
    fit_diff(m, batches(2), lr=1e-2, device="cpu", progress=False)
    assert fingerprint(m) == fp  # training moves the diff, never the base
    with torch.no_grad():
        plain.bert.pooler.dense.bias[0] += 1
    assert fingerprint(plain) != fp


def test_the_minilm_file_at_half_a_percent_is_at_most_one_percent_of_the_dense_model(
    tmp_path,
):
    from padnotes.data import load_minilm
    from padnotes.sparse import saved_bytes

    _, mini = load_minilm(2)
    dense = saved_bytes(mini)
    get_diff_model(mini, DiffPruningConfig(mode="dense"))
    project_diff(mini)  # the default density, 0.5%
    td = TaskDiff.from_model(mini)
    td.save(tmp_path)
    assert td.nnz() == round(0.005 * diff_numel(mini))
    assert TaskDiff.file_bytes(tmp_path) <= 0.01 * dense, (
        TaskDiff.file_bytes(tmp_path),
        dense,
    )


def test_a_parent_that_reads_weights_instead_of_calling_sees_theta_plus_delta():
    "torch's TransformerEncoderLayer, in eval without grad, reads self_attn.in_proj_weight, self_attn.out_proj.weight, linear1.weight ... itself."
    m = trained(TorchEncoder)
    x = batches(1)[0][0]
    m.eval()
    layer = m.enc.layers[0]
    assert torch.equal(
        layer.self_attn.out_proj.weight, layer.self_attn.param_value("out_proj.weight")
    )
    with torch.no_grad():
        fast = m(x)  # the fused fast path (no grad, eval, batch_first)
    slow = m(x).detach()  # grad on: the module path through every DiffLayer's forward
    assert torch.allclose(fast, slow, atol=1e-5)
    with disable_tuners(m), torch.no_grad():
        assert torch.equal(
            layer.self_attn.out_proj.weight, layer.self_attn.base_layer.out_proj.weight
        )
        assert torch.allclose(
            m(x), logits(TorchEncoder(), x), atol=1e-6
        )  # theta alone (fast path both sides)


def test_the_cached_fingerprint_never_hides_a_change_to_the_base(tmp_path):
    td = TaskDiff.from_model(trained(bert))
    plain = bert()
    td.apply(plain)
    remove_task_diff(plain)
    assert (
        plain.__dict__["_padnotes_fingerprint"][1] == td.base_fingerprint
    )  # restored untouched: the hash is kept
    td.apply(plain)
    with torch.no_grad():
        plain.bert.encoder.layer[0].intermediate.dense.weight.mul_(
            1.5
        )  # trained (say) while the diff was in
    remove_task_diff(plain, force=True)  # refused without force (test_saving_traps)
    assert "_padnotes_fingerprint" not in plain.__dict__
    with pytest.raises(ValueError, match="another base model"):
        td.apply(plain)
    fresh = bert()
    td.apply(fresh)
    remove_task_diff(fresh)
    with torch.no_grad():
        fresh.bert.pooler.dense.bias.add_(1e-3)  # changed after remove, in place
    with pytest.raises(ValueError, match="another base model"):
        td.apply(fresh)


def test_a_non_contiguous_parameter_is_refused_before_anything_changes():
    td = TaskDiff.from_model(trained(bert))
    plain = bert()
    s = snap(plain)
    w = plain.bert.encoder.layer[0].intermediate.dense
    w.weight = nn.Parameter(
        w.weight.detach().t().contiguous().t()
    )  # same values, transposed strides
    s = snap(plain)
    with pytest.raises(ValueError, match="not contiguous"):
        td.apply(plain)
    assert same(plain, s) and applied_task_diff(plain) is None
