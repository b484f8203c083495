"Adapters (padnotes.adapters): only adapter parameters train, switching off restores the base, LoRA merges exactly, save/load round-trips, BERT-base counts, peft interop, bad configs."

import json, subprocess, sys
import pytest, torch
from transformers import (
    BertConfig,
    BertModel,
    DistilBertConfig,
    DistilBertModel,
    RobertaConfig,
    RobertaModel,
)
from padnotes.adapters import (
    AdapterConfig,
    ADAPTER_KINDS,
    adapter_layers,
    adapter_numel,
    bottleneck_numel,
    get_adapter_model,
    load_peft,
    prune_adapters,
    save_peft,
    DeployedAdapter,
)
from padnotes.tuners import (
    disable_tuners,
    from_pretrained,
    merge,
    merge_and_unload,
    save_pretrained,
    trainable_parameters,
    unmerge,
)


def bert(seed=0):
    torch.manual_seed(seed)
    return BertModel(
        BertConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
    ).eval()


def roberta(seed=0):
    torch.manual_seed(seed)
    return RobertaModel(
        RobertaConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=70,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
    ).eval()


def distilbert(seed=0):
    torch.manual_seed(seed)
    return DistilBertModel(
        DistilBertConfig(
            vocab_size=99,
            dim=32,
            n_layers=2,
            n_heads=4,
            hidden_dim=64,
            max_position_embeddings=64,
            dropout=0.0,
            attention_dropout=0.0,
        )
    ).eval()


MODELS = dict(bert=bert, roberta=roberta, distilbert=distilbert)
IDS = torch.randint(3, 99, (3, 10), generator=torch.Generator().manual_seed(0))


def out(m):
    return m(input_ids=IDS).last_hidden_state


def trained(make, kind, steps=3, **kw):
    "A model with adapters of `kind`, trained a few steps (so LoRA's B is not zero), and its state before training."
    m = get_adapter_model(make(), AdapterConfig(kind=kind, r=4, alpha=8, **kw))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.AdamW(
        [p for p in m.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1
    )
    m.train()
    for _ in range(steps):
        loss = out(m).pow(2).mean() + out(m)[..., 0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval(), before


@pytest.mark.parametrize("arch", list(MODELS))
@pytest.mark.parametrize("kind", ADAPTER_KINDS)
def test_only_adapter_parameters_change_and_switching_off_restores_the_base(arch, kind):
    base = MODELS[arch]()
    ref = out(base).detach()
    m, before = trained(MODELS[arch], kind)
    changed = {k for k, v in m.state_dict().items() if not torch.equal(v, before[k])}
    assert changed, "training changed nothing"
    assert all(
        (".adapter." in k or ".lora_" in k) and ".base_layer." not in k for k in changed
    ), changed
    assert {n for n, p in m.named_parameters() if p.requires_grad} == changed
    with torch.no_grad():
        y = out(m)
        assert not torch.equal(y, ref)
        with disable_tuners(m):
            assert torch.equal(out(m), ref)
        assert torch.equal(out(m), y)


@pytest.mark.parametrize("arch", list(MODELS))
@pytest.mark.parametrize("kind", ADAPTER_KINDS)
def test_merge_and_merge_and_unload_equal_the_tuned_model(arch, kind):
    m, _ = trained(MODELS[arch], kind)
    with torch.no_grad():
        y = out(m)
        merge(m)
        ym = out(m)
        unmerge(m)
        assert torch.equal(out(m), y)  # unmerge is exact: the base was never touched
        d = merge_and_unload(m)
        yd = out(d)
    torch.testing.assert_close(ym, y, atol=1e-5, rtol=0)
    torch.testing.assert_close(yd, y, atol=1e-5, rtol=0)
    assert not adapter_layers(d)
    if kind == "lora":
        assert not any(
            isinstance(x, DeployedAdapter) for x in d.modules()
        )  # plain Linear layers
    else:
        assert sum(isinstance(x, DeployedAdapter) for x in d.modules()) == len(
            adapter_layers(m)
        )


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
@pytest.mark.parametrize("kind", ADAPTER_KINDS)
def test_save_and_from_pretrained_round_trip_bit_for_bit(arch, kind, tmp_path):
    m, _ = trained(MODELS[arch], kind, non_linearity="gelu" if kind != "lora" else None)
    folder = save_pretrained(m, tmp_path)
    again = from_pretrained(MODELS[arch](), folder)
    with torch.no_grad():
        assert torch.equal(out(again), out(m))
    from safetensors.torch import load_file

    keys = set(load_file(str(folder / "padnotes_model.safetensors")))
    assert keys and all(
        ".adapter." in k or ".lora_" in k or k.endswith("._extra_state") for k in keys
    ), keys  # adapter tensors (and settings) only
    assert not any(".base_layer." in k for k in keys)


@pytest.mark.parametrize(
    "kind,expected", [("pfeiffer", 894_528), ("houlsby", 1_789_056)]
)
def test_bert_base_counts(kind, expected):
    with torch.device("meta"):
        m = BertModel(BertConfig())
    get_adapter_model(m, AdapterConfig(kind=kind, reduction_factor=16))
    assert (
        trainable_parameters(m)["trainable"]
        == expected
        == adapter_numel(AdapterConfig(kind=kind), 768, 12)
    )
    assert bottleneck_numel(768, 48) == 74_544


def test_lora_counts_and_peft_shapes():
    m = get_adapter_model(
        bert(),
        AdapterConfig(
            kind="lora",
            r=4,
            target_modules=["query", "value", "attention.output.dense"],
        ),
    )
    l = adapter_layers(m)["encoder.layer.0.attention.self.query"]
    assert (
        l.lora_A.weight.shape == (4, 32)
        and l.lora_B.weight.shape == (32, 4)
        and l.scaling == 8 / 4
    )
    assert torch.equal(l.lora_B.weight, torch.zeros(32, 4))
    assert trainable_parameters(m)["trainable"] == adapter_numel(
        AdapterConfig(kind="lora", r=4), 32, 2, [(32, 32)] * 3
    )


@pytest.mark.parametrize("arch", ["bert", "distilbert"])
def test_peft_loads_a_padnotes_lora_and_padnotes_loads_peft(arch, tmp_path):
    peft = pytest.importorskip("peft")
    m, _ = trained(MODELS[arch], "lora")
    folder = save_peft(m, tmp_path / "ours")
    cfg = json.loads((folder / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA" and cfg["r"] == 4 and cfg["lora_alpha"] == 8
    pm = peft.PeftModel.from_pretrained(MODELS[arch](), folder).eval()
    with torch.no_grad():
        y, yp = out(m), out(pm)
    torch.testing.assert_close(yp, y, atol=1e-6, rtol=0)
    assert not torch.equal(
        y, out(MODELS[arch]()).detach()
    )  # the adapter does something
    # peft's own model and files -> padnotes
    pm2 = peft.get_peft_model(
        MODELS[arch](),
        peft.LoraConfig(
            r=2,
            lora_alpha=6,
            target_modules=["query", "value"] if arch == "bert" else ["q_lin", "v_lin"],
        ),
    )
    with torch.no_grad():
        for n, p in pm2.named_parameters():
            if "lora_B" in n:
                p.normal_()
    pm2.eval()
    pm2.save_pretrained(tmp_path / "theirs")
    ours = load_peft(MODELS[arch](), tmp_path / "theirs")
    with torch.no_grad():
        torch.testing.assert_close(out(ours), out(pm2), atol=1e-6, rtol=0)
    assert {type(l).__name__ for l in adapter_layers(ours).values()} == {"LoRALinear"}


def test_the_same_weights_in_padnotes_and_peft_give_the_same_outputs():
    peft = pytest.importorskip("peft")
    m, _ = trained(bert, "lora")
    pm = peft.get_peft_model(
        bert(), peft.LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"])
    ).eval()
    sd = {
        k.replace("lora_A.weight", "lora_A.default.weight").replace(
            "lora_B.weight", "lora_B.default.weight"
        ): v
        for k, v in m.state_dict().items()
        if "lora_" in k and "mask" not in k
    }
    res = pm.base_model.model.load_state_dict(sd, strict=False)
    assert not res.unexpected_keys
    with torch.no_grad():
        torch.testing.assert_close(out(pm), out(m), atol=1e-6, rtol=0)


def test_save_peft_refuses_bottleneck_adapters(tmp_path):
    m = get_adapter_model(bert(), AdapterConfig(kind="houlsby"))
    with pytest.raises(ValueError, match="LoRA layers only"):
        save_peft(m, tmp_path)


def test_pruned_entries_stay_exactly_zero_under_adamw_with_weight_decay():
    for kind in ("pfeiffer", "lora"):
        m = get_adapter_model(
            bert(),
            AdapterConfig(
                kind=kind, bottleneck=8 if kind != "lora" else None, sparse_ratio=0.3
            ),
        )
        masks = prune_adapters(
            m, 0.3, criterion="magnitude" if kind != "lora" else "random"
        )
        n = sum(x.numel() for x in masks.values())
        assert sum(int(x.sum()) for x in masks.values()) == round(0.7 * n)
        opt = torch.optim.AdamW(
            [p for p in m.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.5
        )
        for _ in range(3):
            loss = out(m).pow(2).mean() + out(m)[..., 0].mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        w = dict(m.named_parameters())
        assert all(int((w[k][~mk] != 0).sum()) == 0 for k, mk in masks.items())
        assert any(int((w[k][mk] != 0).sum()) for k, mk in masks.items())


@pytest.mark.parametrize(
    "kw,err,match",
    [
        (dict(sparse_ratio=1.0), ValueError, "sparse_ratio"),
        (dict(sparse_ratio=-0.1), ValueError, "sparse_ratio"),
        (dict(sparse_ratio="0.5"), TypeError, "sparse_ratio"),
        (dict(kind="prefix"), ValueError, "kind"),
        (dict(bottleneck=0), ValueError, "bottleneck"),
        (dict(bottleneck=2.5), TypeError, "bottleneck"),
        (dict(bottleneck=4, reduction_factor=8), ValueError, "not both"),
        (dict(r=0), ValueError, "r must"),
        (dict(criterion="nope"), ValueError, "criterion"),
        (dict(target_modules=3), TypeError, "target_modules"),
    ],
)
def test_bad_configs_raise_clear_errors(kw, err, match):
    with pytest.raises(err, match=match):
        AdapterConfig(**kw)


@pytest.mark.parametrize(
    "cfg,match",
    [
        (
            AdapterConfig(kind="lora", target_modules=["quary"]),
            "no module has that name",
        ),
        (
            AdapterConfig(kind="pfeiffer", target_modules=["pooler.dense"]),
            "cannot convert",
        ),
    ],
)
def test_unknown_targets_change_nothing(cfg, match):
    m = bert()
    sd = {k: v.clone() for k, v in m.state_dict().items()}
    flags = [p.requires_grad for p in m.parameters()]
    with pytest.raises(ValueError, match=match):
        get_adapter_model(m, cfg)
    assert set(m.state_dict()) == set(sd) and all(
        torch.equal(v, sd[k]) for k, v in m.state_dict().items()
    )
    assert [p.requires_grad for p in m.parameters()] == flags and not adapter_layers(m)


def test_adapters_import_without_transformers_pandas_plotly_or_peft():
    code = "import sys, padnotes.adapters; bad = [m for m in ('transformers', 'pandas', 'plotly', 'peft') if m in sys.modules]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)
