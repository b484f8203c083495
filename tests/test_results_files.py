"The results files that ship with padnotes (padnotes/assets): they hold what runs/ holds, every row belongs to its grid's plan, no run twice."

import json
from pathlib import Path
import pandas as pd
import pytest

ROOT = Path(__file__).parents[1]


def test_the_shipped_files_hold_the_first_rows_of_runs_and_nothing_else():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "ship_results", ROOT / "runs" / "ship_results.py"
    )
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    for name, (pattern, column) in ship.FILES.items():
        parts = sorted((ROOT / "runs").glob(pattern))
        if not parts or not (ROOT / "padnotes" / "assets" / name).exists():
            continue  # not shipped yet
        shipped = pd.read_csv(ROOT / "padnotes" / "assets" / name)
        # runs/ may hold rows the grids added after the last shipping: each source's shipped rows must be its first rows, and nothing else
        got = 0
        for p in parts:
            src = pd.read_csv(p)
            ident = column or "task"
            value = (
                ship.name_part(p, pattern, column)
                if column and column not in src.columns
                else src[ident].iloc[0]
            )
            part = shipped[shipped[ident] == value].reset_index(drop=True)
            assert len(part) <= len(src), (
                f"{name} holds more {value} rows than {p.name}"
            )
            pd.testing.assert_frame_equal(
                part[src.columns],
                src.iloc[: len(part)],
                check_dtype=False,
                obj=f"{name} against {p.name}",
            )
            got += len(part)
        assert got == len(shipped), f"{name} holds rows that runs/ does not"


def test_sparse_adapter_rows_belong_to_the_plan_once_each():
    from padnotes.experiments.sparse_adapter import (
        SparseAdapterSweep,
        grid_results,
        _key,
    )

    df = grid_results()
    for task, d in df.groupby("task"):
        plan = {_key(dict(r, task=task)) for r in SparseAdapterSweep(task=task).runs()}
        keys = [_key(r) for r in d.to_dict("records")]
        assert len(keys) == len(set(keys)), f"{task}: a run appears twice"
        assert set(keys) <= plan, f"{task}: rows outside the plan: {set(keys) - plan}"
        lrs = {json.loads(s)["lr"] for s in d.settings}
        assert len(lrs) == 1, (
            f"{task}: the adapters ran at more than one learning rate: {lrs}"
        )


def test_diff_pruning_rows_belong_to_the_plan_once_each_at_one_setting():
    from padnotes.experiments.diff_pruning import (
        DiffPruningSweep,
        grid_results,
        product_penalty_results,
        _key,
    )

    df = grid_results()
    for task, d in df.groupby("task"):
        plan = {_key(task, m, dd, s) for m, dd, s in DiffPruningSweep(task=task).rows()}
        keys = [
            _key(task, r["method"], r["density"], r["seed"])
            for r in d.to_dict("records")
        ]
        assert len(keys) == len(set(keys)) and set(keys) <= plan
        gated = d[d.method.isin(["diff", "diff_structured"])]
        assert len({json.loads(s)["l0_coef"] for s in gated.settings}) <= 1, (
            f"{task}: gated rows at more than one L0 weight"
        )
        structured = [json.loads(s) for s in d[d.method == "diff_structured"].settings]
        assert all(s.get("group_penalty") == "sum" for s in structured), (
            "structured rows must record the penalty they ran with"
        )
    prod = product_penalty_results()
    assert set(prod.method) == {"diff_structured"} and {
        json.loads(s)["group_penalty"] for s in prod.settings
    } == {"product"}


def test_diff_pruning_finetune_rerun_starts_from_the_grids_gated_models():
    "The 3-epoch rerun (runs/dp_finetune_epochs.py) differs from the grid only in the fixed-mask fine-tuning: same L0 weight, same gated models."
    import numpy as np
    from padnotes.experiments.diff_pruning import (
        FINETUNE_FILE,
        finetune_epochs_results,
        grid_results,
    )

    if not FINETUNE_FILE.exists():
        pytest.skip("the rerun is not shipped yet")
    ft, grid = finetune_epochs_results(), grid_results()
    assert (
        set(ft.method) == {"diff"}
        and np.allclose(ft.density, 0.005)
        and ft.seed.is_unique
    )
    for s in ft.settings.map(json.loads):
        assert s["finetune_epochs"] == 3
    g = grid[(grid.method == "diff") & np.isclose(grid.density, 0.005)].set_index(
        ["task", "seed"]
    )
    for r in ft.itertuples():
        row = g.loc[(r.task, r.seed)]
        assert r.pre_dev_acc == row.pre_dev_acc and r.expected_density == pytest.approx(
            row.expected_density, rel=1e-9
        )
        ours, theirs = json.loads(r.settings), json.loads(row.settings)
        same = (set(ours) & set(theirs)) - {
            "finetune_epochs",
            "densities",
            "structured",
        }  # the grid's rows predate group_penalty
        assert {k: ours[k] for k in same} == {k: theirs[k] for k in same} and len(
            same
        ) > 10


def test_append_row_writes_in_the_files_column_order_and_refuses_other_columns(
    tmp_path,
):
    import pandas as pd
    import pytest
    from padnotes.experiments.results import append_row

    p = tmp_path / "rows.csv"
    append_row(p, dict(seed=0, acc=0.5))
    append_row(p, dict(acc=0.75, seed=1))  # another key order: same columns
    assert pd.read_csv(p).to_dict("records") == [
        dict(seed=0, acc=0.5),
        dict(seed=1, acc=0.75),
    ]
    with pytest.raises(ValueError, match="has the columns"):
        append_row(p, dict(seed=2, acc=0.5, width=8))
    assert len(pd.read_csv(p)) == 2  # nothing written
