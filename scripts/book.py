"""Build padnotes' book: a static site of every chapter, offline, from the notebooks.

    bash scripts/run.sh docs                 # the whole book into ./_site (open _site/index.html through any static server)
    python scripts/book.py --only 05_padnet   # one chapter (and the home page), for a quick look

Steps: (1) run each notebook of nbs/ top to bottom at the test size (IN_TEST=1: the tiny settings the tests use; results sections
read the files that ship with padnotes), two at a time, with plotly drawing into plain HTML against one local plotly.js; (2) nbdev's
own docs processing (`nbdev.serve.proc_nbs`: `show_doc` API entries, exported code folded away, directives applied); (3) the
processed notebooks, minus Quarto's frontmatter, become pages of an MkDocs site (Material theme, mkdocs-jupyter) with a chapter
sidebar, search, an API reference of every exported name, and MathJax and plotly.js served from the site itself.
Nothing is fetched at build or read time.
"""

from __future__ import annotations
import argparse, concurrent.futures as cf, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS, WORK = ROOT / "nbs", ROOT / "_book"
SKIP_FLAGS = {
    "slow",
    "cuda",
    "notest",
    "eval: false",
}  # cells the docs build does not run (tst_flags, and Quarto's eval)
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*?)\s*$")

PREAMBLE = """\
import os
os.environ["IN_TEST"] = "1"
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer
class _BookRenderer(MimetypeRenderer):     # a div and its newPlot call; the page loads plotly.js once, in its head; no MathJax from a CDN
    def to_mimebundle(self, fig_dict):
        return {"text/html": pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False, full_html=False, validate=False)}
pio.renderers["padnotes_book"] = _BookRenderer()
pio.renderers.default = "padnotes_book"
"""


def doc_prefix() -> str:
    "The address nbdev writes into cross-references (settings.ini's doc_host and doc_baseurl), ending in a slash."
    import configparser

    ini = configparser.ConfigParser()
    ini.read(ROOT / "settings.ini")
    d = ini["DEFAULT"]
    return d["doc_host"].rstrip("/") + "/" + d["doc_baseurl"].strip("/") + "/"


def log(*a):
    print("[book]", *a, flush=True)


def directives(src: str) -> tuple[list[str], str]:
    "The `#|` directives at the top of a cell, and the source without them."
    lines, out = src.splitlines(), []
    i = 0
    while i < len(lines) and (m := DIRECTIVE.match(lines[i])):
        out.append(m.group(1))
        i += 1
    return out, "\n".join(lines[i:])


def execute(name: str) -> tuple[str, float]:
    "Run nbs/<name>.ipynb at the test size, cell by cell (flagged cells are left unrun), into _book/exec/."
    import nbformat
    from nbclient import NotebookClient

    t0 = time.time()
    nb = nbformat.read(NBS / f"{name}.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(NBS)}},
        allow_errors=False,
    )
    with client.setup_kernel(
        env={**os.environ, "IN_TEST": "1", "OMP_NUM_THREADS": "1"}
    ):
        pre = nbformat.v4.new_code_cell(PREAMBLE)
        client.execute_cell(pre, -1)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            flags = set(directives(cell.source)[0])
            if flags & SKIP_FLAGS:
                continue
            try:
                client.execute_cell(cell, i)
            except Exception as e:
                raise RuntimeError(
                    f"{name}.ipynb, cell {i} failed in the docs build:\n{cell.source[:400]}\n{e}"
                ) from None
    out = WORK / "exec" / f"{name}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, out)
    return name, time.time() - t0


WIDGET_NOTE = "(An interactive widget. It needs a running kernel: open this chapter in JupyterLab, `bash scripts/run.sh lab`.)"


# a show_doc entry's source link, in Quarto's attribute syntax that MkDocs prints as text
SHOW_DOC = re.compile(r"\[source\]\([^)\s]*\)\{[^}]*\}\s*")


def plain_entry(o) -> None:
    "A show_doc output as a plain API entry: its signature and docstring, no source-link furniture, no Out[n] prompt."
    md = o["data"]["text/markdown"]
    md = "".join(md) if isinstance(md, list) else md
    o["data"] = {"text/markdown": SHOW_DOC.sub("", md)}
    if o.get("output_type") == "execute_result":
        o["output_type"] = "display_data"
        o.pop("execution_count", None)


def page(src: Path, dst: Path, titles: dict) -> None:
    "One processed notebook as a page: its title from the frontmatter, directives as cell tags, widgets as a note, links to .html."
    import nbformat, yaml

    nb = nbformat.read(src, as_version=4)
    cells, meta = [], {}
    for c in nb.cells:
        s = c.source
        if c.cell_type == "raw" and s.startswith("---"):
            meta = yaml.safe_load(s.strip().strip("-")) or {}
            continue
        if c.cell_type == "markdown" and "THIS FILE WAS AUTOGENERATED" in s:
            continue
        if c.cell_type == "code":
            flags, body = directives(s)
            if "hide" in flags or "include: false" in flags:
                continue
            c.source = body
            tags = set(c.metadata.get("tags", []))
            if "echo: false" in flags:
                tags.add("remove_input")
            if not body.strip() and not c.get("outputs"):
                continue
            c.metadata["tags"] = sorted(tags)
            for o in c.get("outputs", []):
                data = o.get("data", {})
                if "application/vnd.jupyter.widget-view+json" in data:
                    o["data"] = {"text/plain": WIDGET_NOTE}
                if SHOW_DOC.search(str(data.get("text/markdown", ""))):
                    plain_entry(o)
        if c.cell_type == "markdown":
            c.source = re.sub(
                r"\]\(([\w.-]+)\.ipynb(#[^)]*)?\)",
                lambda m: f"]({m.group(1)}.html{m.group(2) or ''})",
                s,
            )
        cells.append(c)
    title = meta.get("title") or titles.get(src.stem, src.stem)
    head = f"# {title}\n\n" + (
        f"*{meta['description']}*\n\n" if meta.get("description") else ""
    )
    head += (
        f"<small>Outputs on this page come from a run at the test size (`IN_TEST=1`); results sections read the files that ship "
        f"with padnotes. Source: `nbs/{src.stem}.ipynb`.</small>"
    )
    nb.cells = [nbformat.v4.new_markdown_cell(head)] + cells
    nb.metadata.pop("widgets", None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    titles[src.stem] = title


def api_reference(path: Path) -> None:
    "Every exported name of padnotes, module by module, as nbdev's show_doc renders it."
    import importlib
    from nbdev.showdoc import BasicMarkdownRenderer
    from padnotes._modidx import d

    out = [
        "# API reference\n",
        "Every name padnotes exports, by module, with its signature and documentation (nbdev's `show_doc`).\n",
    ]
    for mod in sorted(d["syms"]):
        m = importlib.import_module(mod)
        names = list(getattr(m, "__all__", []))
        if not names:
            continue
        first = (m.__doc__ or "").strip().splitlines()
        out.append(f"\n## `{mod}`\n\n" + (first[0] + "\n" if first else ""))
        for n in names:
            obj = getattr(m, n, None)
            if obj is None or not callable(obj):
                continue
            try:
                md = BasicMarkdownRenderer(obj)._repr_markdown_()
            except Exception as e:
                md = f"### {n}\n\n(no entry: {type(e).__name__})"
            out.append(SHOW_DOC.sub("", md).replace("\n---\n", "\n") + "\n")
    path.write_text("\n".join(out))


MKDOCS = """\
site_name: padnotes
site_description: Dynamic networks and parameter-efficient tuning, taught in notebooks and exported as a tested library
docs_dir: docs
site_dir: {site}
use_directory_urls: false
theme:
  name: material
  custom_dir: overrides
  font: false
  features: [navigation.footer, navigation.top, search.highlight]
  palette: {{primary: indigo}}
plugins:
  - search
  - mkdocs-jupyter:
      execute: false
      include_source: false
      ignore_h1_titles: true
      include_requirejs: false
      custom_mathjax_url: "js/mathjax/tex-svg.js"
      remove_tag_config:
        remove_input_tags: [remove_input]
markdown_extensions: [admonition, tables, toc]
hooks: [hooks.py]
nav:
{nav}
"""

HOOKS = """\
\"\"\"MkDocs hook of padnotes' book. mkdocs-jupyter's table of contents slugs a heading from its text without inline code, while
nbconvert's page ids keep it, so a heading like "`DynamicConv2d`: a drop-in" gets two different ids and its contents link is dead.
Each contents entry whose id the page lacks gets an anchor in the first unclaimed heading whose code-less text slugs to that id.\"\"\"
import re, unicodedata

HEADING = re.compile(r"<h([1-6])\\b[^>]*>(.*?)</h\\1>", re.S)

def _slug(text):
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[-\\s]+", "-", re.sub(r"[^\\w\\s-]", "", text).strip().lower())

def _flat(items):
    for it in items:
        yield it
        yield from _flat(it.children)

DOCS = "@DOCS@"  # where nbdev points its cross-references: a site this book replaces

def _text(inner):
    "A heading's text, inline code included, without its pilcrow."
    return re.sub(r"<[^>]+>", "", inner).replace("\u00b6", "").strip()

def _local_links(html, files):
    "nbdev's cross-references (DOCS + 'moe.html#moefy') pointed at this book's pages ('03_moe.html#moefy')."
    stems = [f.src_path[:-6] for f in files if f.src_path.endswith(".ipynb")]
    pages = {re.sub(r"^\\d+[a-z]?_", "", s): s for s in stems}
    def to(m):
        stem = pages.get(m.group(1))
        return f'href="{stem}.html{m.group(2) or ""}"' if stem else m.group(0)
    return re.sub(r'href="' + re.escape(DOCS) + r'(\\w+)\\.html(#[^"]*)?"', to, html)

def on_post_build(config):
    "A cross-reference whose anchor its page lacks (a method, or a private name, with no entry of its own) goes to the class's entry, or to the page."
    from pathlib import Path
    site = Path(config["site_dir"])
    htmls = {p.name: p.read_text() for p in site.glob("*.html")}
    ids = {n: set(re.findall(r'\\sid="([^"]+)"', h)) for n, h in htmls.items()}
    def fix(m):
        page, frag = m.group(1), m.group(2)
        if page not in ids or frag in ids[page]: return m.group(0)
        owner = frag.split(".")[0]
        return f'href="{page}#{owner}"' if owner in ids[page] else f'href="{page}"'
    for n, h in htmls.items():
        new = re.sub(r'href="(\\w+\\.html)#([^"]+)"', fix, h)
        if new != h: (site / n).write_text(new)

def on_page_content(html, page, config, files):
    html = _local_links(html, files)
    if not page.file.src_path.endswith(".ipynb"): return html
    ids = set(re.findall(r'\\sid="([^"]+)"', html))
    heads = [(m, _slug(re.sub(r"<[^>]+>", "", re.sub(r"<code>.*?</code>", "", m.group(2), flags=re.S)).replace("\\u00b6", ""))) for m in HEADING.finditer(html)]
    claimed, inserts = set(), []
    for it in _flat(page.toc):
        if it.id in ids: continue
        want = re.sub(r"_\\d+$", "", it.id)
        for i, (m, slug) in enumerate(heads):
            if i not in claimed and slug == want:
                claimed.add(i); inserts.append((m.start(2), f'<a id="{it.id}"></a>'))
                it.title = _text(m.group(2)); break
    for pos, tag in sorted(inserts, reverse=True): html = html[:pos] + tag + html[pos:]
    return html
"""

OVERRIDE = """{% extends "base.html" %}
{% block extrahead %}<script src="{{ 'js/plotly.min.js' | url }}"></script>
<script>window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]], displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]], processEscapes: true, tags: "ams"},
                  svg: {fontCache: "global"}, options: {enableMenu: false}};   // MathJax 3, served from this site
</script>{% endblock %}
"""


def build(
    only: list[str] | None, site: Path, workers: int, reuse: bool = False
) -> float:
    t0 = time.time()
    names = sorted(p.stem for p in NBS.glob("*.ipynb") if not p.name.startswith("_"))
    if only:
        names = [n for n in names if n in set(only) | {"index"}]
    for d in ("docs", "overrides") if reuse else ("",):
        shutil.rmtree(WORK / d, ignore_errors=True)
    (WORK / "docs" / "js").mkdir(parents=True)
    todo = [n for n in names if not (reuse and (WORK / "exec" / f"{n}.ipynb").exists())]
    log(
        f"1/3 running {len(todo)} notebooks at the test size, {workers} at a time"
        + (f" ({len(names) - len(todo)} reused)" if reuse else "")
    )
    with cf.ProcessPoolExecutor(workers) as ex:
        for name, s in ex.map(execute, todo):
            log(f"  ran {name} in {s:.0f} s")
    log("2/3 nbdev's docs processing (show_doc entries)")
    env = {**os.environ, "IN_TEST": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from nbdev.serve import proc_nbs; print(proc_nbs({str(WORK / 'exec')!r}, n_workers=0, force=True))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        raise SystemExit(f"nbdev's processing failed:\n{proc.stderr[-3000:]}")
    processed = Path(proc.stdout.strip().splitlines()[-1])
    log("3/3 the site (MkDocs, Material, mkdocs-jupyter)")
    titles, docs = {}, WORK / "docs"
    for name in names:
        page(processed / f"{name}.ipynb", docs / f"{name}.ipynb", titles)
    api_reference(docs / "api_reference.md")
    import plotly, mathjax  # mathjax: the django-static-mathjax wheel, MathJax 3.2

    shutil.copy(
        Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
        docs / "js" / "plotly.min.js",
    )
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    (docs / "js" / "mathjax").mkdir()
    shutil.copy(
        es5 / "tex-svg.js", docs / "js" / "mathjax"
    )  # TeX in, SVG out: no web fonts to fetch
    for sub in ("input/tex/extensions", "ui", "a11y"):
        shutil.copytree(
            es5 / sub, docs / "js" / "mathjax" / sub
        )  # what it may load later
    (WORK / "overrides").mkdir()
    (WORK / "overrides" / "main.html").write_text(OVERRIDE)
    (WORK / "hooks.py").write_text(HOOKS.replace("@DOCS@", doc_prefix()))
    nav = "\n".join(
        ["  - Home: index.ipynb"]
        + [
            f"  - {json.dumps(f'{n.split(chr(95))[0]} {titles[n]}')}: {n}.ipynb"
            for n in names
            if n != "index"
        ]
        + ["  - API reference: api_reference.md"]
    )
    (WORK / "mkdocs.yml").write_text(MKDOCS.format(site=site.resolve(), nav=nav))
    shutil.rmtree(site, ignore_errors=True)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(WORK / "mkdocs.yml"),
        ],
        cwd=WORK,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    if r.returncode:
        raise SystemExit(
            f"mkdocs build failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        )
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--only",
        nargs="*",
        help="chapter names (notebook stems) to build, beside the home page",
    )
    ap.add_argument(
        "--site",
        default=str(ROOT / "_site"),
        help="where the site goes (default ./_site)",
    )
    ap.add_argument("--workers", type=int, default=2, help="notebooks run at once")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep notebooks already run in _book/exec (for work on the site itself)",
    )
    a = ap.parse_args()
    s = build(a.only, Path(a.site), a.workers, a.reuse)
    log(
        f"built {a.site} in {s:.0f} s; open {Path(a.site) / 'index.html'} through a static server, e.g. python -m http.server -d {a.site}"
    )


if __name__ == "__main__":
    main()
