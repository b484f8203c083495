"""The bytes of every kind of saved file padnotes writes, for one model of each family, each written by the call a user makes and
measured on disk (the files' sizes, headers included):

  ResNet-8 (width 16): the static network (safetensors of its state_dict), fully dynamic (dynamicize, K = 4), padified at 0.3,
  merged at 0.3 (merge_for_inference), each through save_pretrained;
  MiniLM-L6: the static model, LoRA (r = 8 on query/value) without and with a trained classifier, through save_pretrained and
  save_peft (peft's format).

    python runs/saved_bytes.py          # prints the table and writes runs/saved_bytes_cpu.csv
"""

import tempfile
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import save_file

from padnotes.adapters import AdapterConfig, get_adapter_model, save_peft
from padnotes.data import load_minilm, resnet8
from padnotes.dyconv import dynamicize
from padnotes.pad import merge_for_inference, padify
from padnotes.tuners import save_pretrained

OUT = Path(__file__).with_name("saved_bytes_cpu.csv")


def folder_bytes(d) -> int:
    return sum(p.stat().st_size for p in Path(d).rglob("*") if p.is_file())


def static_bytes(model, tmp) -> int:
    path = Path(tmp) / "static.safetensors"
    save_file(
        {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()},
        str(path),
    )
    return path.stat().st_size


def main():
    torch.manual_seed(0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        net = resnet8()
        rows.append(dict(model="ResNet-8", kind="static", bytes=static_bytes(net, tmp)))
        dyn = dynamicize(resnet8(), copy_weights=False, seed=0)
        rows.append(
            dict(
                model="ResNet-8",
                kind="fully dynamic (K=4)",
                bytes=folder_bytes(save_pretrained(dyn, f"{tmp}/dyn")),
            )
        )
        pad = padify(
            dynamicize(resnet8(), copy_weights=False, seed=0), 0.3, "random", seed=0
        ).eval()
        rows.append(
            dict(
                model="ResNet-8",
                kind="padified at 0.3",
                bytes=folder_bytes(save_pretrained(pad, f"{tmp}/pad")),
            )
        )
        merged = merge_for_inference(pad)
        rows.append(
            dict(
                model="ResNet-8",
                kind="merged at 0.3",
                bytes=folder_bytes(save_pretrained(merged, f"{tmp}/merged")),
            )
        )
        _, mini = load_minilm(2)
        rows.append(
            dict(model="MiniLM-L6", kind="static", bytes=static_bytes(mini, tmp))
        )
        for head in (False, True):
            _, m = load_minilm(2)
            lora = get_adapter_model(
                m,
                AdapterConfig(
                    kind="lora", r=8, alpha=16, target_modules=["query", "value"]
                ),
            )
            for p in lora.classifier.parameters():
                p.requires_grad_(head)
            tag = "LoRA with a trained head" if head else "LoRA"
            rows.append(
                dict(
                    model="MiniLM-L6",
                    kind=f"{tag} (save_pretrained)",
                    bytes=folder_bytes(save_pretrained(lora, f"{tmp}/l{head}")),
                )
            )
            rows.append(
                dict(
                    model="MiniLM-L6",
                    kind=f"{tag} (save_peft)",
                    bytes=folder_bytes(save_peft(lora, f"{tmp}/p{head}")),
                )
            )
    df = pd.DataFrame(rows)
    df.to_csv(OUT, index=False)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
