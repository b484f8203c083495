"""The package's layers, read from its own import statements: every module imports only modules of its layer or below,
and never a private name of another module."""

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "padnotes"

# lowest first; a module may import its own layer and those below it
LAYERS = [
    ("foundation", {"docs", "prose", "core"}),
    ("training", {"train"}),
    (
        "methods",
        {
            "data",
            "tuners",
            "sparse",
            "scoring",
            "dyconv",
            "moe",
            "pad",
            "adapters",
            "sparse_adapter",
            "diff_pruning",
            "hf",
            "__init__",
        },
    ),
    (
        "labs",
        {
            "experiments.__init__",
            "experiments.stats",
            "experiments.results",
            "experiments.sections",
            "experiments.dyconv",
            "experiments.moe",
            "experiments.scoring",
            "experiments.pad",
            "experiments.sparse_adapter",
            "experiments.diff_pruning",
        },
    ),
    ("figures", {"viz"}),
    ("widgets", {"widgets"}),
    ("command line", {"tour"}),
]
LAYER = {m: i for i, (_, mods) in enumerate(LAYERS) for m in mods}


def modules():
    for f in sorted(PKG.rglob("*.py")):
        if f.name == "_modidx.py":
            continue
        yield ".".join(f.relative_to(PKG).with_suffix("").parts), f


def imports(name, path):
    "(imported module, names taken from it, line) for every padnotes import in the module, at any depth."
    pkg = (
        name.split(".")[:-1] if not name.endswith("__init__") else name.split(".")[:-1]
    )
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "padnotes":
                target = (
                    node.module[len("padnotes.") :] if node.module != "padnotes" else ""
                )
            else:
                continue
            names = [a.name for a in node.names]
            if not target:  # `from padnotes import x` / `from . import x`
                for n in names:
                    sub = (
                        n if (PKG / f"{n}.py").exists() or (PKG / n).is_dir() else None
                    )
                    yield (sub or "__init__"), ([] if sub else [n]), node.lineno
                continue
            if target == "experiments":
                for n in names:
                    yield f"experiments.{n}", [], node.lineno
                continue
            yield target, names, node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "padnotes":
                    yield (a.name[len("padnotes.") :] or "__init__"), [], node.lineno


def resolve(target):
    if target in LAYER:
        return target
    return f"{target}.__init__" if f"{target}.__init__" in LAYER else target


def test_every_module_has_a_layer():
    missing = [m for m, _ in modules() if m not in LAYER]
    assert not missing, (
        f"modules with no layer in tests/test_layers.py: {missing}: place each in LAYERS"
    )


@pytest.mark.parametrize("name,path", list(modules()), ids=[m for m, _ in modules()])
def test_imports_point_down(name, path):
    bad = []
    for target, _, line in imports(name, path):
        t = resolve(target)
        if t not in LAYER:
            bad.append(f"line {line}: imports padnotes.{target}, which has no layer")
        elif LAYER[t] > LAYER[name]:
            bad.append(
                f"line {line}: {LAYERS[LAYER[name]][0]} module imports padnotes.{target} "
                f"({LAYERS[LAYER[t]][0]}, a layer above)"
            )
    assert not bad, f"padnotes.{name}:\n" + "\n".join(bad)


@pytest.mark.parametrize("name,path", list(modules()), ids=[m for m, _ in modules()])
def test_no_private_names_across_modules(name, path):
    bad = [
        f"line {line}: from padnotes.{target} import {n}"
        for target, names, line in imports(name, path)
        if resolve(target) != name
        for n in names
        if n.startswith("_") and not (n.startswith("__") and n.endswith("__"))
    ]
    assert not bad, (
        f"padnotes.{name} takes private names of other modules:\n" + "\n".join(bad)
    )


def test_the_checks_catch_a_bad_import(tmp_path):
    "The reader itself: an upward import and a private name are both seen."
    f = tmp_path / "m.py"
    f.write_text(
        "from ..tour import main\nfrom .results import _hidden\nimport padnotes.widgets\n"
    )
    got = list(imports("experiments.stats", f))
    assert [(resolve(t), n) for t, n, _ in got] == [
        ("tour", ["main"]),
        ("experiments.results", ["_hidden"]),
        ("widgets", []),
    ]
