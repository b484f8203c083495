"""Copy the grids' finished rows from runs/ into the results files that ship with padnotes (padnotes/assets), one file per grid
with a `task` column, so that chapters 12a and 13a (and their readers) see them without retraining. Run it after the grids have
added rows; it rewrites the shipped files from runs/ each time.

    python runs/ship_results.py
"""

from pathlib import Path
import pandas as pd

HERE = Path(__file__).parent
ASSETS = HERE.parent / "padnotes" / "assets"
FILES = {  # shipped file: (runs/ files it gathers, the column their names fill in when the rows lack it: "task" or "variant", or None)
    "sparse_adapter_grid.csv": ("sa_grid_*.csv", None),
    "sparse_adapter_calibration.csv": ("sa_calibrate_*.csv", "task"),
    "diff_pruning_grid.csv": ("dp_grid_*.csv", None),
    "diff_pruning_calibration.csv": ("dp_calibrate_*.csv", "task"),
    "diff_pruning_structured_product.csv": ("dp_structured_product_*.csv", None),
    "diff_pruning_finetune_epochs.csv": ("dp_finetune_epochs_*.csv", None),
    "pad_evidence.csv": ("pad_evidence_*.csv", None),
    "pad_evidence_ablations.csv": ("pad_ablation_*.csv", "variant"),
    "pad_regime.csv": ("pad_regime_fashion_mnist_*.csv", None),
    "pad_regime_text.csv": ("pad_regime_rotten_tomatoes_vectors_*.csv", None),
    "pad_pilot_fashion_mnist_regimes.csv": ("regime_pilot.csv", None),
    "pad_pilot_rotten_tomatoes_vectors.csv": ("regime_pilot_text.csv", None),
    "moe_text_routing.csv": ("text_routing.csv", None),
    "explorer_slider.csv": ("explorer_slider_*.csv", None),
    "explorer_readouts.csv": ("explorer_readouts_*.csv", None),
    "dyconv_benchmark.csv": ("dyconv_benchmark_*.csv", "device"),
    "pad_benchmark.csv": ("pad_benchmark_*.csv", "device"),
    "threshold_benchmark.csv": ("threshold_benchmark_*.csv", "device"),
    "dyconv_compare.csv": ("dyconv_compare_*.csv", "device"),
    "dyconv_class_attention.csv": ("dyconv_class_attention_*.csv", "device"),
    "tour_quick.csv": ("tour_quick_*.csv", "device"),
    "chapter_times.csv": ("chapter_times_*.csv", "device"),
}


def name_part(path: Path, pattern: str, column: str) -> str:
    "What a file's name says: the task (sa_calibrate_twitter.csv -> 'twitter') or the variant (pad_ablation_init_fashion_mnist.csv -> 'init')."
    rest = path.stem[len(pattern.split("*")[0]) :]
    return rest.split("_")[0] if column == "variant" else rest


def main():
    for name, (pattern, column) in FILES.items():
        parts = []
        for p in sorted(HERE.glob(pattern)):
            df = pd.read_csv(p)
            if column and column not in df.columns:
                df.insert(0, column, name_part(p, pattern, column))
            parts.append(df)
        if not parts:
            continue
        out = pd.concat(parts, ignore_index=True)
        out.to_csv(ASSETS / name, index=False)
        print(
            f"{name}: {len(out)} rows from {', '.join(p.name for p in sorted(HERE.glob(pattern)))}"
        )


if __name__ == "__main__":
    main()
