"""Issue 16, step 5: the PAD-Net pilot at sizes a CPU cannot afford, for one GPU in at most 10 minutes. Fashion-MNIST: ResNet-8 at
widths 16 and 32 on the whole training split (55,000 images), static vs fully dynamic DY-Conv (K = 4, temperature 30 -> 1 over the
first third), 8 epochs, 5 seeds; Rotten Tomatoes: dense MiniLM-L6 vs MoE with 4 copied experts (top-2), 8,000 snippets, 3 epochs,
3 seeds. The dev split decides; the test split is recorded, never used for choices.

Runs in order of priority and starts no new run once `--budget` seconds (default 540) have passed, so the whole call stays within
10 minutes; rows are appended to runs/pad_pilot_gpu.csv as they finish and a second call resumes.

    python runs/pad_pilot_gpu.py                 # on the machine with the GPU
    python runs/pad_pilot_gpu.py --tiny --device cpu --out /tmp/p.csv   # seconds: checks the script without a GPU
"""

import argparse, csv, time
from pathlib import Path


from padnotes.core import count_params, get_device, set_seed
from padnotes.train import AddLoss, evaluate, fit
from padnotes.data import image_loaders, load_minilm, text_loaders, resnet8
from padnotes.dyconv import TemperatureSchedule
from padnotes.experiments.pad import moe_aux_loss, dynamicize_model
from padnotes.experiments.results import append_row
from padnotes.moe import moefy

FIELDS = [
    "task",
    "width",
    "train",
    "epochs",
    "model",
    "seed",
    "params",
    "dev_acc",
    "test_acc",
    "seconds",
    "device",
]


def grid(tiny: bool) -> list[dict]:
    if tiny:
        return [
            dict(task="fashion_mnist", width=4, train=256, epochs=1, model=m, seed=0)
            for m in ("static", "dynamic")
        ] + [
            dict(task="rotten_tomatoes", width=0, train=32, epochs=1, model=m, seed=0)
            for m in ("dense", "moe_copy")
        ]
    fm = [
        dict(task="fashion_mnist", width=w, train=None, epochs=8, model=m, seed=s)
        for s in range(5)
        for w in (16, 32)
        for m in ("static", "dynamic")
    ]
    rt = [
        dict(task="rotten_tomatoes", width=0, train=8000, epochs=3, model=m, seed=s)
        for s in range(3)
        for m in ("dense", "moe_copy")
    ]
    return [r for pair in zip(fm[: len(rt)], rt) for r in pair] + fm[
        len(rt) :
    ]  # interleaved: both tasks get seeds early


def run(g: dict, device, tiny: bool) -> dict:
    t0 = time.time()
    set_seed(g["seed"])
    if g["task"] == "fashion_mnist":
        dls = image_loaders(
            "fashion_mnist",
            batch_size=128,
            subset=dict(
                train=g["train"], dev=512 if tiny else None, test=512 if tiny else None
            ),
            seed=0,
        )
        net = resnet8(width=g["width"])
        cbs = []
        if g["model"] == "dynamic":
            dynamicize_model(net, 4, g["seed"])
            cbs = [
                TemperatureSchedule(
                    30.0, 1.0, steps=max(1, g["epochs"] * len(dls["train"]) // 3)
                )
            ]
        lr = 3e-3
    else:
        tok, net = load_minilm(2, seed=g["seed"])
        dls = text_loaders(
            "rotten_tomatoes",
            tokenizer=tok,
            max_len=48,
            batch_size=32,
            subset=dict(train=g["train"], dev=500, test=500),
            seed=0,
        )
        cbs = []
        if g["model"] == "moe_copy":
            moefy(net, num_experts=4, top_k=2, init="copy", seed=g["seed"])
            cbs = [AddLoss(moe_aux_loss)]
        lr = 1e-4
    dls["train"].generator.manual_seed(g["seed"])
    fit(
        net,
        dls["train"],
        epochs=g["epochs"],
        lr=lr,
        cbs=cbs,
        device=device,
        progress=False,
    )
    return dict(
        g,
        train=len(dls["train"].dataset),
        params=count_params(net),
        dev_acc=evaluate(net, dls["dev"])["accuracy"],
        test_acc=evaluate(net, dls["test"])["accuracy"],
        seconds=round(time.time() - t0, 1),
        device=str(device),
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument(
        "--budget",
        type=float,
        default=540.0,
        help="seconds after which no new run starts",
    )
    ap.add_argument("--out", default=str(Path(__file__).with_name("pad_pilot_gpu.csv")))
    a = ap.parse_args(argv)
    device, out, t_start = get_device(a.device), Path(a.out), time.time()
    key = lambda r: (
        r["task"],
        int(r["width"]),
        int(r["epochs"]),
        r["model"],
        int(r["seed"]),
    )
    done = set()
    if out.exists():
        with out.open() as f:
            done = {key(r) for r in csv.DictReader(f)}
    todo = [g for g in grid(a.tiny) if key(g) not in done]
    print(f"{len(done)} rows done, {len(todo)} to run on {device}", flush=True)
    for i, g in enumerate(todo):
        if time.time() - t_start > a.budget:
            print(
                f"budget of {a.budget:.0f} s reached: {len(todo) - i} runs left for the next call",
                flush=True,
            )
            break
        row = run(g, device, a.tiny)
        append_row(out, {k: row.get(k) for k in FIELDS})  # the file's column order
        print(f"[{i + 1}/{len(todo)}] {row}", flush=True)
    print(f"done in {time.time() - t_start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
