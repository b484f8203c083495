"Promises of padnotes.tour: the CLI's arguments and errors, a real tiny tour's report, resume, and the report after an interrupt."

import configparser, json, math, re, subprocess, sys, time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import torch
from plotly.offline import get_plotlyjs

from padnotes.experiments.pad import RESULTS_FILE, pad_sweep
from padnotes.tour import (
    SECTIONS,
    SectionResult,
    TourSection,
    main,
    register_section,
    report_html,
    run_tour,
    runs_file,
    sweep_result,
    tour_config,
    tour_parser,
    tour_sections,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["tour", "--size", "tiny", "--no-progress", "--threads", "1"]


class Tables(HTMLParser):
    "Every <table> of a page as a list of rows (lists of cell texts), and the class of each table."

    def __init__(self, page):
        super().__init__()
        self.tables, self.classes, self.cell = [], [], None
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
            self.classes.append(dict(attrs).get("class", ""))
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.tables[-1][-1].append(self.cell.strip())
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def results_tables(page):
    t = Tables(page)
    return [rows for rows, cls in zip(t.tables, t.classes) if "results" in cls]


def settings_table(page):
    t = Tables(page)
    rows = [rows for rows, cls in zip(t.tables, t.classes) if cls == "settings"][-1]
    return {r[0]: r[1] for r in rows}


def run_main(argv, capsys):
    "main(argv) -> (exit code, stdout, stderr); SystemExit (argparse's errors) gives its code."
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- arguments
def test_defaults():
    a = tour_parser().parse_args(["tour"])
    assert (a.size, a.device, a.out, a.seed, a.sections, a.threads, a.progress) == (
        "quick",
        "auto",
        Path("padnotes-tour"),
        0,
        None,
        None,
        True,
    )


def test_options():
    a = tour_parser().parse_args(
        [
            "tour",
            "--full",
            "--device",
            "cpu",
            "--out",
            "x/y",
            "--seed",
            "7",
            "--sections",
            "text",
            "--threads",
            "3",
            "--no-progress",
        ]
    )
    assert (a.size, a.device, a.out, a.seed, a.sections, a.threads, a.progress) == (
        "full",
        "cpu",
        Path("x/y"),
        7,
        "text",
        3,
        False,
    )
    assert tour_parser().parse_args(["tour", "--quick"]).size == "quick"
    assert tour_parser().parse_args(["tour", "--size", "tiny"]).size == "tiny"


def test_help(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # argparse wraps help at the terminal's width
    code, out, _ = run_main(["--help"], capsys)
    assert code == 0 and "tour" in out and "self-contained HTML report" in out
    code, out, _ = run_main(["tour", "--help"], capsys)
    assert code == 0
    for opt in (
        "--quick",
        "--full",
        "--device",
        "--out",
        "--seed",
        "--sections",
        "--threads",
        "--no-progress",
        "fashion, text",
    ):
        assert opt in out, opt
    assert "--size" not in out  # the tests' size is hidden
    assert "10 minutes" in out and "hours" in out


def test_console_script_declared():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "settings.ini")
    assert "padnotes=padnotes.tour:main" in cfg["DEFAULT"]["console_scripts"]


def _no_gpu_error():
    return (
        [] if torch.cuda.is_available() else [(["--device", "cuda"], "has no CUDA GPU")]
    )


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "cpu:x"], "unknown device 'cpu:x'"),
        (["--quick", "--full"], "not allowed with argument"),
        (["--seed", "-1"], "the seed must be a non-negative integer, got '-1'"),
        (["--seed", "one"], "the seed must be a non-negative integer, got 'one'"),
        (["--threads", "0"], "threads must be a positive integer, got '0'"),
        (
            ["--sections", "fashion,cifar"],
            "unknown sections ['cifar']: expected a comma-separated list of fashion, text",
        ),
        (["--sections", ","], "unknown sections"),
        (["--size", "medium"], "invalid choice: 'medium'"),
        (["--colour"], "unrecognized arguments: --colour"),
    ]
    + _no_gpu_error(),
)
def test_bad_arguments(extra, message, tmp_path, capsys):
    out = tmp_path / "tour"
    code, _, err = run_main(["tour", "--out", str(out)] + extra, capsys)
    assert code == 2
    assert message in err and "usage: padnotes" in err
    assert not out.exists()  # nothing created, nothing trained


def test_cuda(capsys, tmp_path):
    "Without a GPU, --device cuda is an error; with one, cuda is accepted by the same check."
    if torch.cuda.is_available():
        from padnotes.core import get_device

        assert get_device("cuda").type == "cuda"
    else:
        code, _, err = run_main(
            ["tour", "--device", "cuda", "--out", str(tmp_path / "t")], capsys
        )
        assert (
            code == 2
            and "device 'cuda' was asked for, but this machine has no CUDA GPU" in err
        )


def test_no_command(capsys):
    code, _, err = run_main([], capsys)
    assert code == 2 and "required: COMMAND" in err


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_output_folder(where, tmp_path, capsys):
    if where == "under_a_file":
        blocker = tmp_path / "a-file"
        blocker.write_text("x")
        out = blocker / "tour"
    else:
        out = Path("/proc/padnotes-tour")  # not writable, even for root
    code, _, err = run_main(TINY + ["--out", str(out)], capsys)
    assert code == 2
    assert (
        f"the output folder '{out}' is not writable" in err
        and "choose another with --out" in err
    )


def test_unwritable_checked_before_training(tmp_path, monkeypatch):
    "run_tour checks the folder before any section runs."
    calls = []
    register_section(
        TourSection(
            "probe",
            "probe",
            run=lambda ctx: calls.append(1) or SectionResult(),
            order=1,
        )
    )
    try:
        blocker = tmp_path / "f"
        blocker.write_text("")
        with pytest.raises(PermissionError, match="not writable"):
            run_tour("tiny", "cpu", blocker / "x", sections="probe")
        assert calls == []
    finally:
        SECTIONS.pop("probe")


def test_registry_errors():
    with pytest.raises(ValueError, match="already registered"):
        register_section(SECTIONS["fashion"])
    with pytest.raises(ValueError, match="letters, digits and underscores"):
        TourSection("a,b", "t", run=print)
    with pytest.raises(ValueError, match="unknown size 'huge'"):
        tour_config("fashion_mnist", "huge")
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        run_tour("tiny", "cpu", "unused", seed=-3)
    assert tour_sections()[:2] == ["fashion", "text"]


def test_quick_sizes():
    "The quick grids are what the report and README promise."
    f, t = (
        tour_config("fashion_mnist", "quick", seed=4),
        tour_config("rotten_tomatoes", "quick"),
    )
    assert [(r["criterion"], r["ratio"], r["seed"]) for r in f.runs()] == [
        ("reference", None, 4),
        ("static", 0.0, 4),
        ("imp", 0.3, 4),
        ("dynamic", 1.0, 4),
    ]
    assert [(r["criterion"], r["ratio"]) for r in t.runs()] == [
        ("reference", None),
        ("imp", 0.5),
        ("dynamic", 1.0),
    ]
    assert t.max_len == 32 and f.epochs == t.epochs == 1
    r = tour_config("fashion_mnist_r16", "quick", seed=4)
    assert (r.regimes, r.width, r.row_task) == (16, 8, "fashion_mnist_r16")
    assert [(x["criterion"], x["ratio"]) for x in r.runs()] == [
        ("reference", None),
        ("static", 0.0),
        ("imp", 0.3),
        ("dynamic", 1.0),
    ]


def test_module_entry_point(tmp_path):
    "python -m padnotes.tour runs main (the __main__ guard), and its argument errors exit with 2."
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "padnotes.tour",
            "tour",
            "--device",
            "tpu",
            "--out",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert r.returncode == 2 and "unknown device 'tpu'" in r.stderr


def test_report_without_figures_has_no_plotly():
    page = report_html([], dict(size="tiny"))
    assert get_plotlyjs()[:300] not in page and page.rstrip().endswith("</html>")


# ---------------------------------------------------------------- a real tiny tour
@pytest.fixture(scope="module")
def tiny_tour(tmp_path_factory):
    out = tmp_path_factory.mktemp("tour") / "out"
    t0 = time.perf_counter()
    code = main(TINY + ["--sections", "fashion", "--out", str(out)])
    return dict(
        out=out,
        code=code,
        seconds=time.perf_counter() - t0,
        csv=(out / "runs-tiny.csv").read_bytes(),
        page=(out / "report.html").read_text(encoding="utf-8"),
    )


def test_tiny_tour_runs(tiny_tour):
    assert tiny_tour["code"] == 0
    df = pd.read_csv(tiny_tour["out"] / "runs-tiny.csv")
    assert list(df.criterion) == ["reference", "static", "imp", "dynamic"] and set(
        df.task
    ) == {"fashion_mnist"}
    assert sorted(p.name for p in tiny_tour["out"].iterdir()) == [
        "report.html",
        "runs-tiny.csv",
    ]


def test_report_results_table_matches_csv(tiny_tour):
    df = pd.read_csv(tiny_tour["out"] / "runs-tiny.csv")
    (table,) = results_tables(tiny_tour["page"])
    header, rows = table[0], table[1:]
    assert header == [
        "model",
        "dynamic ratio",
        "seed",
        "dev acc",
        "test acc",
        "params",
        "deploy size",
        "seconds",
    ]
    assert [r[0] for r in rows] == [
        "static ResNet-8 (reference)",
        "static (ratio 0)",
        "PAD-Net imp ratio 0.5",
        "fully dynamic DY-Conv (ratio 1)",
    ]
    for r, (_, row) in zip(rows, df.iterrows()):
        assert math.isclose(float(r[3]), row.dev_acc, abs_tol=1e-4) and math.isclose(
            float(r[4]), row.test_acc, abs_tol=1e-4
        )
        assert int(r[5]) == row.params and int(r[6]) == row.deploy
    # PAD at ratio 0.5 deploys fewer numbers than the fully dynamic network and more than the static one
    deploy = dict(zip(df.criterion, df.deploy))
    assert deploy["static"] < deploy["imp"] < deploy["dynamic"]


def test_report_is_self_contained(tiny_tour):
    page = tiny_tour["page"]
    assert page.count(get_plotlyjs()[:300]) == 1  # plotly.js inlined exactly once
    assert not re.search(r"<script[^>]*\bsrc\s*=", page, re.I)  # no outside scripts
    assert not re.search(
        r"<link[^>]*\bhref\s*=\s*[\"']?(https?:)?//", page, re.I
    )  # no outside stylesheets
    assert not re.search(r"<iframe|<img[^>]*\bsrc\s*=\s*[\"']?https?:", page, re.I)
    assert (
        page.count("Plotly.newPlot(") == 2
    )  # accuracy vs ratio, accuracy vs deploy size


def figure_data(page):
    "The data (list of traces) of every plotly figure in a page, in order."
    dec, out = json.JSONDecoder(), []
    for chunk in page.split("Plotly.newPlot(")[1:]:
        _, i = dec.raw_decode(chunk.lstrip())
        rest = chunk.lstrip()[i:].lstrip().lstrip(",").lstrip()
        out.append(dec.raw_decode(rest)[0])
    return out


def values(a):
    "A plotly array, plain or typed (plotly 6+ writes {'dtype', 'bdata'})."
    if isinstance(a, dict):
        import base64, numpy as np

        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"]).tolist()
    return list(a)


def test_report_figures_hold_the_runs(tiny_tour):
    "The figures' points are the CSV's runs."
    df = pd.read_csv(tiny_tour["out"] / "runs-tiny.csv")
    sweep, deploy = figure_data(tiny_tour["page"])
    assert values(deploy[0]["x"]) == df.deploy.tolist()
    assert values(deploy[0]["y"]) == pytest.approx(df.dev_acc.tolist())
    (imp,) = [t for t in sweep if t.get("name") == "imp"]
    assert values(imp["x"]) == [0.0, 0.5, 1.0]  # static end, PAD 0.5, fully dynamic end
    assert values(imp["y"]) == pytest.approx(
        [
            float(df[df.criterion == c].dev_acc.iloc[0])
            for c in ("static", "imp", "dynamic")
        ]
    )


def test_report_settings(tiny_tour):
    s = settings_table(tiny_tour["page"])
    assert (s["size"], s["device"], s["seed"], s["threads"], s["sections"]) == (
        "tiny",
        "cpu",
        "0",
        "1",
        "fashion",
    )
    assert (
        s["torch"] == torch.__version__
        and float(s["wall time (s)"]) > 0
        and float(s["seconds: fashion"]) > 0
    )
    assert s["command"].startswith("padnotes tour --size tiny") and s[
        "started"
    ].endswith("UTC")
    assert (
        "train_size" in tiny_tour["page"]
        and "1 of 1 sections done" in tiny_tour["page"]
    )


def test_report_full_size_results(tiny_tour):
    "The shipped full-size results are drawn when installed; otherwise the report says they are absent and how to make them."
    page = tiny_tour["page"]
    if RESULTS_FILE.exists():
        assert "shipped full size: imp" in page
    else:
        assert (
            "are not installed with this copy of padnotes" in page
            and "main_sweep" in page
        )


def test_resume(tiny_tour, capsys):
    "A second run into the same folder trains nothing: the CSV is byte for byte the same, and it is faster."
    t0 = time.perf_counter()
    code = main(TINY + ["--sections", "fashion", "--out", str(tiny_tour["out"])])
    secs = time.perf_counter() - t0
    assert (
        code == 0
        and (tiny_tour["out"] / "runs-tiny.csv").read_bytes() == tiny_tour["csv"]
    )
    assert secs < tiny_tour["seconds"]
    assert str(tiny_tour["out"] / "report.html") in capsys.readouterr().out


def test_interrupt_writes_report(tiny_tour, capsys):
    "Ctrl-C in a section: exit 130, the report keeps the finished sections and the interrupted one's finished runs."

    def stop(ctx):
        pad_sweep(
            tour_config("fashion_mnist", ctx.size, ctx.seed),
            runs_file(ctx),
            device=ctx.device,
            progress=False,
        )  # resumed
        raise KeyboardInterrupt

    register_section(
        TourSection(
            "stopper",
            "Stopped half way",
            run=stop,
            collect=lambda ctx: sweep_result(ctx, "fashion_mnist"),
            order=15,
        )
    )
    try:
        code, _, err = run_main(
            TINY
            + ["--sections", "fashion,stopper,text", "--out", str(tiny_tour["out"])],
            capsys,
        )
    finally:
        SECTIONS.pop("stopper")
    page = (tiny_tour["out"] / "report.html").read_text(encoding="utf-8")
    assert code == 130 and "run the same command again to resume" in err
    assert (
        "1 of 3 sections done" in page
        and '<p class="status interrupted">interrupted' in page
    )
    assert (
        '<p class="status notrun">not run</p>' in page
    )  # the text section never started
    assert (
        len(results_tables(page)) == 2
    )  # fashion's, and the interrupted section's runs
    assert "4 of 4 runs finished" in page and page.rstrip().endswith("</html>")
    assert (tiny_tour["out"] / "runs-tiny.csv").read_bytes() == tiny_tour["csv"]


def test_failed_section_reported_and_next_runs(tmp_path, capsys):
    ran = []
    register_section(
        TourSection(
            "boom",
            "Fails",
            run=lambda ctx: (_ for _ in ()).throw(ValueError("boom: bad data")),
            order=1,
        )
    )
    register_section(
        TourSection(
            "after",
            "Runs after",
            run=lambda ctx: ran.append(ctx.seed) or SectionResult(notes=["fine"]),
            order=2,
        )
    )
    try:
        code, _, err = run_main(
            TINY + ["--sections", "boom,after", "--seed", "5", "--out", str(tmp_path)],
            capsys,
        )
    finally:
        SECTIONS.pop("boom")
        SECTIONS.pop("after")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert (
        code == 1
        and ran == [5]
        and "section boom failed: ValueError: boom: bad data" in err
    )
    assert (
        "ValueError: boom: bad data" in page
        and "1 of 2 sections done" in page
        and "fine" in page
    )


def test_report_draws_offline_in_a_browser(tiny_tour):
    "Opened from disk in Chromium with every request that is not file: aborted, the report draws both figures."
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright
    import tempfile

    outside = []

    def route(r):
        if r.request.url.startswith(("file:", "data:", "blob:", "about:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as prof:
        ctx = pw.chromium.launch_persistent_context(
            prof,
            executable_path=str(chromium),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        try:
            ctx.route("**/*", route)
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((tiny_tour["out"] / "report.html").as_uri())
            page.wait_for_function(
                "document.querySelectorAll('.plotly-graph-div .main-svg').length >= 2",
                timeout=60_000,
            )
            n_points = page.evaluate(
                "document.querySelectorAll('.plotly-graph-div .scatterlayer .point').length"
            )
        finally:
            ctx.close()
    assert outside == [] and errors == []
    assert n_points >= 4 + 4  # the sweep curve's and the deploy figure's points
