"""The device check: on one device (the GPU when there is one), the exactness of every method's fast path against its reference, every
chapter's benchmark, the explorer's slider, and the notebooks tagged `#| cuda`, into one JSON file. Each section is timed and fails on
its own (the file records the error and the next section runs).

    bash scripts/run.sh device-check                        # install, then the full check on the GPU (sized for 8 minutes; not yet run on one)
    python scripts/device_check.py --device cpu --size tiny  # seconds: what CI runs, to keep the script working without a GPU
"""

import argparse, json, os, platform, subprocess, sys, time, traceback
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _close(a, b, tol):
    d = (a - b).abs().max().item()
    if not d <= tol:
        raise AssertionError(f"difference {d:.3g} above {tol:g}")
    return d


def exactness(device, tiny):
    "Fast paths against their references, on the device: differences (max abs) per check."
    from torch import nn
    from padnotes.core import set_seed
    from padnotes.dyconv import DynamicConv2d, dyconv_reference
    from padnotes.moe import MoE, moe_reference
    from padnotes.pad import PartialDynamicConv2d, MergedPartialConv2d
    from padnotes.scoring import keep_masks
    from padnotes.adapters import LoRALinear
    from padnotes.diff_pruning import (
        DiffPruningConfig,
        TaskDiff,
        fit_diff,
        get_diff_model,
        project_diff,
        remove_task_diff,
    )

    out = {}
    set_seed(0)
    x = torch.randn(4 if tiny else 32, 16, 12, 12, device=device, requires_grad=True)
    for mode in ("kernel", "output"):
        layer = DynamicConv2d(16, 16, 3, padding=1, num_kernels=4, mode=mode).to(device)
        y, r = layer(x), dyconv_reference(layer, x)
        (g,) = torch.autograd.grad(y.sum(), x)
        (gr,) = torch.autograd.grad(r.sum(), x)
        out[f"dyconv {mode} vs per-sample loop"] = max(
            _close(y, r, 1e-4), _close(g, gr, 1e-4)
        )
    moe = MoE(32, 64, num_experts=4, top_k=2).to(device).eval()
    t = torch.randn(64, 32, device=device)
    with torch.no_grad():
        out["moe sorted dispatch vs loop"] = _close(
            moe(t)[0], moe_reference(moe, t), 1e-5
        )
    dy = (
        DynamicConv2d(16, 16, 3, padding=1, bias=False, num_kernels=4).to(device).eval()
    )
    p = PartialDynamicConv2d.from_dynamic(dy).to(device)
    with torch.no_grad():
        p.weight_mask.copy_(
            keep_masks({"w": torch.rand(p.weight_mask.shape, device=device)}, 0.3)[
                "w"
            ].float()
        )
        out["merged PAD conv vs partial"] = _close(
            MergedPartialConv2d.from_partial(p).to(device).eval()(x), p.eval()(x), 1e-4
        )
        s = torch.rand(100_000, device=device)
        m = keep_masks({"a": s[:60_000], "b": s[60_000:]}, 0.25)
        if sum(int(v.sum()) for v in m.values()) != 25_000:
            raise AssertionError("keep_masks did not keep exactly 25,000 of 100,000")
        out["keep_masks exact count"] = 0.0
    lora = LoRALinear(nn.Linear(32, 32).to(device), r=4)
    with torch.no_grad():
        lora.lora_B.weight.normal_()
        v = lora(t)
        lora.merge()
        out["LoRA merged vs unmerged"] = _close(lora(t), v, 1e-5)
        lora.unmerge()
    from transformers import BertConfig, BertForSequenceClassification

    def bert():
        set_seed(0)
        return BertForSequenceClassification(
            BertConfig(
                vocab_size=99,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=64,
                max_position_embeddings=64,
            )
        ).to(device)

    ids = torch.randint(0, 99, (8, 10), device=device)
    lab = torch.randint(0, 2, (8,), device=device)
    dm = get_diff_model(bert(), DiffPruningConfig(lr=1e-2))
    fit_diff(dm, [(ids, lab)] * 3, device=device, progress=False)
    project_diff(dm, density=0.05)
    dm.eval()
    td = TaskDiff.from_model(dm)
    plain = bert().eval()
    before = {k: v.clone() for k, v in plain.state_dict().items()}
    with torch.no_grad():
        td.apply(plain)
        out["TaskDiff applied vs diff model"] = _close(
            plain(ids).logits, dm(ids).logits, 0.0
        )
    remove_task_diff(plain)
    if not all(torch.equal(before[k], v) for k, v in plain.state_dict().items()):
        raise AssertionError("remove did not restore the base")
    out["TaskDiff removed: base restored bit for bit"] = 0.0
    return out


def benchmarks(device, tiny):
    "Every chapter's benchmark function on the device."
    from padnotes.experiments.dyconv import benchmark_dyconv
    from padnotes.experiments.moe import benchmark_moe
    from padnotes.experiments.pad import benchmark_pad
    from padnotes.experiments.scoring import benchmark_threshold

    rec = lambda df: df.to_dict("records")
    return {
        "dyconv": rec(
            benchmark_dyconv(
                batch_sizes=(1, 4) if tiny else (1, 32, 128),
                channels=16 if tiny else 64,
                size=8 if tiny else 28,
                device=device,
                min_run_time=0.05 if tiny else 1.0,
                rounds=2 if tiny else 10,
            )
        ),
        "moe": benchmark_moe(
            num_tokens=64 if tiny else 4096,
            d_model=32 if tiny else 384,
            d_ff=64 if tiny else 1536,
            repeats=2 if tiny else 5,
            device=device,
        ),
        "pad": rec(
            benchmark_pad(
                batch_size=4 if tiny else 32,
                channels=16 if tiny else 64,
                size=8 if tiny else 28,
                repeats=2 if tiny else 20,
                device=device,
            )
        ),
        "threshold": benchmark_threshold(
            n=100_000 if tiny else 110_000_000,
            tensors=10 if tiny else 100,
            device=device,
            repeats=1 if tiny else 3,
            primitives=not tiny,
            verbose=False,
        ),
    }


def slider(device, tiny):
    "The explorer on a model on the device: seconds of server-side work per slider move."
    from padnotes.widgets import Explorer, benchmark_slider

    ex = Explorer.for_resnet(
        train_size=128 if tiny else 6000,
        epochs=1 if tiny else 2,
        heldout_size=32 if tiny else 128,
        n_batches=1 if tiny else 10,
        device=device,
        progress=False,
    )
    return benchmark_slider(
        ex,
        ratios=(0.2, 0.5)
        if tiny
        else (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.5),
    )


def cuda_notebooks(device, tiny):
    "The notebooks with `#| cuda` cells, run at tiny size with the cuda flag (none are run on a CPU)."
    nbs = sorted(
        p.name
        for p in (ROOT / "nbs").glob("*.ipynb")
        if "#| cuda" in p.read_text(encoding="utf-8")
    )
    if torch.device(device).type != "cuda":
        return dict(
            tagged=nbs,
            ran=[],
            note="not a CUDA device: the cuda-tagged cells are not run",
        )
    res = {}
    for nb in nbs:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "nbdev.cli",
                "nbdev_test",
                "--flags",
                "cuda",
                "--n_workers",
                "0",
                "--path",
                f"nbs/{nb}",
            ],
            cwd=ROOT,
            env=dict(os.environ, IN_TEST="1"),
            capture_output=True,
            text=True,
        )
        if r.returncode:
            raise RuntimeError(f"{nb} failed:\n{(r.stdout + r.stderr)[-2000:]}")
        res[nb] = "ok"
    return dict(tagged=nbs, ran=res)


SECTIONS = {
    "exactness": exactness,
    "benchmarks": benchmarks,
    "slider": slider,
    "cuda_notebooks": cuda_notebooks,
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--device",
        default=None,
        help="cpu, cuda, cuda:N (default: the GPU when there is one)",
    )
    ap.add_argument("--size", choices=("full", "tiny"), default="full")
    ap.add_argument("--out", default="device-check.json")
    a = ap.parse_args(argv)
    from padnotes.core import get_device

    device = get_device(a.device)
    report = dict(
        device=str(device),
        size=a.size,
        torch=torch.__version__,
        python=platform.python_version(),
        machine=platform.platform(),
        gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        sections={},
    )
    t_all = time.perf_counter()
    for name, fn in SECTIONS.items():
        print(f"[device-check] {name} on {device} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            res = dict(ok=True, result=fn(device, a.size == "tiny"))
        except Exception as e:
            res = dict(
                ok=False,
                error="".join(traceback.format_exception(type(e), e, e.__traceback__))[
                    -4000:
                ],
            )
        res["seconds"] = round(time.perf_counter() - t0, 2)
        report["sections"][name] = res
        print(
            f"[device-check] {name}: {'ok' if res['ok'] else 'FAILED'} in {res['seconds']} s",
            file=sys.stderr,
            flush=True,
        )
        Path(a.out).write_text(json.dumps(report, indent=2, default=str))
    report["seconds"] = round(time.perf_counter() - t_all, 1)
    Path(a.out).write_text(json.dumps(report, indent=2, default=str))
    print(f"[device-check] wrote {a.out} ({report['seconds']} s)", file=sys.stderr)
    return 0 if all(s["ok"] for s in report["sections"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
