"""The Bulk ingest floor's file cuts (bench/bench_bulk.py ``cut_points``): pieces of exactly the
asked number of lines, together the whole file, found without a Python step per row."""

from __future__ import annotations

import random

import pytest

from bench.bench_bulk import cut_points


@pytest.mark.parametrize("seed", range(20))
def test_cuts_give_pieces_of_n_lines_that_make_up_the_file(seed: int) -> None:
    rng = random.Random(seed)
    lines = [b"x" * rng.randint(0, 40) for _ in range(rng.randint(1, 400))]
    data = b"Name\n" + b"\n".join(lines) + (b"\n" if seed % 3 else b"")  # some end without a newline
    rows = rng.randint(1, 50)

    cuts = cut_points(data, 5, rows)

    pieces = [data[a:b] for a, b in zip([5, *cuts], cuts)]
    assert b"".join(pieces) == data[5:]
    assert all(piece.count(b"\n") == rows and piece.endswith(b"\n") for piece in pieces[:-1])
    assert 0 < len(pieces[-1].splitlines()) <= rows
