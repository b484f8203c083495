"""The explorer in a real browser: Voila serves nbs/07_explorer.ipynb (tiny sizes, IN_TEST=1) on 127.0.0.1 and Playwright drives
Debian's Chromium. The slider is moved by keyboard and by typing in its readout, the criterion and the layer are changed, and every
time the page's readouts and the plotted figure's data must equal what the library computes for that partition (the notebook's
cells are run here too, with the same seeds, and the same moves are made on that explorer). A screenshot of the explorer is saved
to tests/artifacts/explorer.png."""

import base64, json, os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / "nbs" / "07_explorer.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed: apt-get install -y chromium "
    "fonts-liberation (bash scripts/run.sh test installs it)",
)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
LOAD_TIMEOUT_MS = 240_000  # per attempt: Voila runs the whole notebook (training included) before the widgets appear (~15 s here)
LOAD_ATTEMPTS = 2
MOVE_TIMEOUT_MS = 120_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    "Voila on 127.0.0.1 in its own process group; ready when a static file answers (a GET of / would start a kernel)."
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = dict(
        os.environ,
        IN_TEST="1",
        PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    log = open(ARTIFACTS / "voila.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voila",
            str(NB),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            "--VoilaConfiguration.show_tracebacks=True",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"voila exited with {proc.returncode}; see {ARTIFACTS / 'voila.log'}"
                )
            try:
                with urllib.request.urlopen(
                    url + "/voila/static/voila.js", timeout=2
                ) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline:
                pytest.fail("voila did not answer within 90 s")
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


@pytest.fixture(scope="module")
def reference():
    "The notebook's explorer, rebuilt here: the notebook's code cells run in this process with the same sizes and seeds."
    old = os.environ.get("IN_TEST")
    os.environ["IN_TEST"] = "1"
    ns = {"display": lambda *a, **k: None}
    try:
        for cell in json.loads(NB.read_text())["cells"]:
            src = "".join(cell["source"])
            if cell["cell_type"] != "code" or "nbdev_export()" in src:
                continue
            exec(compile(src, str(NB), "exec"), ns)
    finally:
        if old is None:
            os.environ.pop("IN_TEST")
        else:
            os.environ["IN_TEST"] = old
    return ns["resnet_ex"]


READ_JS = """() => {
  const vals = {}; for (const e of document.querySelectorAll('.pn-readout')) vals[e.dataset.key] = e.dataset.value;
  const plot = document.querySelector('.js-plotly-plot');
  const arr = a => (a === undefined || a === null) ? null : (a.bdata !== undefined ? a : Array.from(a, r => (r && r.length !== undefined && typeof r !== 'string') ? Array.from(r) : r));
  const traces = plot && plot.data ? plot.data.map(t => ({name: t.name, type: t.type, x: arr(t.x), y: arr(t.y), z: arr(t.z)})) : [];
  return {readouts: vals, traces: traces};
}"""
_DTYPES = dict(
    f8="<f8",
    f4="<f4",
    i1="i1",
    u1="u1",
    i2="<i2",
    u2="<u2",
    i4="<i4",
    u4="<u4",
    i8="<i8",
    u8="<u8",
)


def _decode(a):
    "plotly's typed-array JSON ({dtype, bdata, shape}) or a plain list, as a list."
    if isinstance(a, dict) and "bdata" in a:
        v = np.frombuffer(base64.b64decode(a["bdata"]), dtype=_DTYPES[a["dtype"]])
        if a.get("shape"):
            v = v.reshape([int(n) for n in str(a["shape"]).split(",")])
        return v.tolist()
    return a


def page_state(page) -> dict:
    got = page.evaluate(READ_JS)
    for t in got["traces"]:
        for k in ("x", "y", "z"):
            t[k] = _decode(t[k])
    return got


def wait_for(page, key: str, value: str):
    "Wait until readout `key` shows `value`, the refinement in the background is done, and the figure's live point sits at the readouts' ratio."
    page.wait_for_function(
        """([k, v]) => {
        const e = document.querySelector('.pn-readout[data-key="' + k + '"]'); if (!e || e.dataset.value !== v) return false;
        const q = key => document.querySelector('.pn-readout[data-key="' + key + '"]').dataset.value;
        if (q('batch') !== q('heldout')) return false;     // the background refinement has measured every held-out example
        const r = parseFloat(document.querySelector('.pn-readout[data-key="ratio"]').dataset.value);
        const p = document.querySelector('.js-plotly-plot'); if (!p || !p.data) return false;
        const star = p.data.find(t => t.name === 'live model: held-out batch');
        return star && Math.abs(star.x[0] - r) < 1e-12; }""",
        arg=[key, value],
        timeout=MOVE_TIMEOUT_MS,
    )
    page.wait_for_timeout(
        300
    )  # let plotly finish applying the batch that came with the readouts


def check_against_library(got: dict, ex, refined: bool = True):
    """The page's readouts and figure data equal the explorer state the library computes for the page's ratio, criterion and layer;
    `refined`: after a widget move, whose background refinement has measured every held-out example (code moves measure `quick`)."""
    from padnotes.pad import partial_layers, partition_report
    from padnotes.viz import mask_grid

    r = got["readouts"]
    if ex.state.criterion != r["criterion"]:
        ex.set_criterion(r["criterion"])
    st = ex.set_ratio(float(r["ratio"]))
    if refined:
        st = ex.refine()  # the page refined in the background; here, at once
        assert (
            int(r["heldout"]) == st.heldout == st.batch > ex.quick
        )  # the move measured `quick` examples, the refinement the rest
    assert r["criterion"] == st.criterion
    assert float(r["realised_ratio"]) == pytest.approx(st.realised_ratio, abs=1e-12)
    assert int(r["dynamic_params"]) == st.dynamic_params
    assert int(r["deploy"]) == st.deploy
    assert float(r["accuracy"]) == pytest.approx(st.accuracy, abs=1e-12)
    assert (
        float(r["accuracy_se"]) == pytest.approx(st.accuracy_se, abs=1e-12)
        and st.accuracy_se > 0
    )
    assert (
        int(r["batch"]) == st.batch
        and r["device"] == st.device
        and int(r["fine_tune_steps"]) == st.fine_tune_steps
    )
    assert float(r["latency_ms"]) > 0
    tr = {t["name"]: t for t in got["traces"]}
    assert tr["live model: held-out batch"]["x"] == [st.ratio] and tr[
        "live model: held-out batch"
    ]["y"][0] == pytest.approx(st.accuracy)
    assert tr["live model: now"]["y"] == [st.deploy]
    rep = partition_report(ex.model)
    assert tr["layer"]["x"] == [x["layer"] for x in rep]
    assert tr["layer"]["y"] == pytest.approx([x["ratio"] for x in rep], abs=1e-12)
    heat = [t for t in got["traces"] if t["type"] == "heatmap"][0]
    np.testing.assert_allclose(
        np.array(heat["z"]),
        mask_grid(partial_layers(ex.model)[st.layer])["z"],
        atol=1e-12,
    )
    return st


ERROR_JS = """() => { const e = [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')]
    .map(n => n.innerText).find(t => /Traceback|Error/.test(t)); return e || null; }"""


def _diagnostics(page, console) -> str:
    "What a failed page load leaves to read: the page's text, the browser console, the end of Voila's log."
    try:
        text = page.evaluate(
            "() => document.body ? document.body.innerText.slice(-1500) : '(no body)'"
        )
    except Exception as e:
        text = f"(page text unavailable: {e})"
    log = (
        (ARTIFACTS / "voila.log").read_text(errors="replace")[-2500:]
        if (ARTIFACTS / "voila.log").exists()
        else "(no voila.log)"
    )
    return (
        "--- browser console (last 30):\n"
        + "\n".join(console[-30:])
        + f"\n--- voila.log (end):\n{log}"
        + f"\n--- page text (end):\n{text}"
    )


def open_explorer(ctx, url: str):
    """A page with the explorer drawn. A notebook error fails at once with its traceback; a page that never draws is loaded once more
    (a new kernel), with a warning that carries what the first attempt showed; two failures fail with the diagnostics."""
    import warnings

    failures = []
    for attempt in range(LOAD_ATTEMPTS):
        page, console = ctx.new_page(), []
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        try:
            page.goto(
                url + "/", timeout=LOAD_TIMEOUT_MS
            )  # Voila answers once the notebook has run
            page.wait_for_function(
                f"() => document.querySelector('.pn-readouts') || ({ERROR_JS})()",
                timeout=LOAD_TIMEOUT_MS,
            )
        except Exception as e:
            failures.append(
                f"attempt {attempt + 1}: {type(e).__name__}: {str(e)[:300]}\n{_diagnostics(page, console)}"
            )
            page.close()
            continue
        err = page.evaluate(ERROR_JS)
        if err and not page.query_selector(".pn-readouts"):
            pytest.fail(
                f"the notebook failed in Voila:\n{err}\n{_diagnostics(page, console)}"
            )
        if failures:
            warnings.warn(
                "the explorer drew only on attempt %d; before that:\n%s"
                % (attempt + 1, "\n".join(failures))
            )
        return page
    pytest.fail("the explorer never drew:\n" + "\n\n".join(failures))


def test_explorer_in_chromium(server, reference):
    from playwright.sync_api import sync_playwright

    ex = reference
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport=dict(width=1440, height=1000),
        )
        ctx.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("http://127.0.0.1", "blob:", "data:"))
                else route.abort()
            ),
        )
        page = open_explorer(ctx, server)
        try:
            page.wait_for_function(
                "() => { const p = document.querySelector('.js-plotly-plot'); return p && p.data && p.data.length >= 6 }",
                timeout=MOVE_TIMEOUT_MS,
            )
            first = page_state(page)
            check_against_library(
                first, ex, refined=False
            )  # the notebook's last move came from code

            # 1. keyboard: three steps left on the slider's handle
            page.locator(".widget-slider .noUi-handle").first.focus()
            for _ in range(3):
                page.keyboard.press("ArrowLeft")
            want = round(float(first["readouts"]["ratio"]) - 0.03, 2)
            page.wait_for_function(
                "w => Math.abs(parseFloat(document.querySelector('.pn-readout[data-key=\"ratio\"]').dataset.value) - w) < 1e-9",
                arg=want,
                timeout=MOVE_TIMEOUT_MS,
            )
            wait_for(page, "ratio", page_state(page)["readouts"]["ratio"])
            kb = page_state(page)
            st = check_against_library(kb, ex)
            assert (
                kb["readouts"]["ratio"] != first["readouts"]["ratio"]
                and kb["readouts"]["deploy"] != first["readouts"]["deploy"]
            )

            # 2. typing in the slider's readout
            box = page.locator(".widget-slider .widget-readout").first
            box.click()
            page.keyboard.press("Control+A")
            page.keyboard.type("0.55")
            page.keyboard.press("Enter")
            wait_for(page, "ratio", repr(0.55))
            typed = page_state(page)
            st = check_against_library(typed, ex)
            assert st.ratio == 0.55 and int(typed["readouts"]["dynamic_params"]) > int(
                kb["readouts"]["dynamic_params"]
            )

            # 3. another criterion
            page.locator(".widget-toggle-button", has_text="IMP").first.click()
            wait_for(page, "criterion", "imp")
            crit = page_state(page)
            st = check_against_library(crit, ex)
            assert st.criterion == "imp" and float(crit["readouts"]["ratio"]) == 0.55

            # 4. another layer in the mask panel
            page.locator(".widget-dropdown select").first.select_option(
                "layers.2.conv2"
            )
            # the heatmap's rows: the layer's output channels (the library's model)
            rows = ex.model.get_submodule("layers.2.conv2").out_channels
            page.wait_for_function(
                "n => { const p = document.querySelector('.js-plotly-plot'); const h = p.data.find(t => t.type === 'heatmap');"
                " return h && h.y.length === n }",
                arg=rows,
                timeout=MOVE_TIMEOUT_MS,
            )
            page.wait_for_timeout(300)
            ex.set_layer("layers.2.conv2")
            check_against_library(page_state(page), ex)
        finally:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            target = page.locator(".widget-hbox:has(.js-plotly-plot)")
            if target.count():
                target.first.scroll_into_view_if_needed()
                target.first.screenshot(path=str(ARTIFACTS / "explorer.png"))
            else:
                page.screenshot(path=str(ARTIFACTS / "explorer.png"))
            ctx.close()
