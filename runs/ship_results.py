"""Copy the grids' finished rows from runs/ into the results files that ship with padnotes (padnotes/assets), one file per grid
with a `task` column, so that chapters 12a and 13a (and their readers) see them without retraining. Run it after the grids have
added rows; it rewrites the shipped files from runs/ each time.

    python runs/ship_results.py
"""
from pathlib import Path
import pandas as pd

HERE = Path(__file__).parent
ASSETS = HERE.parent / "padnotes" / "assets"
FILES = {   # shipped file: (runs/ files it gathers, whether they lack a task column)
    "sparse_adapter_grid.csv": ("sa_grid_*.csv", False),
    "sparse_adapter_calibration.csv": ("sa_calibrate_*.csv", True),
    "diff_pruning_grid.csv": ("dp_grid_*.csv", False),
    "diff_pruning_calibration.csv": ("dp_calibrate_*.csv", True),
    "diff_pruning_structured_product.csv": ("dp_structured_product_*.csv", False),
}

def task_of(path:Path, pattern:str) -> str: return path.stem[len(pattern.split("*")[0]):]

def main():
    for name, (pattern, add_task) in FILES.items():
        parts = []
        for p in sorted(HERE.glob(pattern)):
            df = pd.read_csv(p)
            if add_task and "task" not in df.columns: df.insert(0, "task", task_of(p, pattern))
            parts.append(df)
        if not parts: continue
        out = pd.concat(parts, ignore_index=True)
        out.to_csv(ASSETS / name, index=False)
        print(f"{name}: {len(out)} rows from {', '.join(p.name for p in sorted(HERE.glob(pattern)))}")

if __name__ == "__main__": main()
