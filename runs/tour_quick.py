"""Chapter 08's timing: the whole quick tour (`padnotes tour --quick --device cpu`, every registered section, seed 0) into a fresh
folder, as a new user runs it. Run it with the machine otherwise quiet. Writes runs/tour_quick_cpu.csv: one row per section (its
seconds, how many runs it trained, the lowest and highest dev accuracy of its results table) and a row "total" with the tour's wall
time; then `python runs/ship_results.py` copies it to padnotes/assets/tour_quick.csv, which chapter 08 reads (`tour_timing()`).

    python runs/tour_quick.py          # about 8 minutes on 2 CPU cores
"""

import os, tempfile
from pathlib import Path
import pandas as pd

from padnotes.tour import run_tour

if __name__ == "__main__":
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        tour = run_tour(
            size="quick",
            device="cpu",
            out=Path(d) / "tour",
            seed=0,
            progress=True,
            command="padnotes tour --quick --device cpu",
        )
    rows = []
    for r in tour.runs:
        t = (
            r.result.table
            if r.result is not None and r.result.table is not None
            else pd.DataFrame()
        )
        dev = next(
            (
                c
                for c in t.columns
                if "dev" in str(c).lower() and "acc" in str(c).lower()
            ),
            None,
        )
        rows.append(
            dict(
                section=r.section.name,
                status=r.status,
                seconds=round(r.seconds, 1),
                runs=len(t),
                dev_acc_min=None if dev is None else float(t[dev].min()),
                dev_acc_max=None if dev is None else float(t[dev].max()),
            )
        )
    rows.append(
        dict(
            section="total",
            status="done" if tour.exit_code == 0 else f"exit {tour.exit_code}",
            seconds=tour.settings["wall time (s)"],
            runs=sum(r["runs"] for r in rows),
        )
    )
    df = pd.DataFrame(rows).assign(
        threads=tour.settings["threads"],
        load_before=round(load0, 2),
        load_after=round(os.getloadavg()[0], 2),
        torch=tour.settings["torch"],
        machine=tour.settings["machine"],
    )
    out = Path(__file__).parent / "tour_quick_cpu.csv"
    df.to_csv(out, index=False)
    print(
        df.drop(columns=["machine"]).to_string(index=False),
        f"\n{out.name} written",
        flush=True,
    )
