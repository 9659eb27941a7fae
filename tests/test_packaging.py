"""pyproject.toml (pip) and environment.yml (conda, Binder) must ask for the same packages."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11+")

ROOT = Path(__file__).resolve().parent.parent
NOT_IN_PYPROJECT = {"python", "pip"}  # conda needs these; pip gets them from requires-python
# pip-only extras, left out of conda/Binder: Ray (flower-simulation, ~220 MB; conda-forge names
# it ray-core) is for Flower's simulation engine only
NOT_IN_ENVIRONMENT = {"ray"}


def split_requirement(text):
    """'numpy >=1.24, <2.6' -> ('numpy', {'>=1.24', '<2.6'}); names normalised as pip does."""
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(.*?)\s*", text)
    assert match, f"cannot read requirement {text!r}"
    name, bounds = match.groups()
    assert ";" not in bounds and "[" not in bounds, f"markers/extras not handled: {text!r}"
    clauses = {clause.replace(" ", "") for clause in bounds.split(",") if clause.strip()}
    return re.sub(r"[-_.]+", "-", name).lower(), clauses


def version(text):
    return tuple(int(part) for part in text.split("."))


@pytest.fixture(scope="module")
def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def environment():
    return yaml.safe_load((ROOT / "environment.yml").read_text())


@pytest.fixture(scope="module")
def conda_requirements(environment):
    return dict(split_requirement(dep) for dep in environment["dependencies"] if isinstance(dep, str))


@pytest.fixture(scope="module")
def pip_requirements(pyproject):
    project = pyproject["project"]
    extras = project.get("optional-dependencies", {})
    assert "test" in extras, "pyproject.toml needs a `test` extra"
    requirements = project["dependencies"] + [dep for deps in extras.values() for dep in deps]
    pairs = [split_requirement(dep) for dep in requirements]
    assert len({name for name, _ in pairs}) == len(pairs), "a package is listed twice"
    return dict(pairs)


def test_channels_are_conda_forge_only(environment):
    assert environment["channels"] == ["conda-forge", "nodefaults"]


def test_every_pyproject_dependency_is_in_environment_yml_with_the_same_bounds(
        pip_requirements, conda_requirements):
    for name, bounds in pip_requirements.items():
        if name in NOT_IN_ENVIRONMENT:
            continue
        assert name in conda_requirements, f"{name} is in pyproject.toml but not environment.yml"
        assert conda_requirements[name] == bounds, (
            f"{name}: pyproject.toml says {sorted(bounds)}, "
            f"environment.yml says {sorted(conda_requirements[name])}")


def test_environment_yml_has_nothing_pyproject_lacks(pip_requirements, conda_requirements):
    extra = set(conda_requirements) - set(pip_requirements) - NOT_IN_PYPROJECT
    assert not extra, f"in environment.yml but not pyproject.toml: {sorted(extra)}"


def test_environment_yml_installs_fedlite_itself_with_pip(environment, conda_requirements):
    assert "pip" in conda_requirements
    pip_sections = [dep["pip"] for dep in environment["dependencies"] if isinstance(dep, dict)]
    assert pip_sections == [["-e ."]]


def test_python_lower_bound_matches_requires_python(pyproject, conda_requirements):
    requires = {clause.replace(" ", "") for clause in pyproject["project"]["requires-python"].split(",")}
    lower = [clause for clause in requires if clause.startswith(">=")]
    assert len(lower) == 1
    assert lower[0] in conda_requirements["python"]


@pytest.mark.parametrize("source", ["pip_requirements", "conda_requirements"])
def test_numpy_has_an_upper_bound_numba_supports(source, request):
    """numba 0.68 refuses numpy >= 2.6, so numpy must be capped below it in both files."""
    bounds = request.getfixturevalue(source)["numpy"]
    upper = [b for b in bounds if b.startswith("<")]
    assert upper, f"numpy has no upper bound in {source}: {sorted(bounds)}"
    for bound in upper:
        if bound.startswith("<="):
            assert version(bound[2:]) < (2, 6), bound
        else:
            assert version(bound[1:]) <= (2, 6), bound
    assert not any(b.startswith("==") for b in bounds), "no exact pins"


def test_a_wheel_holds_every_subpackage(tmp_path):
    """A non-editable install must ship fedlite.core, fedlite.algorithms, fedlite.flower, ..."""
    import zipfile
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                             "-q", "-w", str(tmp_path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {result.stderr[-300:]}")
    wheel = next(tmp_path.glob("*.whl"))
    shipped = {name.rsplit("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "fedlite").rglob("__init__.py")}
    assert packages <= shipped
