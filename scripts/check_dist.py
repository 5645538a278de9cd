"""Build the sdist and wheel out of the tree and check them as a user would receive them.

``make dist`` runs it; ``tests/test_dist.py`` runs it in the test suite. Steps:

1. ``python -m build``: the sdist, then the wheel built *from that sdist* (so a file missing from
   the sdist breaks the wheel), both into ``--outdir``; build's work directories live in the
   system temp dir and the checkout gains no ``build/`` or ``*.egg-info``;
2. ``twine check --strict`` on both, and their contents: LICENSE, ``py.typed``, every data file;
3. a fresh virtual environment outside the checkout, with the wheel installed by pip (with the
   ``parquet`` and ``pubsub`` extras, plus pytest, which loads the package's pytest plugin);
4. there, with ``python -I`` (no PYTHONPATH, no current directory on sys.path): import every
   module of the package from the installed wheel, and check the entry points Airflow and pytest
   read;
5. ``salesforce-suite-emulator`` from that environment, and one example DAG run with
   ``dag.test()`` against it (``airflow db migrate`` in a temporary AIRFLOW_HOME).

Two ways to get the dependencies into the fresh environment (``--deps``):

- ``index`` (``make dist``): pip resolves and downloads them from the package index, as
  ``pip install`` does for a user. Minutes on a cold cache.
- ``layered`` (the test suite): the dependencies come from a *base* made of exactly the
  distributions the wheel's ``Requires-Dist`` needs (transitively, markers evaluated), linked
  file by file from the running environment: not the project's test tools, not this package.
  The fresh environment sees the base through a ``.pth`` file, and pip installs the wheel with
  ``--no-index``: it must find every declared requirement satisfied there, or fail. This proves
  the wheel's files, metadata, entry points and declared dependencies are enough; it does not
  prove that today's index resolves them to the same versions (``index`` does).
"""

from __future__ import annotations

import argparse
import email.parser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "airflow_provider_salesforce_suite"
DIST_NAME = "airflow-provider-salesforce-suite"
EXTRAS = ("parquet", "pubsub")
# Loads the package's pytest11 plugin (emulator fixtures); not a dependency of the package.
EXTRA_TOOLS = ("pytest",)
EXAMPLE_DAG = "example_salesforce_rest_files"
# What a setuptools build leaves in a source tree; none may appear.
TREE_LITTER = ("build", "*.egg-info")


class DistCheckError(Exception):
    """A check of the built distributions failed."""


def _run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None,
         timeout: float = 600) -> str:
    """Run ``cmd``; its output on success, a :class:`DistCheckError` naming it on failure."""
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise DistCheckError(f"{' '.join(cmd[:4])} ... exited {proc.returncode}:\n{proc.stdout[-3000:]}"
                             f"\n{proc.stderr[-3000:]}")
    return proc.stdout


def tree_litter(source: Path) -> set[str]:
    """Build leftovers at the top of ``source`` and of the package directory."""
    found: set[str] = set()
    for folder in (source, source / PACKAGE):
        for pattern in TREE_LITTER:
            found.update(str(p.relative_to(source)) for p in folder.glob(pattern))
    return found


def build(source: Path, outdir: Path) -> tuple[Path, Path]:
    """Build the sdist and, from it, the wheel into ``outdir``; the checkout must stay clean.

    :param source: the project directory.
    :param outdir: where the sdist and wheel go (created; older builds of ours removed).
    """
    outdir.mkdir(parents=True, exist_ok=True)
    for old in [*outdir.glob(f"{PACKAGE}-*.whl"), *outdir.glob(f"{PACKAGE}-*.tar.gz")]:
        old.unlink()
    before = tree_litter(source)
    _run([sys.executable, "-m", "build", "--outdir", str(outdir), str(source)], cwd=source)
    new = tree_litter(source) - before
    if new:
        raise DistCheckError(f"the build wrote into the checkout: {sorted(new)}")
    wheels, sdists = list(outdir.glob(f"{PACKAGE}-*.whl")), list(outdir.glob(f"{PACKAGE}-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise DistCheckError(f"expected one wheel and one sdist in {outdir}, found {wheels + sdists}")
    return sdists[0], wheels[0]


def twine_check(*files: Path) -> None:
    """``twine check --strict``: metadata valid, README renders on the index."""
    _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, files)])


def _tracked_package_data(source: Path) -> set[str]:
    """The package's non-Python files that git tracks (falls back to the files on disk)."""
    try:
        out = _run(["git", "-C", str(source), "ls-files", PACKAGE])
        names = set(out.split())
    except (DistCheckError, FileNotFoundError):
        names = {str(p.relative_to(source)) for p in (source / PACKAGE).rglob("*") if p.is_file()
                 and "__pycache__" not in p.parts}
    return {n for n in names if not n.endswith(".py")} | {f"{PACKAGE}/py.typed"}


def check_wheel_contents(wheel: Path, source: Path) -> list[str]:
    """The wheel holds LICENSE, ``py.typed`` and every data file of the package.

    :returns: the wheel's member names.
    """
    names = zipfile.ZipFile(wheel).namelist()
    missing = sorted(_tracked_package_data(source) - set(names))
    if not any(re.fullmatch(r"[^/]+\.dist-info/licenses/LICENSE", n) for n in names):
        missing.append("*.dist-info/licenses/LICENSE")
    if missing:
        raise DistCheckError(f"{wheel.name} lacks {missing}")
    stray = [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    if stray:
        raise DistCheckError(f"{wheel.name} holds compiled files: {stray[:5]}")
    return names


def check_sdist_contents(sdist: Path) -> None:
    """The sdist holds LICENSE, ``py.typed``, the changelog and pyproject.toml."""
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = sorted({"LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml", f"{PACKAGE}/py.typed"} - names)
    if missing:
        raise DistCheckError(f"{sdist.name} lacks {missing}")


def wheel_requirements(wheel: Path) -> list[str]:
    """``Requires-Dist`` of the wheel's METADATA."""
    with zipfile.ZipFile(wheel) as zf:
        meta_name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    return meta.get_all("Requires-Dist") or []


def requirement_closure(requirements: list[str], extras: tuple[str, ...]) -> dict[str, metadata.Distribution]:
    """The installed distributions that ``requirements`` (with ``extras``) need, transitively.

    :param requirements: PEP 508 strings, the root's ``Requires-Dist``.
    :param extras: the root's extras to evaluate markers with.
    :raises DistCheckError: a needed distribution is not installed here.
    """
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions()}
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, str]] = set()
    todo = [(Requirement(r), extras) for r in requirements]
    env = default_environment()
    while todo:
        req, parent_extras = todo.pop()
        if req.marker and not any(req.marker.evaluate({**env, "extra": e}) for e in (*parent_extras, "")):
            continue
        name = canonicalize_name(req.name)
        if name == canonicalize_name(DIST_NAME):
            continue  # the package's own extras refer to itself
        for extra in ("", *sorted(req.extras)):
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            dist = installed.get(name)
            if dist is None:
                raise DistCheckError(f"{req} is needed but not installed in {sys.prefix}")
            if not req.specifier.contains(dist.version, prereleases=True):
                raise DistCheckError(f"{req} is needed but {name} {dist.version} is installed")
            found[name] = dist
            todo.extend((Requirement(r), tuple(req.extras)) for r in dist.requires or [])
    return found


def _owners(site: Path) -> dict[tuple[str, ...], set[str]]:
    """For every file and folder of ``site`` that some RECORD lists: the distributions owning it."""
    owners: dict[tuple[str, ...], set[str]] = {}
    for dist in metadata.distributions(path=[str(site)]):
        name = canonicalize_name(dist.metadata["Name"])
        for rel in dist.files or []:
            parts = rel.parts
            if parts[0] == "..":  # console scripts outside site-packages
                continue
            for depth in range(1, len(parts) + 1):
                owners.setdefault(parts[:depth], set()).add(name)
    return owners


def link_base(dists: dict[str, metadata.Distribution], base: Path) -> int:
    """Link the installed files of ``dists`` into ``base`` (a site directory); the link count.

    A folder whose every owner is in ``dists`` is linked whole; a shared one (``airflow/`` holds
    providers of the test extra too) is made and its entries decided one by one.
    """
    wanted = set(dists)
    count = 0
    for site in {Path(d.locate_file("")).resolve() for d in dists.values()}:
        owners = _owners(site)
        for rel, who in sorted(owners.items()):
            parent_shared = len(rel) == 1 or not owners[rel[:-1]] <= wanted
            if not parent_shared or not who & wanted:
                continue  # linked with its folder already, or none of ours
            src = site.joinpath(*rel)
            if (src.is_dir() and who <= wanted) or (src.is_file() and who & wanted):
                dest = base.joinpath(*rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.symlink_to(src)
                count += 1
    return count


def fresh_env(workdir: Path) -> dict[str, str]:
    """The environment for processes of the fresh venv: nothing that points back here.

    :param workdir: the check's temporary directory (Airflow's home goes there).
    """
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH"}
           and not k.startswith(("AIRFLOW", "PYTEST"))}
    env["AIRFLOW_HOME"] = str(workdir / "airflow-home")
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # The layered base links into another environment: write no bytecode there.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def make_venv(path: Path, wheel: Path, deps: str) -> Path:
    """A new virtual environment at ``path`` with the wheel installed; its python.

    :param deps: ``index`` or ``layered`` (see the module docstring).
    """
    target = f"{wheel}[{','.join(EXTRAS)}]"
    env = fresh_env(path.parent)
    if deps == "index":
        _run([sys.executable, "-m", "venv", str(path)], env=env)
        python = path / "bin" / "python"
        _run([str(python), "-m", "pip", "install", "--quiet", target, *EXTRA_TOOLS], env=env, cwd=path)
        return python
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)], env=env)
    python = path / "bin" / "python"
    closure = requirement_closure([*wheel_requirements(wheel), *EXTRA_TOOLS], EXTRAS)
    if canonicalize_name(DIST_NAME) in closure:
        raise DistCheckError("the base would hold the package under test")
    base = path.parent / "deps-base"
    link_base(closure, base)
    site = Path(_run([str(python), "-I", "-B", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     env=env).strip())
    (site / "_deps_base.pth").write_text(f"import site; site.addsitedir({str(base)!r})\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    _run([*pip, "install", "--quiet", "--no-index", target, *EXTRA_TOOLS], env=env, cwd=path)
    _run([*pip, "check"], env=env, cwd=path)
    return python


_IMPORT_ALL = """
import importlib, importlib.metadata as md, json, pkgutil, sys, sysconfig
from pathlib import Path
site = Path(sysconfig.get_path("purelib"))
import {pkg} as pkg
problems = []
if Path(pkg.__file__).parent != site / "{pkg}":
    problems.append(f"imported from {{pkg.__file__}}, not {{site}}")
if not (site / "{pkg}" / "py.typed").is_file():
    problems.append("py.typed not installed")
walk_error = lambda name: problems.append(f"{{name}}: the package fails to import")
names = [m.name for m in pkgutil.walk_packages(pkg.__path__, "{pkg}.", onerror=walk_error)
         if m.name.rsplit(".", 1)[-1] != "__main__"]  # __main__ runs the emulator
for name in names:
    try:
        module = importlib.import_module(name)
    except Exception as exc:
        problems.append(f"{{name}}: {{type(exc).__name__}}: {{exc}}")
        continue
    if not str(getattr(module, "__file__", "") or "").startswith(str(site)):
        problems.append(f"{{name}} from {{module.__file__}}")
dist = md.distribution("{dist}")
if Path(dist.locate_file("")).resolve() != site.resolve():
    problems.append(f"distribution metadata at {{dist.locate_file('')}}")
groups = {{ep.group: ep.value for ep in dist.entry_points}}
for group in ("apache_airflow_provider", "pytest11", "console_scripts"):
    if group not in groups:
        problems.append(f"no {{group}} entry point")
from airflow.providers_manager import ProvidersManager
if "{dist}" not in ProvidersManager().providers:
    problems.append("Airflow's ProvidersManager does not list the provider")
print(json.dumps({{"modules": len(names), "problems": problems}}))
"""


def import_every_module(python: Path, workdir: Path) -> int:
    """Import every module of the installed package in the fresh venv; the count.

    :raises DistCheckError: a module fails to import or comes from anywhere but the venv.
    """
    code = _IMPORT_ALL.format(pkg=PACKAGE, dist=DIST_NAME)
    env = fresh_env(workdir)
    result = json.loads(_run([str(python), "-I", "-B", "-c", code], env=env, cwd=workdir).strip().splitlines()[-1])
    if result["problems"]:
        raise DistCheckError("in the fresh venv: " + "; ".join(result["problems"]))
    return result["modules"]


class Emulator:
    """``salesforce-suite-emulator`` from the fresh venv, on a free port, as a context manager."""

    def __init__(self, venv_bin: Path, workdir: Path) -> None:
        self._cmd = [str(venv_bin / "salesforce-suite-emulator"), "--port", "0", "--cert-dir", str(workdir / "certs")]
        self._workdir = workdir
        self.connection: str = ""
        self.returncode: int | None = None

    def __enter__(self) -> Emulator:
        # Its output goes to a file: a pipe nobody reads would block a chatty server.
        log = self._workdir / "emulator.log"
        with log.open("w") as out:
            self._proc = subprocess.Popen(self._cmd, stdout=out, stderr=subprocess.STDOUT,
                                          env=fresh_env(self._workdir), cwd=self._workdir)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self._proc.poll() is None:
            match = re.search(r"^export AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT='(.*)'$", log.read_text(), re.M)
            if match:
                self.connection = match.group(1)
                return self
            time.sleep(0.2)
        self.__exit__()
        raise DistCheckError("the emulator did not start:\n" + log.read_text()[-3000:])

    def __exit__(self, *exc: object) -> None:
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self.returncode = self._proc.returncode


_RUN_DAG = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
run = bag.get_dag("{dag_id}").test(run_conf={{"accounts": 10, "output_dir": "file://" + sys.argv[2]}})
out = Path(sys.argv[2])
print(json.dumps({{"state": str(run.state), "files": sorted(p.name for p in out.iterdir())}}))
"""


def run_example_dag(python: Path, workdir: Path, emulator: Emulator) -> dict:
    """Run :data:`EXAMPLE_DAG` with ``dag.test()`` in the fresh venv against ``emulator``.

    :returns: the run's state and the files it wrote.
    """
    dags, output = workdir / "dags", workdir / "output"
    dags.mkdir(exist_ok=True)
    output.mkdir(exist_ok=True)
    shutil.copy(ROOT / "example_dags" / f"{EXAMPLE_DAG}.py", dags)
    env = {**fresh_env(workdir), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW_CONN_SALESFORCE_SUITE_DEFAULT": emulator.connection}
    _run([str(python), "-I", "-B", "-m", "airflow", "db", "migrate"], env=env, cwd=workdir)
    out = _run([str(python), "-I", "-B", "-c", _RUN_DAG.format(dag_id=EXAMPLE_DAG), str(dags), str(output)],
               env=env, cwd=workdir)
    result = json.loads(out.strip().splitlines()[-1])
    expected = {"accounts.csv", "accounts.failed.csv", "accounts.parquet", "accounts_updated.jsonl"}
    if result["state"] != "success" or not expected <= set(result["files"]):
        raise DistCheckError(f"{EXAMPLE_DAG} in the fresh venv: {result}")
    return result


def check(outdir: Path, deps: str, source: Path = ROOT) -> dict:
    """Every step; a summary of what was checked.

    :param outdir: where the sdist and wheel go.
    :param deps: ``index`` or ``layered``.
    :param source: the project directory to build.
    """
    timings: dict[str, float] = {}
    started = time.monotonic()

    def lap(step: str) -> None:
        timings[step] = round(time.monotonic() - started - sum(timings.values()), 1)

    sdist, wheel = build(source, outdir)
    lap("build")
    twine_check(sdist, wheel)
    members = check_wheel_contents(wheel, source)
    check_sdist_contents(sdist)
    lap("twine_and_contents")
    with tempfile.TemporaryDirectory(prefix="sf-suite-dist-check-") as tmp:
        workdir = Path(tmp)
        python = make_venv(workdir / "venv", wheel, deps)
        lap("install")
        modules = import_every_module(python, workdir)
        lap("import_all")
        with Emulator(python.parent, workdir) as emulator:
            dag = run_example_dag(python, workdir, emulator)
        if emulator.returncode != 0:  # SIGTERM is its documented way to stop
            raise DistCheckError(f"salesforce-suite-emulator exited {emulator.returncode} on SIGTERM")
        lap("example_dag")
    return {"sdist": str(sdist), "wheel": str(wheel), "wheel_files": len(members), "deps": deps,
            "modules_imported": modules, "example_dag": EXAMPLE_DAG, "dag_state": dag["state"],
            "seconds": timings}


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python scripts/check_dist.py [--outdir dist] [--deps index|layered]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", type=Path, default=ROOT / "dist", help="where the sdist and wheel go")
    parser.add_argument("--deps", choices=("index", "layered"), default="index",
                        help="dependencies from the package index (default) or layered from this environment")
    args = parser.parse_args(argv)
    try:
        summary = check(args.outdir.resolve(), args.deps)
    except DistCheckError as exc:
        print(f"check_dist: FAILED: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
