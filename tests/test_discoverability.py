"""After `import fedlite`, every module a notebook uses is reachable, listed by dir() and help()."""
import importlib.util
import pkgutil
import pydoc

import fedlite


OPTIONAL = {"flower": "flwr"}   # modules of an optional extra: reachable once it is installed
PUBLIC_MODULES = sorted(m.name for m in pkgutil.iter_modules(fedlite.__path__)
                        if not m.name.startswith("_")
                        and (m.name not in OPTIONAL
                             or importlib.util.find_spec(OPTIONAL[m.name]) is not None))


def test_every_module_is_an_attribute_of_fedlite():
    for name in PUBLIC_MODULES:
        assert getattr(fedlite, name).__name__ == f"fedlite.{name}"


def test_dir_lists_every_module_and_hides_the_machinery():
    names = dir(fedlite)
    assert set(PUBLIC_MODULES) <= set(names)
    assert "importlib" not in names and "_importlib" not in names


def test_help_names_every_module():
    text = pydoc.render_doc(fedlite, renderer=pydoc.plaintext)
    doc = fedlite.__doc__
    for name in PUBLIC_MODULES:
        assert name in text and f"  {name}" in doc, name
