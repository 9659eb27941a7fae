"""After `import fedlite`, every module a notebook uses is reachable, listed by dir() and help().

The package is in layers (folders); a module in a layer is also reachable by its short name
(`fedlite.leakage` is `fedlite.privacy.leakage`), by attribute and by import, as the same object.
"""
import importlib
import importlib.util
import pkgutil
import pydoc
import subprocess
import sys
from unittest import mock

import pytest

import fedlite

OPTIONAL = {"flower": "flwr"}   # modules of an optional extra: reachable once it is installed
PUBLIC_MODULES = sorted(m.name for m in pkgutil.iter_modules(fedlite.__path__)
                        if not m.name.startswith("_")
                        and (m.name not in OPTIONAL
                             or importlib.util.find_spec(OPTIONAL[m.name]) is not None))
LAYERS = ("privacy", "communication", "course")
SHORT_NAMES = {m.name: f"fedlite.{layer}.{m.name}" for layer in LAYERS
               for m in pkgutil.iter_modules(importlib.import_module(f"fedlite.{layer}").__path__)}


def test_every_module_is_an_attribute_of_fedlite():
    for name in PUBLIC_MODULES:
        assert getattr(fedlite, name).__name__ == f"fedlite.{name}"


@pytest.mark.parametrize("short, full", sorted(SHORT_NAMES.items()))
def test_a_layer_module_is_the_same_object_by_its_short_name(short, full):
    module = importlib.import_module(full)
    assert getattr(fedlite, short) is module
    assert importlib.import_module(f"fedlite.{short}") is module
    assert sys.modules[f"fedlite.{short}"] is module
    assert module.__spec__.name == full   # untouched by the short name (reload needs it)


def test_short_names_work_in_import_statements_and_patches():
    import fedlite.checks
    import fedlite.widgets
    from fedlite.leakage import invert_linear_gradient
    assert fedlite.checks is fedlite.course.checks
    assert invert_linear_gradient is fedlite.privacy.leakage.invert_linear_gradient
    with mock.patch("fedlite.widgets.experiments") as fake:
        assert fedlite.course.widgets.experiments is fake


def test_import_fedlite_leaves_the_slow_and_optional_modules_unimported():
    code = ("import sys, fedlite; print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('matplotlib', 'ipywidgets') or m in ('fedlite.privacy', 'fedlite.communication', "
            "'fedlite.course.plotting', 'fedlite.course.widgets', 'fedlite.flower')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_dir_lists_every_module_and_hides_the_machinery():
    names = dir(fedlite)
    assert set(PUBLIC_MODULES) <= set(names)
    assert set(SHORT_NAMES) <= set(names)
    assert "importlib" not in names and "_importlib" not in names


def test_help_names_every_module():
    text = pydoc.render_doc(fedlite, renderer=pydoc.plaintext)
    doc = fedlite.__doc__
    for name in PUBLIC_MODULES + [name for name in SHORT_NAMES if not name.startswith("_")]:
        assert name in text and f"  {name}" in doc, name
    for layer in LAYERS:
        assert f"fedlite/{layer}/" in doc, layer
