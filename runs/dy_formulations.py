"""Issue 17, step 1 (measurements): DY-Conv formulations on the CPU against the best static conv (contiguous or channels_last),
side by side in interleaved rounds: forward and forward+backward, batch 1, 32, 128, 64 channels, 28x28, K = 4. Writes
runs/dy_formulations_cpu.json. Measure on a quiet machine (other jobs' threads distort every figure):

    python runs/dy_formulations.py 2        # threads
"""

import sys, json
import torch, torch.nn.functional as F
from padnotes.core import time_fns
from padnotes.dyconv import aggregate, dyconv_kernel_agg, dyconv_output_agg

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)
C = O = 64
H = W = 28
K = 4
rows = []
for B in (1, 32, 128):
    x = torch.randn(B, C, H, W)
    weight = (torch.randn(K, O, C, 3, 3) * 0.05).requires_grad_()
    bias = torch.randn(K, O).requires_grad_()
    pi = torch.softmax(torch.randn(B, K), 1).requires_grad_()
    w0 = (torch.randn(O, C, 3, 3) * 0.05).requires_grad_()
    b0 = torch.randn(O).requires_grad_()
    xcl = x.contiguous(memory_format=torch.channels_last)
    w0cl = w0.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    xg, xclg = x.clone().requires_grad_(), xcl.clone().requires_grad_()

    def kagg_cl(x):
        w, b = aggregate(weight, bias, pi)
        xx = x.reshape(1, B * C, H, W).contiguous(memory_format=torch.channels_last)
        return F.conv2d(
            xx,
            w.reshape(B * O, C, 3, 3).contiguous(memory_format=torch.channels_last),
            b.reshape(-1),
            1,
            1,
            1,
            B,
        ).reshape(B, O, H, W)

    def chunked(x, n=4):
        return torch.cat(
            [
                dyconv_kernel_agg(xc, weight, bias, pc, 1, 1, 1, 1)
                for xc, pc in zip(x.chunk(n), pi.chunk(n))
            ]
        )

    def loop_static(x):
        w, b = aggregate(weight, bias, pi)
        return torch.stack(
            [F.conv2d(x[i : i + 1], w[i], b[i], 1, 1)[0] for i in range(B)]
        )

    impls = {
        "static": lambda x: F.conv2d(x, w0, b0, 1, 1),
        "static channels_last": None,
        "kernel agg (groups=B)": lambda x: dyconv_kernel_agg(
            x, weight, bias, pi, 1, 1, 1, 1
        ),
        "kernel agg channels_last": kagg_cl,
        "kernel agg, 4 chunks": chunked,
        "per-sample loop": loop_static,
        "output agg": lambda x: dyconv_output_agg(x, weight, bias, pi, 1, 1, 1, 1),
    }
    fwd, fb = {}, {}
    for k, f in impls.items():
        if f is None:
            fwd[k] = lambda: F.conv2d(xcl, w0cl, b0, 1, 1)
            fb[k] = lambda: F.conv2d(xclg, w0cl, b0, 1, 1).sum().backward()
        else:
            fwd[k] = lambda f=f: f(x)
            fb[k] = lambda f=f: f(xg).sum().backward()
    with torch.no_grad():
        tf = time_fns(fwd, repeats=7, warmup=2)
    tb = time_fns(fb, repeats=5, warmup=1)
    bf, bb = (
        min(tf["static"], tf["static channels_last"]),
        min(tb["static"], tb["static channels_last"]),
    )
    for k in impls:
        rows.append(
            dict(
                batch=B,
                impl=k,
                fwd_ms=round(1e3 * tf[k], 2),
                fwd_x_best_static=round(tf[k] / bf, 2),
                fwd_bwd_ms=round(1e3 * tb[k], 2),
                fwd_bwd_x_best_static=round(tb[k] / bb, 2),
            )
        )
        print(rows[-1], flush=True)
json.dump(
    rows,
    open(
        sys.argv[2]
        if len(sys.argv) > 2
        else str(
            __import__("pathlib").Path(__file__).with_name("dy_formulations_cpu.json")
        ),
        "w",
    ),
    indent=1,
)
