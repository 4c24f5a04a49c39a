"""`keg serve` behind a client that speaks only memcached's meta protocol:
RevenueCat's meta-memcache (pinned in requirements.txt), with its herd
controls: leases (mg N), early recache (mg R) and stale-on-delete (md I).
The same script gives the same answers against memcached 1.6.18."""

import threading

import pytest
from meta_memcache import (
    CacheClient,
    LeasePolicy,
    RecachePolicy,
    ServerAddress,
    SetMode,
    StalePolicy,
    connection_pool_factory_builder,
)


def client(server):
    host, port = server.location().rsplit(":", 1)
    return CacheClient.cache_client_from_servers(
        servers=[ServerAddress(host=host, port=int(port))],
        connection_pool_factory_fn=connection_pool_factory_builder(recv_timeout=10, connection_timeout=5),
    )


def test_reads_writes_and_counters(server):
    c = client(server)
    assert c.set("k", {"a": [1, 2]}, ttl=60)
    assert c.get("k") == {"a": [1, 2]}
    assert c.get("missing") is None
    value, cas = c.get_cas("k")
    assert value == {"a": [1, 2]} and cas is not None
    assert not c.set("k", "lost", ttl=60, cas_token=cas + 12345)
    assert c.set("k", "won", ttl=60, cas_token=cas)
    assert c.get("k") == "won"
    got = c.multi_get(["k", "missing"])
    assert sorted((key.key, v) for key, v in got.items()) == [("k", "won"), ("missing", None)]
    assert c.delete("k") and c.get("k") is None
    assert c.delta_initialize("hits", 5, initial_value=10, initial_ttl=60)
    assert c.delta_and_get("hits", 2) == 12
    assert c.delta_initialize_and_get("other", 3, initial_value=7, initial_ttl=60) == 7
    assert c.touch("hits", 100) and not c.touch("missing", 100)
    assert c.set("once", "a", ttl=60, set_mode=SetMode.ADD)
    assert not c.set("once", "b", ttl=60, set_mode=SetMode.ADD)
    assert c.refill("fill", "r", ttl=60) and c.get("fill") == "r"


def test_a_lease_lets_one_client_refill_a_miss(server):
    c = client(server)
    policy = LeasePolicy(ttl=30, miss_retries=1, miss_retry_wait=0.01, miss_max_retry_wait=0.02)
    # The first caller wins the lease (a miss to fill); the next one waits, then misses.
    assert c.get_or_lease("page", lease_policy=policy) is None
    assert c.get_or_lease("page", lease_policy=policy) is None
    assert c.set("page", "rendered", ttl=60)
    assert c.get_or_lease("page", lease_policy=policy) == "rendered"
    # The winner may write back with the lease's cas token.
    value, cas = c.get_or_lease_cas("post", lease_policy=policy)
    assert value is None and cas is not None
    assert c.set("post", "body", ttl=60, cas_token=cas)
    assert c.get("post") == "body"


def test_racing_clients_get_one_lease(server):
    wins = []

    def race(i):
        c = client(server)
        policy = LeasePolicy(ttl=30, miss_retries=1, miss_retry_wait=0.01, miss_max_retry_wait=0.02)
        # (The client's raw answer, whose flags say who won the lease.)
        result = c._get_or_lease("hot", lease_policy=policy)
        if result.flags.win:
            wins.append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(wins) == 1, wins


def test_early_recache_and_stale_on_delete(server):
    c = client(server)
    # 10 s left, recache below 30 s: one caller refreshes (a miss), the others keep the value.
    assert c.set("item", "old", ttl=10)
    assert c.get("item", recache_policy=RecachePolicy(ttl=30)) is None
    assert c.get("item", recache_policy=RecachePolicy(ttl=30)) == "old"
    # An invalidation keeps a stale copy: the first reader refreshes, the others read it.
    assert c.set("doc", "v1", ttl=60)
    assert c.invalidate("doc", stale_policy=StalePolicy(mark_stale_on_deletion_ttl=30))
    assert c.get("doc") is None
    assert c.get("doc") == "v1"
    assert c.set("doc", "v2", ttl=60)
    assert c.get("doc") == "v2"
    # A write with an outdated cas can be kept as stale instead of failing.
    mismatch = StalePolicy(mark_stale_on_cas_mismatch=True)
    assert c.set("doc", "v0", ttl=60, cas_token=1, stale_policy=mismatch)
    assert c.get("doc") is None
    assert c.get("doc") == "v0"


@pytest.mark.parametrize("how", ["clean", "kill9"])
def test_values_survive_a_restart_and_held_copies_do_not(server, how):
    c = client(server)
    assert c.set("kept", "value", ttl=600)
    assert c.set("doc", "v1", ttl=60)
    assert c.invalidate("doc", stale_policy=StalePolicy(mark_stale_on_deletion_ttl=30))
    server.restart(how)
    c = client(server)
    assert c.get("kept") == "value"
    # The stale copy was the server's: gone, a miss, never read back as a live value.
    assert c.get("doc") is None
    assert c.get("doc") is None
