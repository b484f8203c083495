"Documentation a user of padnotes sees without the rendered docs: help() text and the flat `import padnotes` namespace."

import importlib, inspect, pydoc, re, subprocess, sys
from pathlib import Path
import pytest

METHOD_MODULES = ("core", "sparse", "tuners", "dyconv", "moe", "scoring", "pad")


def _help(obj) -> str:
    "What help(obj) prints."
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


def _has(text, *parts):
    "Every part in `text`, ignoring the indentation (and, for classes, the ' |  ' margin) that help() adds."
    flat = re.sub(r"\s+", " ", re.sub(r"^ \|", "", text, flags=re.M))
    missing = [p for p in parts if re.sub(r"\s+", " ", p) not in flat]
    assert not missing, f"missing from help(): {missing}\n{text[:3000]}"


def test_help_padify():
    from padnotes.pad import padify

    h = _help(padify)
    _has(
        h,
        "Make `model` partially dynamic",
        "Parameters ---------- model : nn.Module a fully (or partially) dynamic model, converted in place",
        "config : PadConfig | float | None, default None a PadConfig, or the dynamic ratio",
        "criterion : str | None, default None 'imp' (default), 'random' or 'magnitude'",
        # the config's fields, with the config's comments (keywords_from)
        "dynamic_ratio : float, default 0.5 fraction of dynamic entries kept dynamic",
        "scope : str, default 'global'",
        "n_batches : int, default 10 batches per IMP scoring",
    )
    assert h.index("Make `model` partially dynamic") < h.index("Parameters"), (
        "the one-line summary comes first"
    )


def test_help_moefy_dynamicize_inject():
    from padnotes.moe import moefy
    from padnotes.dyconv import dynamicize
    from padnotes.tuners import inject

    for f in (moefy, dynamicize, inject):
        sig = inspect.signature(f)
        h = _help(f)
        _has(h, "Parameters ----------", *[p for p in sig.parameters])
    _has(_help(moefy), "num_experts : int, default 8")
    _has(_help(dynamicize), "num_kernels : int, default 4")
    for name in inspect.signature(
        inject
    ).parameters:  # each parameter's line, then its comment, indented
        assert re.search(rf"^\s*(\*\*)?{name}( : .*)?\n\s+\S", inject.__doc__, re.M), (
            f"inject's {name} has no comment"
        )


def test_help_configs_list_fields_with_comments():
    from padnotes.pad import PadConfig
    from padnotes.moe import MoEConfig

    _has(
        _help(PadConfig),
        "PAD-Net as a tuner",
        "dynamic_ratio : float, default 0.5 fraction of dynamic entries kept dynamic",
        "train : bool, default True mode while IMP scores",
        "freeze_base : bool, default False PAD-Net trains the whole network after the partition",
        # inherited from TunerConfig, comment from the base class
        "target_modules : list[str] | str | None, default None names, globs or a regex",
    )
    _has(
        _help(MoEConfig),
        "num_experts : int, default 8 experts per FFN block",
        "top_k : int, default 2 experts per token",
        "capacity_factor : float | None, default None None: dropless",
        "z_coef : float, default 0.001 weight of the router z-loss",
    )


def test_every_public_callable_with_parameters_has_a_parameters_section():
    bad = []
    for m in METHOD_MODULES:
        mod = importlib.import_module(f"padnotes.{m}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isclass(obj) or inspect.isfunction(inspect.unwrap(obj))):
                continue
            try:
                params = inspect.signature(obj).parameters
            except (TypeError, ValueError):
                continue
            if params and "Parameters\n----------\n" not in (obj.__doc__ or ""):
                bad.append(f"padnotes.{m}.{name}")
    assert not bad, bad


def test_documented_once_and_summary_kept():
    from padnotes.docs import document
    from padnotes.pad import padify

    before = padify.__doc__
    document(padify)
    document(padify)
    assert padify.__doc__ == before and before.count("Parameters\n----------") == 1
    assert before.splitlines()[0].startswith("Make `model` partially dynamic")


def test_flat_namespace_resolves():
    import padnotes

    assert len(padnotes.__all__) == len(set(padnotes.__all__)) >= 40
    for name in padnotes.__all__:
        assert getattr(padnotes, name) is not None, name
    from padnotes import padify
    from padnotes.pad import padify as p

    assert padify is p
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        padnotes.nothing


def test_readme_lists_the_namespace():
    "The README's 'What `import padnotes` gives you' section names exactly padnotes.__all__."
    import padnotes

    text = (Path(__file__).parent.parent / "README.md").read_text()
    assert "## What `import padnotes` gives you" in text
    sec = text.split("## What `import padnotes` gives you", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`(\w+)`", sec)) - {
        "padnotes",
        "help",
        "import",
        "data",
        "viz",
        "widgets",
        "tour",
        "experiments",
    }
    listed = {n for n in listed if not n.startswith("padnotes")}
    assert listed == set(padnotes.__all__), listed ^ set(padnotes.__all__)


def test_import_padnotes_is_light():
    "import padnotes (and help(padnotes)) pulls in neither pandas, plotly nor transformers, yet gives the methods; padnotes.viz loads on use."
    code = (
        "import sys, pydoc; import padnotes; from padnotes import padify, moefy, dynamicize; pydoc.render_doc(padnotes); "
        "bad = [m for m in ('pandas', 'plotly', 'transformers') if m in sys.modules]; assert not bad, bad; "
        "assert 'Parameters' in padify.__doc__; "
        "padnotes.viz; assert 'plotly' in sys.modules"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_every_chapter_ends_with_summary_and_exercises():
    "Issue 14: each chapter's last two sections are '## Summary' and '## Exercises', and Exercises holds at least three numbered items."
    import json

    for nb in sorted((Path(__file__).parents[1] / "nbs").glob("[0-9]*.ipynb")):
        md = [
            "".join(c["source"])
            for c in json.loads(nb.read_text())["cells"]
            if c["cell_type"] == "markdown"
        ]
        heads = [l.strip() for m in md for l in m.splitlines() if l.startswith("## ")]
        assert heads[-2:] == ["## Summary", "## Exercises"], (
            f"{nb.name} ends with {heads[-2:]}"
        )
        ex = "\n".join(md)["\n".join(md).rindex("## Exercises") :]
        assert len(re.findall(r"^\d+\. ", ex, re.M)) >= 3, (
            f"{nb.name}: fewer than three exercises"
        )


def test_the_prose_speaks_to_a_reader_not_about_our_project():
    "Markdown cells name no issues, closing notes or files outside the repository."
    import json, re
    from pathlib import Path

    words = re.compile(
        r"\bissues? \d+|\bthe issue\b|closing notes?|(METHODS|STYLE|ENVIRONMENT)\.md",
        re.IGNORECASE,
    )
    found = []
    for path in sorted((Path(__file__).parents[1] / "nbs").glob("*.ipynb")):
        for c in json.loads(path.read_text())["cells"]:
            if c["cell_type"] == "markdown":
                for m in words.finditer("".join(c["source"])):
                    found.append(f"{path.name}: {m.group(0)!r}")
    assert not found, found
