"""Salesforce record ids: 15-char case-sensitive ids and their 18-char case-safe form.

An id is ``<3-char key prefix><12 base-62 chars>``; the 18-char form appends a 3-char suffix in
which each char encodes, for one 5-char chunk of the 15-char id, which chars are upper-case.
"""

from __future__ import annotations

import itertools
import threading

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_CHARS = frozenset(_BASE62)


def checksum(id15: str) -> str:
    """The 3-char case-safe suffix of a 15-char id.

    :param id15: a 15-char id.
    """
    suffix = []
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = 0
        for i, char in enumerate(chunk):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix.append(_SUFFIX_ALPHABET[bits])
    return "".join(suffix)


def to_18(id15: str) -> str:
    """The 18-char form of a 15-char id (an 18-char id is returned unchanged).

    :param id15: a 15- or 18-char id.
    """
    if len(id15) == 18:
        return id15
    return id15 + checksum(id15)


def normalize(value: object) -> str | None:
    """The 18-char form of ``value`` if it is a well-formed 15- or 18-char id, else ``None``.

    An 18-char id whose suffix does not match its first 15 chars is malformed, as in Salesforce.

    :param value: anything a client sent where an id is expected.
    """
    if not isinstance(value, str) or len(value) not in (15, 18):
        return None
    if not _ID_CHARS.issuperset(value):
        return None
    base = value[:15]
    expected = checksum(base)
    if len(value) == 18 and value[15:].upper() != expected:
        return None
    return base + expected


def key_prefix(record_id: str) -> str:
    """The 3-char key prefix that names the sObject type of an id.

    :param record_id: a 15- or 18-char id.
    """
    return record_id[:3]


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_BASE62[rem])
    return "".join(reversed(chars))


class IdGenerator:
    """Thread-safe generator of new 18-char ids, unique within one store.

    The 12 chars after the key prefix are a 2-char "instance" marker followed by a base-62
    counter, so ids sort by creation order within a prefix, as real ids roughly do.

    :param start: first counter value (a store resumes after its highest id).
    """

    _INSTANCE = "5E"

    def __init__(self, start: int = 1) -> None:
        self._counter = itertools.count(start)
        self._lock = threading.Lock()
        self.last = start - 1

    def new_id(self, prefix: str) -> str:
        """A new 18-char id with the key prefix ``prefix``.

        :param prefix: the sObject's 3-char key prefix.
        """
        with self._lock:
            number = next(self._counter)
            self.last = number
        return to_18(prefix + self._INSTANCE + _base62(number, 10))

    def new_ids(self, prefix: str, count: int) -> list[str]:
        """``count`` new ids in one lock acquisition (bulk inserts).

        :param prefix: the sObject's 3-char key prefix.
        :param count: how many ids.
        """
        with self._lock:
            numbers = [next(self._counter) for _ in range(count)]
            if numbers:
                self.last = numbers[-1]
        head = prefix + self._INSTANCE
        return [to_18(head + _base62(n, 10)) for n in numbers]

    def skip_past(self, number: int) -> None:
        """Never hand out ``number`` or a lower counter (ids loaded from elsewhere, such as another
        emulator's seed records, use them).

        :param number: a counter in use.
        """
        with self._lock:
            if number > self.last:
                self._counter = itertools.count(number + 1)
                self.last = number

    @staticmethod
    def counter_of(record_id: str) -> int | None:
        """The counter a generated id was made from (``None`` for foreign ids).

        :param record_id: an id.
        """
        if record_id[3:5] != IdGenerator._INSTANCE:
            return None
        number = 0
        for char in record_id[5:15]:
            number = number * 62 + _BASE62.index(char)
        return number
