"""Traps where padnotes gave wrong numbers without a word, each now an error that names the cause or a behaviour that keeps
its promise: a task diff removed after the model changed, evaluation splits sorted by class, densities that keep nothing, and
the regime teaching task's construction."""

import numpy as np
import pytest
import torch

from padnotes.train import evaluate, fit
from padnotes.data import (
    IMAGE_DATASETS,
    REGIMES,
    TEXT_DATASETS,
    apply_regimes,
    assign_regimes,
    image_loaders,
    image_splits,
    load_tokenizer,
    text_loaders,
)
from padnotes.diff_pruning import (
    DiffPruningConfig,
    TaskDiff,
    applied_task_diff,
    get_diff_model,
    project_diff,
    remove_task_diff,
)
from padnotes.scoring import keep_masks
from test_diff_pruning import batches, bert, same, snap, trained


# --- a task diff removed after the model changed ----------------------------------------------------------------------------------
def applied():
    td = TaskDiff.from_model(trained(bert))
    base = bert().eval()
    before = snap(base)
    td.apply(base)
    return td, base, before


def test_remove_after_training_is_refused_and_loses_nothing():
    td, base, before = applied()
    fit(base, batches(2), lr=1e-2, device="cpu", progress=False)
    trained_state = snap(base)
    with pytest.raises(
        ValueError,
        match=r"of \d+ base tensors of BertForSequenceClassification changed since the diff was applied",
    ):
        remove_task_diff(base)
    assert applied_task_diff(base) is td and same(
        base, trained_state
    )  # refused: nothing touched
    remove_task_diff(base, force=True)
    assert applied_task_diff(base) is None
    assert not same(base, before)  # force says what it gives: the other changes stay


def test_remove_after_a_dtype_round_trip_is_refused():
    td, base, before = applied()
    base.half().float()
    with pytest.raises(ValueError, match="changed since the diff was applied"):
        remove_task_diff(base)


def test_remove_after_a_change_through_data_is_refused():
    "A change through .data escapes PyTorch's version counters; the stored entries themselves show it."
    td, base, before = applied()
    name, packed = next(iter(td.diffs.items()))
    p = dict(base.named_parameters())[name]
    p.data.view(-1)[packed.indices()[0]] += 1.0
    with pytest.raises(ValueError, match=name.replace(".", r"\.")):
        remove_task_diff(base)


def test_remove_when_untouched_is_exact():
    td, base, before = applied()
    remove_task_diff(base)
    assert same(base, before)


# --- evaluation splits in one fixed shuffled order --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_first_eval_batch_of_every_image_split_mixes_classes(name):
    ld = image_loaders(name, batch_size=64)
    for k in ("dev", "test"):
        y = next(iter(ld[k]))[1]
        assert torch.unique(y).tolist() == list(range(10)), (name, k)
        assert torch.bincount(y, minlength=10).max() <= 3 * len(y) / 10, (name, k)


@pytest.mark.parametrize("name", TEXT_DATASETS)
def test_first_eval_batch_of_every_text_split_mixes_classes(name):
    ld = text_loaders(name, tokenizer=load_tokenizer(), batch_size=32, max_len=16)
    n_classes = len(ld["classes"])
    whole = {k: torch.cat([b["labels"] for b in ld[k]]) for k in ("dev", "test")}
    for k in ("dev", "test"):
        y = next(iter(ld[k]))["labels"]
        share = torch.bincount(y, minlength=n_classes) / len(y)
        expect = torch.bincount(whole[k], minlength=n_classes) / len(whole[k])
        assert (share - expect).abs().max() < 0.2, (
            name,
            k,
            share,
            expect,
        )  # 64 snippets: within 0.2 of the split's mix


def test_eval_order_is_fixed_and_keeps_the_split():
    a, b = image_loaders("mnist5k"), image_loaders("mnist5k", seed=3)
    assert torch.equal(
        a["dev"].dataset.tensors[1], b["dev"].dataset.tensors[1]
    )  # the training seed does not move it
    sp = image_splits("mnist5k")
    assert sorted(a["dev"].dataset.tensors[1].tolist()) == sorted(
        sp["dev"].tensors[1].tolist()
    )


def test_a_prefix_reads_like_the_whole_split():
    "The readout that misled: one batch against the whole split, on a model that favours the first classes."
    ld = image_loaders("mnist5k", batch_size=64)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.arange(10, 0, -1).float())  # always predicts 0
    one, whole = (
        evaluate(model, ld["dev"], max_batches=1)["accuracy"],
        evaluate(model, ld["dev"])["accuracy"],
    )
    assert abs(one - whole) < 0.06, (one, whole)


# --- densities and ratios that keep nothing ---------------------------------------------------------------------------------------
def test_a_density_that_keeps_no_entry_is_refused_with_the_count():

    g = get_diff_model(bert(), DiffPruningConfig())
    with pytest.raises(
        ValueError, match=r"keeps round\(.*\) = 0 entries: give at least"
    ):
        project_diff(g, density=1e-9)
    with pytest.raises(ValueError, match="0 entries"):
        keep_masks({"w": torch.rand(100)}, 1e-4)
    assert int(keep_masks({"w": torch.rand(100)}, 0.0)["w"].sum()) == 0


# --- the regime teaching task -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("regimes", [2, 4, 8, 16])
def test_regimes_are_deterministic_balanced_and_leave_labels(regimes):
    plain, sp = image_splits("mnist5k"), image_splits("mnist5k", regimes=regimes)
    again = image_splits("mnist5k", regimes=regimes)
    for k in ("train", "dev", "test"):
        y, r = sp[k].tensors[1].numpy(), sp["regime"][k].numpy()
        assert np.array_equal(y, plain[k].tensors[1].numpy())  # labels untouched
        assert torch.equal(sp[k].tensors[0], again[k].tensors[0])  # deterministic
        for c in np.unique(y):
            counts = np.bincount(r[y == c], minlength=regimes)
            assert counts.max() - counts.min() <= 1, (
                k,
                c,
                counts,
            )  # every class spread evenly
    assert sp["regimes"] == list(REGIMES[:regimes])


def test_regime_transforms_are_the_named_ones():
    raw = torch.rand(5, 1, 6, 6)
    reg = np.array([0, 1, 2, 3, 15])
    out = apply_regimes(raw, reg)
    assert torch.equal(out[0], raw[0]) and torch.equal(out[1], 1 - raw[1])
    assert torch.equal(out[2], raw[2].rot90(1, (-2, -1)))
    assert torch.equal(out[4], 1 - raw[4].flip(-1).rot90(3, (-2, -1)))
    assert REGIMES[15] == "flip_rot270_invert"


def test_regime_mix_and_bad_input():
    y = np.repeat(np.arange(4), 100)
    r = assign_regimes(y, 2, mix=(0.9, 0.1))
    assert np.bincount(r).tolist() == [360, 40]
    with pytest.raises(ValueError, match="mix must hold 3"):
        assign_regimes(y, 3, mix=(1, 2))
    with pytest.raises(ValueError, match="regimes must be an int >= 1, got 0"):
        image_splits("digits", regimes=0)
    with pytest.raises(ValueError, match="must be square"):
        apply_regimes(torch.zeros(1, 1, 2, 3), np.array([2]))


# --- a saved checkpoint holds what trained, and padified masks as bits ------------------------------------------------------------
from pathlib import Path
from safetensors.torch import load_file
from padnotes.dyconv import dynamicize
from padnotes.pad import padify, partial_layers
from padnotes.tuners import (
    WEIGHTS_NAME,
    disable_tuners,
    from_pretrained,
    save_pretrained,
    set_tuners_enabled,
)
from test_pad import SmallNet, conv_data, moe_data, moe_model, out as pad_out


def folder_bytes(d):
    return sum(p.stat().st_size for p in Path(d).iterdir())


def tensor_bytes(d):
    return sum(
        t.numel() * t.element_size()
        for t in load_file(str(Path(d) / WEIGHTS_NAME)).values()
    )


def test_a_trained_head_does_not_pull_the_whole_base_into_the_file(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification
    from padnotes.adapters import AdapterConfig
    from padnotes.sparse_adapter import sparse_adapter_model

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=99,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=2,
    )
    m = sparse_adapter_model(
        BertForSequenceClassification(cfg),
        AdapterConfig(kind="pfeiffer", reduction_factor=4),
        train_modules=("classifier",),
    )
    fit(m, batches(2), lr=1e-2, device="cpu", progress=False)
    d = save_pretrained(m.eval(), tmp_path / "sa")
    saved = load_file(str(d / WEIGHTS_NAME))
    trained = {n: p for n, p in m.named_parameters() if p.requires_grad}
    buffers = dict(m.named_buffers())
    assert not any(
        "embeddings.word_embeddings.weight" in k for k in saved
    )  # the untouched base is not there
    bound = sum(p.numel() * 4 for p in trained.values()) + sum(
        b.numel() * b.element_size() for b in buffers.values()
    )
    assert tensor_bytes(d) <= bound
    assert (
        d / WEIGHTS_NAME
    ).stat().st_size <= bound + 16_384  # plus the safetensors header
    torch.manual_seed(0)
    fresh = BertForSequenceClassification(cfg)
    back = from_pretrained(fresh, d).eval()
    x = batches(1)[0][0]
    assert torch.equal(back(x).logits, m(x).logits)


@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5])
def test_a_padified_checkpoint_stores_masks_as_bits_and_is_smaller(ratio, tmp_path):
    torch.manual_seed(0)
    full = dynamicize(SmallNet(), copy_weights=False, temperature=1.0).eval()
    d_full = save_pretrained(full, tmp_path / "full")
    torch.manual_seed(0)
    m = dynamicize(SmallNet(), copy_weights=False, temperature=1.0)
    padify(m, ratio, "random", seed=0)
    m.eval()
    d = save_pretrained(m, tmp_path / "pad")
    saved = load_file(str(d / WEIGHTS_NAME))
    for name, l in partial_layers(m).items():
        n, k = l.weight_mask.numel(), int(l.weight_mask.sum())
        assert (
            saved[f"{name}.weight_mask_bits"].numel() == (n + 7) // 8
        )  # one bit an entry
        assert (
            saved[f"{name}.static_weight_kept"].numel() == n - k
        )  # static values where static
        assert saved[f"{name}.weight_kept"].shape == (
            l.num_kernels,
            k,
        )  # K values where dynamic
        assert f"{name}.weight_mask" not in saved and f"{name}.weight" not in saved
    assert folder_bytes(d) < folder_bytes(d_full)
    torch.manual_seed(5)
    back = from_pretrained(SmallNet(), d).eval()
    x = conv_data(1)[0][0]
    assert torch.equal(back(x), m(x))  # exactly the saved model


def test_a_padified_moe_round_trips_exactly_through_the_compact_file(tmp_path):
    m = moe_model()
    padify(m, 0.3, "random", seed=0)
    d = save_pretrained(m.eval(), tmp_path / "padmoe")
    assert any(k.endswith("w1_mask_bits") for k in load_file(str(d / WEIGHTS_NAME)))
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(3)
    cfg = BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=32,
        num_labels=2,
    )
    back = from_pretrained(BertForSequenceClassification(cfg), d).eval()
    b = moe_data(1)[0]
    assert torch.equal(pad_out(back, b), pad_out(m, b))


# --- "switched off" says when it is not the original ------------------------------------------------------------------------------
def test_switching_off_after_the_base_trained_warns_and_names_it():
    import warnings

    torch.manual_seed(0)
    net = dynamicize(
        SmallNet(), copy_weights=False, temperature=1.0
    )  # freeze_base=False: stem and fc train
    fit(net, conv_data(2), lr=1e-2, device="cpu", progress=False)
    with pytest.warns(
        UserWarning,
        match=r"tensors outside the tuned layers changed since the method was put in \(fc\.bias",
    ):
        with disable_tuners(net):
            pass
    with pytest.warns(UserWarning, match="not the original model's"):
        set_tuners_enabled(net, False)
    set_tuners_enabled(net, True)
    torch.manual_seed(0)
    from padnotes.dyconv import DynamicConvConfig
    from padnotes.tuners import inject

    frozen = inject(
        SmallNet(),
        DynamicConvConfig(copy_weights=False, temperature=1.0, freeze_base=True),
    )
    fit(frozen, conv_data(2), lr=1e-2, device="cpu", progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with disable_tuners(frozen):
            pass  # nothing outside changed: no warning


# --- save_peft keeps a trained head, peft as the oracle ---------------------------------------------------------------------------
def tiny_bert_classifier(seed=0):
    "A fresh tiny BERT classifier (its own config object: a tuned model records its tuners in its config)."
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(
        BertConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=2,
            hidden_dropout_prob=0.0,
            attention_probs_dropout_prob=0.0,
        )
    )


def test_save_peft_stores_a_trained_head_as_peft_does(tmp_path):
    import json, warnings

    peft = pytest.importorskip("peft")
    from padnotes.adapters import AdapterConfig, load_peft, save_peft
    from padnotes.sparse_adapter import sparse_adapter_model

    m = sparse_adapter_model(
        tiny_bert_classifier(),
        AdapterConfig(kind="lora", r=4, alpha=8, sparse_ratio=0.5, criterion="random"),
        train_modules=("classifier",),
    )
    fit(m, batches(3), lr=1e-2, device="cpu", progress=False)
    m.eval()
    d = save_peft(m, tmp_path / "lora_head")
    assert json.loads((d / "adapter_config.json").read_text())["modules_to_save"] == [
        "classifier"
    ]
    x = batches(1, seed=4)[0][0]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("error")
        want = m(x).logits
        got = (
            peft.PeftModel.from_pretrained(tiny_bert_classifier(), str(d))
            .eval()(x)
            .logits
        )
        back = load_peft(tiny_bert_classifier(), d).eval()(x).logits
    assert (got - want).abs().max() < 1e-5
    assert (back - want).abs().max() < 1e-5


def test_save_peft_refuses_what_peft_cannot_hold(tmp_path):
    from padnotes.adapters import AdapterConfig, get_adapter_model, save_peft

    ok = get_adapter_model(
        tiny_bert_classifier(),
        AdapterConfig(
            kind="lora", r=4, alpha=8, target_modules=["attention.self.query"]
        ),
    )
    ok.bert.encoder.layer[0].attention.self.key.weight.requires_grad_(
        True
    )  # a module beside the LoRA layer: peft stores it
    d = save_peft(ok, tmp_path / "ok")
    import json

    assert json.loads((d / "adapter_config.json").read_text())["modules_to_save"] == [
        "bert.encoder.layer.0.attention.self.key"
    ]
    bad = get_adapter_model(
        tiny_bert_classifier(), AdapterConfig(kind="lora", r=4, alpha=8)
    )
    bad.bert.encoder.layer[0].attention.self.register_parameter(
        "own", torch.nn.Parameter(torch.zeros(3))
    )
    with pytest.raises(
        ValueError, match="hold LoRA layers, which peft's modules_to_save cannot store"
    ):
        save_peft(bad, tmp_path / "bad")


# --- merged models go through save_pretrained / from_pretrained like every tuned model --------------------------------------------
def test_a_merged_padified_conv_saves_and_loads_without_a_hand_built_shell(tmp_path):
    from padnotes.pad import merge_for_inference

    torch.manual_seed(0)
    m = dynamicize(SmallNet(), copy_weights=False, temperature=1.0)
    padify(m, 0.3, "random", seed=0)
    merged = merge_for_inference(m.eval())
    d = save_pretrained(merged, tmp_path / "merged")
    torch.manual_seed(7)
    back = from_pretrained(SmallNet(), d)
    x = conv_data(1)[0][0]
    with torch.no_grad():
        assert torch.equal(back(x), merged(x))
    assert folder_bytes(d) < folder_bytes(save_pretrained(m, tmp_path / "tuned"))


def test_a_merged_pad_moe_and_a_merged_lora_round_trip(tmp_path):
    from padnotes.adapters import AdapterConfig, get_adapter_model
    from padnotes.pad import merge_for_inference
    from padnotes.tuners import merge_and_unload

    m = moe_model()
    padify(m, 0.5, "random", seed=0)
    merged = merge_for_inference(m.eval())
    back = from_pretrained(tiny_moe_base(), save_pretrained(merged, tmp_path / "moe"))
    b = moe_data(1)[0]
    assert torch.equal(pad_out(back, b), pad_out(merged, b))
    lora = get_adapter_model(
        tiny_bert_classifier(), AdapterConfig(kind="lora", r=4, alpha=8)
    )
    with torch.no_grad():
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.normal_()
    plain = merge_and_unload(lora.eval())
    back = from_pretrained(
        tiny_bert_classifier(), save_pretrained(plain, tmp_path / "lora")
    )
    x = batches(1)[0][0]
    with torch.no_grad():
        assert torch.equal(back(x).logits, plain(x).logits)


def test_a_merged_model_without_its_record_names_the_cause(tmp_path):
    from padnotes.pad import merge_for_inference

    torch.manual_seed(0)
    m = padify(dynamicize(SmallNet(), copy_weights=False), 0.3, "random", seed=0)
    merged = merge_for_inference(m)
    merged.__dict__.pop("padnotes_deployed")
    with pytest.raises(
        ValueError, match="is a deployed copy .* that does not record how it was made"
    ):
        save_pretrained(merged, tmp_path / "x")


def tiny_moe_base(seed=3):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
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


# --- a transformers folder of a tuned model rebuilds from the folder alone ---------------------------------------------------------
def test_from_pretrained_with_the_folder_alone(tmp_path):
    from test_reload import bert_batches, logits, moe_saved

    m = moe_saved()
    b = bert_batches()[0]
    m.save_pretrained(tmp_path / "hf")
    r = from_pretrained(tmp_path / "hf")
    assert torch.equal(logits(r, b), logits(m, b))
    torch.manual_seed(0)
    d = save_pretrained(dynamicize(SmallNet(), copy_weights=False), tmp_path / "pn")
    with pytest.raises(
        ValueError,
        match=r"holds the method's tensors only .* from_pretrained\(base, folder\)",
    ):
        from_pretrained(d)


# --- eval-mode scoring, the authors' setting -------------------------------------------------------------------------------------
def test_eval_mode_scoring_gives_the_masks_of_the_model_in_eval_mode():
    from padnotes.adapters import AdapterConfig, get_adapter_model, prune_adapters
    from transformers import BertConfig, BertForSequenceClassification

    def model(dropout):
        torch.manual_seed(0)
        cfg = BertConfig(
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=64,
            max_position_embeddings=64,
            num_labels=2,
            hidden_dropout_prob=dropout,
            attention_probs_dropout_prob=dropout,
        )
        return get_adapter_model(
            BertForSequenceClassification(cfg),
            AdapterConfig(kind="pfeiffer", reduction_factor=4),
        )

    data = batches(2)
    eval_masks = {}
    for mode in (
        "train",
        "eval",
    ):  # the model's own mode before scoring does not matter
        m = model(0.3)
        getattr(m, mode)()
        eval_masks[mode] = prune_adapters(
            m, 0.5, "snip", data=data, n_batches=2, seed=0, train=False
        )
        assert m.training == (mode == "train")  # restored
    assert all(
        torch.equal(eval_masks["train"][k], eval_masks["eval"][k])
        for k in eval_masks["eval"]
    )
    no_dropout = prune_adapters(
        model(0.0), 0.5, "snip", data=data, n_batches=2, seed=0, train=False
    )
    assert all(
        torch.equal(no_dropout[k], eval_masks["eval"][k]) for k in no_dropout
    )  # eval mode: dropout plays no part
    in_train = [
        prune_adapters(
            model(0.3), 0.5, "snip", data=data, n_batches=2, seed=s, train=True
        )
        for s in (0, 1)
    ]
    assert any(
        not torch.equal(in_train[0][k], in_train[1][k]) for k in in_train[0]
    )  # train mode: dropout draws move them
