"""The read path's cache of rendered answers: kept per slot for one stamp, bounded in bytes."""

from ordertrack.store.stamps import Stamp
from ordertrack.web.readcache import ENTRY_OVERHEAD, ReadCache, Rendered

HTML = [(b"content-type", b"text/html; charset=utf-8")]


def stamp(version: int = 1, entries: int = 1, order_id: str = "1001", **changes: object) -> Stamp:
    return Stamp(order_id, version, 1, entries, "pt-BR", "America/Sao_Paulo")._replace(**changes)


def page(text: str, size: int = 100) -> Rendered:
    return Rendered.of(text.encode().ljust(size, b"."), HTML, etag=True)


def test_an_answer_is_served_only_for_the_stamp_it_was_rendered_for() -> None:
    cache = ReadCache(max_bytes=10_000)
    cache.put("token-a", stamp(), page("v1"))

    assert cache.get("token-a", stamp()) == page("v1")
    for other in (
        stamp(version=2),
        stamp(entries=2),
        stamp(address_version=2),
        stamp(locale="ko"),
        stamp(time_zone="Asia/Seoul"),
        stamp(order_id="1002"),
    ):
        assert cache.get("token-a", other) is None, other
    assert cache.get("token-b", stamp()) is None


def test_a_slot_keeps_one_version_and_a_discard_frees_it() -> None:
    cache = ReadCache(max_bytes=10_000)
    cache.put("token-a", stamp(), page("v1"))
    cache.put("token-a", stamp(version=2), page("v2"))

    assert (len(cache), cache.size_bytes) == (1, 100 + ENTRY_OVERHEAD)
    assert cache.get("token-a", stamp()) is None
    assert cache.get("token-a", stamp(version=2)) == page("v2")
    cache.discard("token-a")
    cache.discard("token-a")
    assert (len(cache), cache.size_bytes) == (0, 0)


def test_the_least_recently_used_go_first_when_the_bytes_run_out() -> None:
    cache = ReadCache(max_bytes=3 * (100 + ENTRY_OVERHEAD))
    for name in ("a", "b", "c"):
        cache.put(name, stamp(), page(name))
    assert cache.get("a", stamp()) is not None  # a is now the most recently used

    cache.put("d", stamp(), page("d"))

    assert [name for name in "abcd" if cache.get(name, stamp())] == ["a", "c", "d"]
    assert cache.size_bytes <= cache.max_bytes


def test_nothing_is_kept_without_room() -> None:
    cache = ReadCache(max_bytes=0)
    cache.put("a", stamp(), page("a"))
    assert (len(cache), cache.get("a", stamp())) == (0, None)


def test_headers_carry_the_length_and_a_strong_etag_of_the_body() -> None:
    first, same, other = page("v1"), page("v1"), page("v2")
    headers = dict(first.headers)

    assert headers[b"content-length"] == b"100"
    assert headers[b"etag"] == first.etag and first.etag == same.etag != other.etag
    assert first.etag is not None and first.etag.startswith(b'"') and first.etag.endswith(b'"')
    assert Rendered.of(b"{}", []).etag is None
    assert dict(Rendered.of(b"{}", []).headers) == {b"content-length": b"2"}


def test_if_none_match_as_browsers_and_proxies_send_it() -> None:
    rendered = page("v1")
    tag = rendered.etag
    assert tag is not None

    assert rendered.matches(tag)
    assert rendered.matches(b"W/" + tag)
    assert rendered.matches(b'"other", ' + tag)
    assert rendered.matches(b"*")
    assert not rendered.matches(None)
    assert not rendered.matches(b"")
    assert not rendered.matches(page("v2").etag)
    assert not rendered.matches(tag.strip(b'"'))  # an ETag is compared with its quotes
    assert not Rendered.of(b"{}", []).matches(b"*")  # no ETag, nothing to match
