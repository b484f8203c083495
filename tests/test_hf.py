"Hugging Face Trainer interop: the MoE aux loss in the loss the Trainer optimises, temperature annealing and router loads as TrainerCallbacks."

import subprocess, sys
import pytest, torch, torch.nn as nn, torch.nn.functional as F
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)
from transformers.modeling_outputs import ImageClassifierOutputWithNoAttention
from padnotes.train import Callback
from padnotes.dyconv import TemperatureSchedule, dynamicize, dynamic_layers
from padnotes.moe import MoEAuxLoss, moefy, moe_layers
from padnotes.hf import FitCallback, RouterLoadCallback, TemperatureCallback


def _args(tmp_path, **kw):
    base = dict(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    return TrainingArguments(**(base | kw))


def _tiny_bert(seed=0):
    torch.manual_seed(seed)
    cfg = BertConfig(
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
    return BertForSequenceClassification(cfg)


def _token_data(n, seq=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        dict(
            input_ids=torch.randint(0, 99, (seq,), generator=g),
            labels=torch.tensor(i % 2),
        )
        for i in range(n)
    ]


class _Probe(Trainer):
    "Keeps, per training forward, the loss compute_loss returned (what is backpropagated) and the model's output."

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = []

    def compute_loss(self, model, inputs, return_outputs=False, **kw):
        loss, out = super().compute_loss(model, inputs, return_outputs=True, **kw)
        self.seen.append(
            dict(
                loss=loss.detach().clone(),
                logits=out["logits"].detach().clone(),
                labels=inputs["labels"].clone(),
                aux=out.get("aux_loss"),
            )
        )
        return (loss, out) if return_outputs else loss


def test_trainer_optimises_the_moe_aux_loss(tmp_path):
    m = moefy(_tiny_bert(), num_experts=4, top_k=2, noisy_gating=False)
    tr = _Probe(
        model=m, args=_args(tmp_path, max_steps=3), train_dataset=_token_data(12)
    )
    tr.train()
    assert len(tr.seen) == 3
    for s in tr.seen:
        task = F.cross_entropy(
            s["logits"], s["labels"]
        )  # the loss without the aux term, on the same batch
        assert s["aux"] is not None and s["aux"].item() > 0
        torch.testing.assert_close(s["loss"], task + s["aux"].detach())
        assert s["loss"].item() > task.item()
    # and the routers trained: their parameters moved
    first = moefy(_tiny_bert(), num_experts=4, top_k=2, noisy_gating=False)
    assert all(
        not torch.equal(a.router.w_gate, b.router.w_gate)
        for a, b in zip(moe_layers(m), moe_layers(first))
    )


def test_trainer_without_aux_in_output_optimises_the_task_loss(tmp_path):
    m = moefy(
        _tiny_bert(),
        num_experts=4,
        top_k=2,
        noisy_gating=False,
        aux_loss_in_output=False,
    )
    tr = _Probe(
        model=m, args=_args(tmp_path, max_steps=2), train_dataset=_token_data(8)
    )
    tr.train()
    for s in tr.seen:
        assert s["aux"] is None
        torch.testing.assert_close(s["loss"], F.cross_entropy(s["logits"], s["labels"]))


def test_router_load_callback_counts_every_training_forward(tmp_path):
    m = moefy(_tiny_bert(), num_experts=4, top_k=2)
    rec = RouterLoadCallback()
    # 8 examples, batch 2, gradient accumulation 2: 4 forwards but 2 optimizer steps per epoch
    Trainer(
        model=m,
        args=_args(
            tmp_path,
            per_device_train_batch_size=2,
            gradient_accumulation_steps=2,
            num_train_epochs=2,
        ),
        train_dataset=_token_data(8, seq=10),
        callbacks=[rec],
    ).train()
    assert len(rec.loads) == 2
    for ld in rec.loads:
        assert ld.shape == (2, 4)
        assert torch.equal(
            ld.sum(1), torch.full((2,), 8 * 10 * 2.0)
        )  # every token of every forward, k=2 assignments each
    assert rec.loads[0].min() > 0


class _CNN(nn.Module):
    "A small CNN that returns a ModelOutput with a loss, as the Trainer wants."

    def __init__(self):
        super().__init__()
        self.stem, self.conv1, self.conv2 = (
            nn.Conv2d(1, 8, 3, padding=1),
            nn.Conv2d(8, 8, 3, padding=1),
            nn.Conv2d(8, 8, 3, padding=1),
        )
        self.head = nn.Linear(8, 3)

    def forward(self, pixel_values, labels=None):
        x = F.relu(self.conv2(F.relu(self.conv1(F.relu(self.stem(pixel_values))))))
        logits = self.head(x.mean((2, 3)))
        return ImageClassifierOutputWithNoAttention(
            loss=None if labels is None else F.cross_entropy(logits, labels),
            logits=logits,
        )


def _images(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        dict(pixel_values=torch.randn(1, 8, 8, generator=g), labels=torch.tensor(i % 3))
        for i in range(n)
    ]


class _TauSeen(Callback):
    "Records the temperature each layer has when a batch starts (after the schedule has set it)."

    def before_fit(self, tr):
        self.taus = []

    def before_batch(self, tr):
        self.taus.append({l.temperature for l in dynamic_layers(tr.model).values()})


def test_temperature_callback_anneals_by_steps(tmp_path):
    torch.manual_seed(0)
    cnn = dynamicize(_CNN(), num_kernels=3)
    assert {l.temperature for l in dynamic_layers(cnn).values()} == {30.0}
    temp, seen = TemperatureCallback(start=30, end=1, steps=4), _TauSeen()
    Trainer(
        model=cnn,
        args=_args(tmp_path, max_steps=7),
        train_dataset=_images(40),
        callbacks=[temp, FitCallback(seen)],
    ).train()
    ref = TemperatureSchedule(
        30, 1, steps=4
    )  # the same schedule as padnotes.train.fit's
    assert [h["step"] for h in temp.history] == list(range(7))
    assert (
        [h["temperature"] for h in temp.history]
        == [ref.temperature_at(s) for s in range(7)]
        == [30, 22.75, 15.5, 8.25, 1, 1, 1]
    )
    assert [t.pop() for t in seen.taus] == [
        ref.temperature_at(s) for s in range(7)
    ]  # set before each step's forward
    assert {l.temperature for l in dynamic_layers(cnn).values()} == {1.0}


def test_temperature_callback_anneals_by_epochs(tmp_path):
    torch.manual_seed(0)
    cnn = dynamicize(_CNN(), num_kernels=3)
    temp = TemperatureCallback(start=10, end=2, epochs=2)
    Trainer(
        model=cnn,
        args=_args(tmp_path, num_train_epochs=3),
        train_dataset=_images(8),
        callbacks=[temp],
    ).train()
    assert [(h["epoch"], h["temperature"]) for h in temp.history] == [
        (0, 10.0),
        (1, 6.0),
        (2, 2.0),
    ]
    assert {l.temperature for l in dynamic_layers(cnn).values()} == {2.0}


def test_callbacks_refuse_what_they_cannot_do(tmp_path):
    with pytest.raises(ValueError, match="after_loss"):
        FitCallback(MoEAuxLoss())
    with pytest.raises(TypeError, match="padnotes.train.Callback"):
        FitCallback(object())
    with pytest.raises(ValueError, match="exactly one of epochs or steps"):
        TemperatureCallback(30, 1)
    tr = Trainer(
        model=_CNN(),
        args=_args(tmp_path, max_steps=1),
        train_dataset=_images(4),
        callbacks=[TemperatureCallback(steps=2)],
    )
    with pytest.raises(ValueError, match="no DynamicConv2d"):
        tr.train()


def test_only_padnotes_hf_imports_transformers():
    code = (
        "import sys; import padnotes.dyconv, padnotes.moe, padnotes.tuners; a = 'transformers' in sys.modules; "
        "import padnotes.hf; print(a, 'transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "True"], out
