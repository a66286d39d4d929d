"""Rendered answers of the read path (tracking pages, the API's orders), kept per server process.

An order is read far more often than it changes (a customer opens its page about 60 times, the
order changes about a dozen times), so an answer is rendered once per change and kept, with its
headers, under a slot (the page of one token, the API answer for one order id) together with the
stamp it was rendered for (`ordertrack.store.stamps.Stamp`: the order's versions, its number of
timeline entries, its locale and time zone). A request reads the stamp, one indexed lookup, and
is served the kept answer only if the stamps are equal; otherwise it renders and replaces it.
Everything else a rendered answer depends on (templates, catalogs, settings) is fixed for the
life of the process.

Bounded in bytes, least recently used out first; one slot per token or order, so an order's old
versions are not kept. Used from the event loop's thread only.
"""

import hashlib
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from ordertrack.store.stamps import Stamp

# Bytes counted for an entry besides its body: keys, stamp, headers, the dictionary's slot.
ENTRY_OVERHEAD = 600

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True)
class Rendered:
    """An answer ready to send: its body, and its raw headers with `Content-Length` (and `ETag`)."""

    body: bytes
    headers: Headers
    etag: bytes | None = None

    @classmethod
    def of(cls, body: bytes, headers: Headers, *, etag: bool = False) -> "Rendered":
        """`etag`: send a strong ETag, a digest of the body (equal bodies get equal tags, in every
        server process, and any change to what the body shows changes it)."""
        length = (b"content-length", b"%d" % len(body))
        if not etag:
            return cls(body, [*headers, length])
        tag = b'"' + hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b'"'
        return cls(body, [*headers, length, (b"etag", tag)], tag)

    def matches(self, if_none_match: bytes | None) -> bool:
        """Whether an `If-None-Match` header names this answer (weak comparison, as RFC 9110 asks)."""
        if not if_none_match or self.etag is None:
            return False
        if if_none_match.strip() == b"*":
            return True
        return any(tag.strip().removeprefix(b"W/") == self.etag for tag in if_none_match.split(b","))


@dataclass
class ReadCache:
    max_bytes: int
    _entries: OrderedDict[Hashable, tuple[Stamp, Rendered]] = field(default_factory=OrderedDict)
    _bytes: int = 0

    def get(self, slot: Hashable, stamp: Stamp) -> Rendered | None:
        """The answer kept in `slot` if it was rendered for `stamp`."""
        found = self._entries.get(slot)
        if found is None or found[0] != stamp:
            return None
        self._entries.move_to_end(slot)
        return found[1]

    def put(self, slot: Hashable, stamp: Stamp, rendered: Rendered) -> None:
        """Keep `rendered` in `slot` for `stamp`, in place of what was there."""
        self.discard(slot)
        size = len(rendered.body) + ENTRY_OVERHEAD
        if size > self.max_bytes:
            return
        self._entries[slot] = (stamp, rendered)
        self._bytes += size
        while self._bytes > self.max_bytes:
            _, (_, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body) + ENTRY_OVERHEAD

    def discard(self, slot: Hashable) -> None:
        found = self._entries.pop(slot, None)
        if found is not None:
            self._bytes -= len(found[1].body) + ENTRY_OVERHEAD

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes
