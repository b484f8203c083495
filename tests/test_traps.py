"""The traps a user of padnotes in their own project met, each now a warning or an error that names the cause: IMP scores that
cannot rank (copied kernels or experts), one batch passed where batches are expected, dtype errors while scoring, converting a model
that is already dynamic, and counting the parameters of a merged model."""

import warnings

import pytest
import torch

from padnotes.core import count_buffers, count_params, deploy_numel
from padnotes.dyconv import dynamicize
from padnotes.moe import moefy
from padnotes.pad import merge_for_inference, mode_scores, padify
from padnotes.scoring import UnrankableScoresWarning, unrankable
from padnotes.tuners import print_trainable_parameters
from test_pad import SmallNet, conv_data, conv_model, moe_data
from test_reload import bert_base


def test_imp_right_after_dynamicize_warns():
    torch.manual_seed(0)
    with pytest.warns(UnrankableScoresWarning, match="2 of 2 layers.*identical copies"):
        padify(dynamicize(SmallNet()), 0.3, "imp", data=conv_data(), n_batches=2)


def test_imp_right_after_moefy_warns():
    with pytest.warns(UnrankableScoresWarning, match="identical copies"):
        padify(
            moefy(bert_base(), num_experts=4, noisy_gating=False),
            0.3,
            "imp",
            data=moe_data(),
            n_batches=2,
        )


def test_generic_check_in_scoring_sees_tiny_scores():
    "Outside PAD-Net (any criterion through padnotes.scoring.score), scores that are all near zero warn too."
    from padnotes.scoring import score

    lin = torch.nn.Linear(4, 3)
    x = torch.randn(8, 4)
    y = torch.randint(0, 3, (8,))
    with torch.no_grad():
        lin.weight.zero_()  # SNIP: |w * dL/dw| = 0 everywhere
    with pytest.warns(UnrankableScoresWarning, match="near zero"):
        score("snip", {"w": lin.weight}, model=lin, data=[(x, y)])


def test_kernels_that_differ_rank_silently_and_the_warning_can_be_silenced():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnrankableScoresWarning)
        padify(
            conv_model(), 0.3, "imp", data=conv_data(), n_batches=2
        )  # kernels initialised apart
        torch.manual_seed(0)
        padify(
            dynamicize(SmallNet(), noise=0.05, seed=0),
            0.3,
            "imp",
            data=conv_data(),
            n_batches=2,
        )  # symmetry broken
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter(
            "ignore", UnrankableScoresWarning
        )  # the documented silencer
        torch.manual_seed(0)
        padify(dynamicize(SmallNet()), 0.3, "imp", data=conv_data(), n_batches=2)


def test_unrankable_reasons():
    assert "near zero" in unrankable({"a": torch.full((10,), 1e-9)})
    assert "share one value" in unrankable(
        {"a": torch.cat([torch.ones(80), torch.rand(20)])}
    )
    assert unrankable({"a": torch.rand(100)}) is None


def test_one_batch_instead_of_batches_is_named():
    x, y = conv_data()[0]
    m = padify(conv_model(), 1.0, "random")
    for one, what in (
        ((x, y), "one \\(inputs, labels\\) pair"),
        (dict(input=x, labels=y), "one dict"),
        (x, "one tensor"),
    ):
        with pytest.raises(
            TypeError, match=f"iterable of batches.*{what}.*data=\\[batch\\]"
        ):
            mode_scores(m, "imp", data=one)


def test_dtype_error_while_scoring_names_the_dtypes():
    m = padify(conv_model(), 1.0, "random")
    data = [(x.double(), y) for x, y in conv_data()]
    with pytest.raises(
        ValueError,
        match="batch 0.*parameters are float32 and the batch's floating tensors are \\['float64'\\]",
    ):
        mode_scores(m, "imp", data=data)


def test_dynamicize_twice_says_why():
    m = conv_model()
    with pytest.raises(ValueError, match="already dynamic \\(2 DynamicConv2d layers"):
        dynamicize(m)


def test_merged_counts_say_parameters_and_buffers_apart(capsys):
    m = padify(conv_model(), 0.3, "random")
    merged = merge_for_inference(m)
    with pytest.warns(UserWarning, match="keep their weights as buffers"):
        n = count_params(merged)
    assert n + count_buffers(merged) >= deploy_numel(merged) > n
    print_trainable_parameters(merged)
    assert f"buffers: {count_buffers(merged):,}" in capsys.readouterr().out
