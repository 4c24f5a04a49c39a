"""Django's cache framework, with its stock PyMemcacheCache backend, against
real `keg serve` processes: one server over TCP and over a unix socket, two
servers behind one LOCATION list, and restarts (clean and kill -9)."""

import datetime
import decimal
import time

import pymemcache
import pytest
from django.core.cache.backends.base import InvalidCacheKey

from conftest import MAX_ITEM, django_cache, wait_until


class Payload:
    """A user class, stored pickled."""

    def __init__(self, name, items):
        self.name = name
        self.items = items

    def __eq__(self, other):
        return isinstance(other, Payload) and (self.name, self.items) == (other.name, other.items)


OBJECTS = {
    "text": "héllo wörld",
    "bytes": b"\x00\x01binary\r\n\xff",
    "int": 42,
    "big_int": 2**70,
    "float": 3.25,
    "none_in_list": [None, 1, "two"],
    "dict": {"a": 1, "nested": {"b": [1, 2, 3]}},
    "tuple": (1, "x"),
    "set": {1, 2, 3},
    "datetime": datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.timezone.utc),
    "decimal": decimal.Decimal("10.01"),
    "object": Payload("p", [1, 2]),
    "empty_str": "",
    "empty_bytes": b"",
    "false": False,
}


def exercise(cache):
    """Every operation Django's cache API offers, with its expected result."""
    # set / get / default
    cache.set("k", "v")
    assert cache.get("k") == "v"
    assert cache.get("missing") is None
    assert cache.get("missing", "dflt") == "dflt"
    assert cache.has_key("k") and not cache.has_key("missing")
    # add only stores when absent
    assert cache.add("k", "other") is False
    assert cache.get("k") == "v"
    assert cache.add("new", "n") is True
    assert cache.get("new") == "n"
    # delete
    assert cache.delete("new") is True
    assert cache.delete("new") is False
    assert cache.get("new") is None
    # many
    assert cache.set_many({"m1": 1, "m2": "two", "m3": [3]}) == []
    assert cache.get_many(["m1", "m2", "m3", "nope"]) == {"m1": 1, "m2": "two", "m3": [3]}
    cache.delete_many(["m1", "m3"])
    assert cache.get_many(["m1", "m2", "m3"]) == {"m2": "two"}
    # incr / decr
    cache.set("n", 10)
    assert cache.incr("n") == 11
    assert cache.incr("n", 5) == 16
    assert cache.decr("n", 6) == 10
    assert cache.incr("n", -3) == 7
    assert cache.decr("n", 100) == 0
    assert cache.get("n") == 0
    with pytest.raises(ValueError):
        cache.incr("no-such-counter")
    with pytest.raises(ValueError):
        cache.decr("no-such-counter")
    # get_or_set
    assert cache.get_or_set("gos", "first") == "first"
    assert cache.get_or_set("gos", "second") == "first"
    assert cache.get_or_set("gos-callable", lambda: "computed") == "computed"
    # touch
    assert cache.touch("k", 100) is True
    assert cache.touch("missing", 100) is False
    # objects of every kind round-trip (pickled where they are not text or numbers)
    for name, value in OBJECTS.items():
        cache.set(f"obj:{name}", value)
    for name, value in OBJECTS.items():
        assert cache.get(f"obj:{name}") == value, name
    # Django refuses keys memcached cannot take
    with pytest.raises(InvalidCacheKey):
        cache.set("has space", 1)
    with pytest.raises(InvalidCacheKey):
        cache.set("k" * 300, 1)
    # clear
    cache.clear()
    assert cache.get("k") is None
    assert cache.get_many(["m2", "gos"]) == {}


def test_every_operation_over_tcp(server):
    with django_cache(server.location()) as cache:
        exercise(cache)


def test_every_operation_over_a_unix_socket(unix_server):
    location = unix_server.location()
    assert location.startswith("unix:")
    with django_cache(location) as cache:
        exercise(cache)


def test_timeouts(server):
    with django_cache(server.location(), TIMEOUT=300) as cache:
        # keg expires to the millisecond: 2 s leaves time for the checks below.
        cache.set("short", "v", timeout=2)
        cache.set("default", "v")  # TIMEOUT 300
        cache.set("forever", "v", timeout=None)
        cache.set("never_stored", "v", timeout=0)  # Django: expire at once
        cache.set("beyond_30_days", "v", timeout=60 * 60 * 24 * 40)  # sent as a Unix time
        assert cache.get("short") == "v"
        assert cache.get("never_stored") is None
        assert cache.get("beyond_30_days") == "v"
        assert cache.add("short_add", "v", timeout=2) is True
        cache.set("touched_longer", "v", timeout=2)
        assert cache.touch("touched_longer", 300) is True
        cache.set("touched_forever", "v", timeout=2)
        assert cache.touch("touched_forever", None) is True
        cache.set("touched_away", "v", timeout=300)
        assert cache.touch("touched_away", 0) is True  # Django deletes on touch 0
        assert cache.get("touched_away") is None
        wait_until(lambda: cache.get("short") is None, "a 2 s value expiring")
        time.sleep(0.2)
        assert cache.get("short_add") is None
        assert cache.get("default") == "v"
        assert cache.get("forever") == "v"
        assert cache.get("touched_longer") == "v"
        assert cache.get("touched_forever") == "v"
        # An expired key can be added again.
        assert cache.add("short", "again") is True
        assert cache.get("short") == "again"


def test_versions_and_key_prefixes(server):
    loc = server.location()
    with django_cache(loc, KEY_PREFIX="site1") as one, django_cache(loc, KEY_PREFIX="site2", VERSION=3) as two:
        one.set("shared-name", "from site1")
        two.set("shared-name", "from site2")
        assert one.get("shared-name") == "from site1"
        assert two.get("shared-name") == "from site2"
        assert two.get("shared-name", version=1) is None
        # Versions of one key are separate entries.
        one.set("v", "version 1")
        one.set("v", "version 2", version=2)
        assert one.get("v") == "version 1"
        assert one.get("v", version=2) == "version 2"
        assert one.incr_version("v") == 2
        assert one.get("v", version=2) == "version 1"
        assert one.get("v") is None
        assert one.decr_version("v", version=2) == 1
        assert one.get("v") == "version 1"
        one.delete("shared-name")
        assert two.get("shared-name") == "from site2"


def test_values_from_zero_bytes_to_the_size_limit(server):
    with django_cache(server.location()) as cache:
        for size in [0, 1, 100, 4096, 65536, MAX_ITEM - 1, MAX_ITEM]:
            value = bytes(i % 251 for i in range(size))
            cache.set(f"size:{size}", value)
            assert cache.get(f"size:{size}") == value, size
        # One byte over: the server refuses it, and the key's old value is gone
        # (no client may read a stale value after a failed set).
        cache.set("over", b"old")
        with pytest.raises(pymemcache.exceptions.MemcacheServerError):
            cache.set("over", b"x" * (MAX_ITEM + 1))
        assert cache.get("over") is None
        # The connection still works.
        cache.set("after", b"fine")
        assert cache.get("after") == b"fine"


@pytest.mark.parametrize("how", ["clean", "kill9"])
def test_data_survives_a_restart(server, how):
    with django_cache(server.location(), KEY_PREFIX="p") as cache:
        for name, value in OBJECTS.items():
            cache.set(f"obj:{name}", value, timeout=None)
        cache.set("big", b"b" * MAX_ITEM)
        cache.set("counter", 5)
        cache.incr("counter", 2)
        cache.set("deleted", "x")
        cache.delete("deleted")
        cache.set("expires", "x", timeout=1)
    server.restart(how)
    with django_cache(server.location(), KEY_PREFIX="p") as cache:
        for name, value in OBJECTS.items():
            assert cache.get(f"obj:{name}") == value, name
        assert cache.get("big") == b"b" * MAX_ITEM
        assert cache.get("counter") == 7
        assert cache.incr("counter") == 8
        assert cache.get("deleted") is None
        wait_until(lambda: cache.get("expires") is None, "expiry after a restart")


def test_two_servers_behind_one_location_list(two_servers):
    a, b = two_servers
    keys = {f"user:{i}": {"id": i, "name": f"user {i}"} for i in range(300)}
    with django_cache([a.location(), b.location()]) as cache:
        cache.set_many(keys)
        assert cache.get_many(list(keys)) == keys
        cache.set("hits", 0)
        for _ in range(10):
            cache.incr("hits")
        assert cache.get("hits") == 10
    # Client-side hashing spread the keys over both servers, each key on one.
    counts = []
    for s in (a, b):
        host, port = s.location().rsplit(":", 1)
        client = pymemcache.Client((host, int(port)), connect_timeout=5, timeout=10)
        counts.append(int(client.stats()[b"curr_items"]))
        client.close()
    assert min(counts) > 50, counts
    assert sum(counts) == len(keys) + 1, counts
    # One server restarts (kill -9): with the same list, every key is found again.
    b.restart("kill9")
    a.restart("clean")
    with django_cache([a.location(), b.location()]) as cache:
        assert cache.get_many(list(keys)) == keys
        assert cache.get("hits") == 10
        cache.clear()  # flush_all on both
        assert cache.get_many(list(keys)) == {}
