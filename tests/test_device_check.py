"scripts/device_check.py keeps working without a GPU: its tiny size on the CPU runs every section and writes one JSON file."

import json, subprocess, sys
from pathlib import Path


def test_device_check_runs_every_section_on_the_cpu(tmp_path):
    root = Path(__file__).parents[1]
    out = tmp_path / "dc.json"
    r = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "device_check.py"),
            "--device",
            "cpu",
            "--size",
            "tiny",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )
    rep = json.loads(out.read_text())
    assert r.returncode == 0, {
        k: v.get("error") for k, v in rep["sections"].items() if not v["ok"]
    }
    assert (
        set(rep["sections"]) == {"exactness", "benchmarks", "slider", "cuda_notebooks"}
        and rep["device"] == "cpu"
    )
    ex = rep["sections"]["exactness"]["result"]
    assert (
        ex["TaskDiff applied vs diff model"] == 0.0
        and ex["dyconv kernel vs per-sample loop"] < 1e-4
    )
    assert {"dyconv", "moe", "pad", "threshold"} <= set(
        rep["sections"]["benchmarks"]["result"]
    )
