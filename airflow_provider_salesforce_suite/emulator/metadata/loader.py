"""Builds the org's :class:`~.model.Metadata`: standard objects plus custom schema files."""

from __future__ import annotations

import os
from collections.abc import Sequence

from .model import Metadata
from .schema import load_schema_file
from .standard import load_standard_objects
from .standard_values import apply_standard_values


def load_metadata(schema_files: Sequence[str | os.PathLike] = ()) -> Metadata:
    """The metadata of an org with the standard objects and the given custom schema files.

    :param schema_files: JSON custom schema files, applied in order.
    """
    metadata = Metadata()
    for obj in load_standard_objects():
        metadata.add(obj)
    for path in schema_files:
        load_schema_file(metadata, path)
    apply_standard_values(metadata)
    metadata.link_relationships()
    return metadata
