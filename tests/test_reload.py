"""Every method's trained model, reloaded through each route a user would try, computes what was saved, bit for bit, or the
reload is refused. The routes: (1) replay the conversions with their default settings, then load_state_dict; (2) save_pretrained
then from_pretrained on a fresh base; (3) torch.save of the state_dict to a file, torch.load(weights_only=True), replay, load.
The saved models were trained with settings other than the defaults (temperature annealed to 1, top_k 1 with a capacity, no scale
factors) and partitioned globally so that one layer has no dynamic entry left."""

import copy, io, pickle

import pytest
import torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification

from padnotes.core import set_seed
from padnotes.dyconv import dynamicize, set_temperature
from padnotes.moe import moe_layers, moefy
from padnotes.pad import (
    apply_partition,
    merge_for_inference,
    mode_scores,
    padify,
    partial_layers,
    partition_report,
)
from padnotes.tuners import from_pretrained, save_pretrained
from test_pad import SmallNet


def conv_base(seed=0):
    set_seed(seed)
    return SmallNet()


def bert_base(seed=0):
    set_seed(seed)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=50,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=24,
            max_position_embeddings=32,
            num_labels=2,
        )
    )


def conv_batches(n=3):
    g = torch.Generator().manual_seed(1)
    return [
        (torch.randn(6, 1, 8, 8, generator=g), torch.randint(0, 3, (6,), generator=g))
        for _ in range(n)
    ]


def bert_batches(n=3):
    g = torch.Generator().manual_seed(1)
    return [
        dict(
            input_ids=torch.randint(1, 50, (4, 7), generator=g),
            attention_mask=torch.ones(4, 7, dtype=torch.long),
            labels=torch.randint(0, 2, (4,), generator=g),
        )
        for _ in range(n)
    ]


def logits(model, batch):
    model.eval()
    with torch.no_grad():
        if isinstance(batch, dict):
            return model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        return model(batch[0])


def train(model, batches, steps=4, aux=False):
    "A few real optimiser steps, so that no tensor is left at its converted value."
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    for i in range(steps):
        b = batches[i % len(batches)]
        if isinstance(b, dict):
            out = model(**b)
            loss = out.loss
        else:
            loss = nn.functional.cross_entropy(model(b[0]), b[1])
        if aux:
            loss = loss + sum(m.aux_loss for m in moe_layers(model))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def starve(model, layer: str):
    "Shrink one layer's dynamic kernels so that a global magnitude partition leaves it no dynamic entry."
    with torch.no_grad():
        for t in partial_layers(model)[layer].dynamic_copies().values():
            t.mul_(1e-3)


# the saved models, and how a user replays each one with the defaults
def dyconv_saved():
    m = train(dynamicize(conv_base(), noise=0.1, seed=0), conv_batches())
    set_temperature(m, 1.0)  # where TemperatureSchedule leaves it
    return m


def dyconv_replay():
    return dynamicize(conv_base(seed=7))


def moe_saved():
    return train(
        moefy(
            bert_base(),
            num_experts=4,
            top_k=1,
            capacity_factor=1.0,
            balance="shazeer",
            z_coef=0.01,
        ),
        bert_batches(),
        aux=True,
    )


def moe_replay():
    return moefy(bert_base(seed=7), num_experts=4)


def pad_conv_saved():
    m = padify(
        dynamicize(conv_base(), noise=0.1, seed=0), 1.0, "random", use_scale=False
    )  # every entry dynamic: start of PAD
    starve(m, "b")
    apply_partition(m, mode_scores(m, "magnitude"), 0.3, "global")
    assert [r["dynamic"] for r in partition_report(m) if r["layer"] == "b"] == [0]
    set_temperature(m, 1.0)
    return train(m, conv_batches())


def pad_conv_replay():
    return padify(dynamicize(conv_base(seed=7)), 0.5, "random")


def pad_moe_saved():
    m = padify(
        moefy(bert_base(), num_experts=4, noisy_gating=False, top_k=1),
        1.0,
        "random",
        use_scale=False,
    )
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() == 3:
                p.add_(0.05 * torch.randn_like(p))
    starve(m, "bert.encoder.layer.1.intermediate.moe.experts")
    apply_partition(m, mode_scores(m, "magnitude"), 0.3, "global")
    return train(m, bert_batches())


def pad_moe_replay():
    return padify(
        moefy(bert_base(seed=7), num_experts=4, noisy_gating=False), 0.5, "random"
    )


def lora_saved():
    from padnotes.adapters import AdapterConfig, get_adapter_model

    m = get_adapter_model(
        bert_base(),
        AdapterConfig(
            kind="lora", r=4, alpha=32.0, target_modules=["query", "value", "key"]
        ),
    )
    return train(m, bert_batches())


def lora_replay():
    from padnotes.adapters import AdapterConfig, get_adapter_model

    return get_adapter_model(
        bert_base(seed=7),
        AdapterConfig(kind="lora", r=4, target_modules=["query", "value", "key"]),
    )  # alpha default


def houlsby_saved():
    from padnotes.adapters import AdapterConfig, get_adapter_model

    return train(
        get_adapter_model(
            bert_base(),
            AdapterConfig(
                kind="houlsby", bottleneck=4, non_linearity="relu", scaling=2.0
            ),
        ),
        bert_batches(),
    )


def houlsby_replay():
    from padnotes.adapters import AdapterConfig, get_adapter_model

    return get_adapter_model(
        bert_base(seed=7), AdapterConfig(kind="houlsby", bottleneck=4)
    )  # swish, scale 1: defaults


METHODS = dict(
    lora=(lora_saved, lora_replay, bert_base, bert_batches),
    houlsby=(houlsby_saved, houlsby_replay, bert_base, bert_batches),
    dyconv=(dyconv_saved, dyconv_replay, conv_base, conv_batches),
    moe=(moe_saved, moe_replay, bert_base, bert_batches),
    pad_conv=(pad_conv_saved, pad_conv_replay, conv_base, conv_batches),
    pad_moe=(pad_moe_saved, pad_moe_replay, bert_base, bert_batches),
)


@pytest.fixture(scope="module", params=list(METHODS))
def saved(request):
    make, replay, base, batches = METHODS[request.param]
    m = make()
    return request.param, m, replay, base, batches()[0]


def test_replay_then_load_state_dict(saved):
    name, m, replay, _, b = saved
    r = replay()
    assert not torch.equal(
        logits(r, b), logits(m, b)
    )  # the replay alone is another model
    r.load_state_dict(m.state_dict())
    assert torch.equal(logits(r, b), logits(m, b))


def test_torch_save_file_weights_only(saved, tmp_path):
    name, m, replay, _, b = saved
    torch.save(m.state_dict(), tmp_path / "model.pt")
    r = replay()
    r.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    assert torch.equal(logits(r, b), logits(m, b))


def test_save_pretrained_from_pretrained(saved, tmp_path):
    name, m, _, base, b = saved
    save_pretrained(m, tmp_path / name)
    r = from_pretrained(
        base(), tmp_path / name
    )  # the pretrained base, as a user has it
    assert torch.equal(logits(r, b), logits(m, b))


def test_merged_reload_with_a_layer_emptied_either_way():
    "A merged PAD conv whose global partition emptied a layer (no attention branch) loads into a replay where it is not, and back."
    m = pad_conv_saved()
    b = conv_batches()[0]
    merged = merge_for_inference(m)
    assert merged.b.attention is None and merged.a.attention is not None
    other = merge_for_inference(pad_conv_replay())
    assert other.b.attention is not None
    other.load_state_dict(merged.state_dict())
    assert other.b.attention is None and torch.equal(
        logits(other, b), logits(merged, b)
    )
    back = merge_for_inference(pad_conv_replay())
    emptied = copy.deepcopy(merged)
    emptied.load_state_dict(
        back.state_dict()
    )  # the other way: an attention branch comes back
    assert emptied.b.attention is not None and torch.equal(
        logits(emptied, b), logits(back, b)
    )


def test_settings_travel_and_bad_settings_are_refused():
    m = moe_saved()
    sd = m.state_dict()
    r = moe_replay()
    r.load_state_dict(sd)
    assert [
        (x.top_k, x.capacity_factor, x.balance, x.z_coef) for x in moe_layers(r)
    ] == [(1, 1.0, "shazeer", 0.01)] * 2
    bad = dict(sd)
    k = next(k for k in sd if k.endswith("moe._extra_state"))
    bad[k] = sd[k].clone()
    bad[k][0] = 9  # top_k 9 of 4 experts
    fresh = moe_replay()
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    with pytest.raises(ValueError, match="top_k"):
        fresh.load_state_dict(bad)
    layer = k[: -len("._extra_state")]
    now = fresh.state_dict()  # that layer kept its own (NaN: a capacity of None)
    assert all(
        torch.allclose(
            now[n].double(), before[n].double(), rtol=0, atol=0, equal_nan=True
        )
        for n in before
        if n.startswith(layer)
    )


def test_deepcopy_and_pickle_after_training():
    "MoE layers keep their last aux_loss for the backward, but copies and pickles leave it out; stored statistics are detached."
    m = moefy(bert_base(), num_experts=4)
    m.train()
    out = m(**bert_batches()[0])
    loss = out.loss + sum(
        x.aux_loss for x in moe_layers(m)
    )  # a forward in training: aux losses hold graphs
    c = copy.deepcopy(m)
    assert all(x.aux_loss is None for x in moe_layers(c)) and all(
        x.aux_loss is not None for x in moe_layers(m)
    )
    pickle.loads(pickle.dumps(m))
    buf = io.BytesIO()
    torch.save(m, buf)
    st = moe_layers(m)[0].last_stats
    assert st.aux_loss.grad_fn is None and all(
        v.grad_fn is None for v in st.losses.values()
    )
    loss.backward()  # the live aux_loss still trains the router
    assert moe_layers(m)[0].router.w_gate.grad is not None


def test_transformers_save_pretrained_then_padnotes_from_pretrained(tmp_path):
    """transformers' own save_pretrained of a moefied BERT keeps the tuners in config.json; transformers' from_pretrained builds a dense
    BERT (FFNs fresh) and padnotes warns when that model is converted again; padnotes.from_pretrained rebuilds the saved model exactly."""
    import json

    m = moe_saved()
    b = bert_batches()[0]
    m.save_pretrained(tmp_path)
    assert (
        json.loads((tmp_path / "config.json").read_text())["padnotes_tuners"][0][
            "config"
        ]["top_k"]
        == 1
    )
    dense = BertForSequenceClassification.from_pretrained(tmp_path)
    assert not torch.equal(logits(dense, b), logits(m, b))
    with pytest.warns(UserWarning, match="padnotes.from_pretrained"):
        moefy(copy.deepcopy(dense), num_experts=4)
    r = from_pretrained(dense, tmp_path)
    assert torch.equal(logits(r, b), logits(m, b))
    assert [(t["config"]["top_k"], t["layers"]) for t in r.config.padnotes_tuners] == [
        (1, ["bert.encoder.layer.0", "bert.encoder.layer.1"])
    ]
    assert torch.equal(
        logits(from_pretrained(bert_base(seed=3), tmp_path), b), logits(m, b)
    )
    from padnotes.tuners import unload

    unload(r)
    assert not hasattr(r.config, "padnotes_tuners")
