"""Files written whole: a reader never sees a part-written one (journals that a retry resumes from)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath


def local_dir(store: ObjectStoragePath) -> str | None:
    """``store`` as a local directory path, or None when it is remote (an object store).

    :param store: a directory location.
    """
    return store.path if store.protocol in ("", "file", "local") else None


def write_whole(store: ObjectStoragePath, local: str | None, name: str, text: str) -> None:
    """Write ``text`` to ``store / name`` so that the file is either absent, the old one, or whole.

    A local file is written under a temporary name, synced, then renamed over the target (atomic);
    an object store writes an object whole by itself.

    :param store: the directory.
    :param local: the same directory as a local path (see :func:`local_dir`), or None when remote.
    :param name: the file's name.
    :param text: its content.
    """
    if local is None:
        with (store / name).open("w") as handle:
            handle.write(text)
        return
    target = os.path.join(local, name)
    with open(target + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(target + ".tmp", target)
