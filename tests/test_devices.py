"""Device mismatches, caught without a GPU: layers built and run on the meta device fail on any tensor created on the CPU by default
(torch.zeros(...) without device=...). Layers whose forward needs data (MoE's bincount, PAD's partition counts) cannot run on meta;
scripts/device_check.py runs them on a real GPU."""

import pytest, torch
from torch import nn
from transformers import BertConfig, BertForSequenceClassification
from padnotes.adapters import AdapterConfig, Bottleneck, LoRALinear, get_adapter_model
from padnotes.diff_pruning import (
    DiffLayer,
    DiffPruningConfig,
    expected_l0,
    get_diff_model,
    hard_concrete,
    l0_norm,
)
from padnotes.dyconv import DynamicConv2d


def run(layer, x):
    y = layer(x)
    y = y.logits if hasattr(y, "logits") else y
    y.float().sum().backward()
    assert y.device.type == "meta"
    return y


@pytest.mark.parametrize("mode", ["kernel", "output"])
def test_dynamic_conv_on_meta(mode):
    with torch.device("meta"):
        run(
            DynamicConv2d(8, 8, 3, padding=1, num_kernels=4, mode=mode),
            torch.randn(2, 8, 6, 6),
        )


@pytest.mark.parametrize(
    "make",
    [
        lambda: LoRALinear(nn.Linear(8, 8), r=2),
        lambda: Bottleneck(8, 2),
        lambda: DiffLayer(nn.Linear(8, 8), structured=True),
        lambda: DiffLayer(nn.Linear(8, 8)).eval(),
        lambda: DiffLayer(nn.Embedding(20, 8), mode="masked"),
        lambda: DiffLayer(nn.LayerNorm(8), mode="dense"),
    ],
)
def test_adapter_and_diff_layers_on_meta(make):
    with torch.device("meta"):
        layer = make()
        run(
            layer,
            torch.randint(0, 20, (3, 5))
            if isinstance(getattr(layer, "base_layer", None), nn.Embedding)
            else torch.randn(3, 8),
        )


def test_gates_on_meta():
    with torch.device("meta"):
        a = torch.zeros(5, requires_grad=True)
        assert (
            hard_concrete(a).device.type == "meta"
            and expected_l0(a).device.type == "meta"
        )


@pytest.mark.parametrize("method", ["diff", "adapter"])
def test_a_tuned_bert_on_meta(method):
    with torch.device("meta"):
        m = BertForSequenceClassification(
            BertConfig(
                vocab_size=99,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=64,
            )
        )
        if method == "diff":
            get_diff_model(m, DiffPruningConfig(structured=True))
            assert l0_norm(m).device.type == "meta"
        else:
            get_adapter_model(m, AdapterConfig(kind="houlsby", bottleneck=4))
        run(m.train(), torch.randint(0, 99, (2, 7)))
