"""The Node.js clients the emulator tests run unchanged (tests/emulator/node/).

Their npm packages are pinned in ``node/package.json`` and ``node/package-lock.json`` and installed
once per lockfile with ``npm ci --prefer-offline`` into a cache directory (``SF_SUITE_NPM_CACHE``,
default ``~/.cache/salesforce-suite-tests/npm``), so ``make test`` needs no separate step and a warm
cache costs nothing. Where Node.js or the registry is missing the tests are skipped, except in CI
(``CI`` set), where that is a failure: CI must run them.

A test module takes the ``node_scripts`` fixture with ``from node_clients import node_scripts``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "node"
LOCKFILE = NODE_DIR / "package-lock.json"
STAMP = ".installed"  # written after a complete ``npm ci``: a half-finished install is redone


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the Node.js client tests must run in CI: {reason}")
    pytest.skip(reason)


def install_node_modules() -> Path:
    """The ``node_modules`` directory of the pinned packages, installed on first use.

    Concurrent test workers wait on one lock file, so only one of them installs.
    """
    npm = shutil.which("npm")
    if not shutil.which("node") or not npm:
        _unavailable("needs Node.js and npm")
    digest = hashlib.sha256(LOCKFILE.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("SF_SUITE_NPM_CACHE", Path.home() / ".cache" / "salesforce-suite-tests" / "npm"))
    target = cache / f"node-clients-{digest}"
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / STAMP).exists():
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(NODE_DIR / name, target / name)
            done = subprocess.run([npm, "ci", "--prefer-offline", "--no-audit", "--no-fund", "--ignore-scripts"],
                                  cwd=target, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                _unavailable(f"npm ci failed: {done.stderr[-400:]}")
            (target / STAMP).touch()
    return target / "node_modules"


class NodeScripts:
    """The scripts of tests/emulator/node copied into ``workdir`` beside a link to the installed
    ``node_modules`` (Node resolves a script's imports from the script's real location).

    :param workdir: an empty directory for this test session.
    :param node_modules: the installed packages (:func:`install_node_modules`).
    """

    def __init__(self, workdir: Path, node_modules: Path) -> None:
        shutil.copytree(NODE_DIR, workdir, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("node_modules", "package*.json"))
        (workdir / "node_modules").symlink_to(node_modules, target_is_directory=True)
        self.dir = workdir

    def run(self, script: str, *args: str, ca_bundle: str | None = None, timeout: float = 60) -> dict[str, Any]:
        """Run ``node script args...`` and merge the JSON documents it prints, one per line.

        :param script: path relative to tests/emulator/node, e.g. ``jsforce/rest.mjs``.
        :param ca_bundle: the emulator's CA certificate, given to Node as ``NODE_EXTRA_CA_CERTS``.
        """
        env = dict(os.environ)
        if ca_bundle:
            env["NODE_EXTRA_CA_CERTS"] = ca_bundle
        done = subprocess.run(["node", str(self.dir / script), *args], capture_output=True, text=True,
                              timeout=timeout, env=env)
        output = {key: value for line in done.stdout.splitlines() if line.startswith("{")
                  for key, value in json.loads(line).items()}
        assert done.returncode == 0, f"{script} failed after {sorted(output)}:\n{done.stderr[-3000:]}"
        return output


@pytest.fixture(scope="session")
def node_scripts(tmp_path_factory: pytest.TempPathFactory) -> NodeScripts:
    """The Node.js client scripts with their pinned npm packages (skipped without Node.js, outside CI)."""
    return NodeScripts(tmp_path_factory.mktemp("node-clients"), install_node_modules())
