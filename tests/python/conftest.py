"""Fixtures for the Django tests of `keg serve`: real server processes on
127.0.0.1 (or a unix socket), and Django's cache framework pointed at them.

The keg binary is $KEG_BIN, or target/release/keg of this checkout.
"""

import contextlib
import os
import pathlib
import signal
import subprocess
import threading
import time

import django
import pytest
from django.conf import settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
KEG = os.environ.get("KEG_BIN") or str(ROOT / "target" / "release" / "keg")
# Every wait is bounded by this.
WAIT = 20.0
# The servers' --max-item-size, in bytes.
MAX_ITEM = 256 * 1024

settings.configure(
    CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
    USE_TZ=True,
)
django.setup()


class KegServer:
    """One `keg serve` process; restart() starts it again on the same directory and addresses."""

    def __init__(self, directory, listen):
        self.directory = directory
        self.listen = listen
        self.proc = None
        self.addrs = []
        self.log = []
        self.start()

    def start(self):
        assert os.path.exists(KEG), f"no keg binary at {KEG} (build it with cargo build --release, or set KEG_BIN)"
        args = [KEG, "serve", str(self.directory), "--max-bytes", "256MiB", "--max-item-size", str(MAX_ITEM)]
        for addr in self.listen:
            args += ["--listen", addr]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        lines = []
        ready = threading.Event()

        def read():
            for line in self.proc.stderr:
                lines.append(line.rstrip("\n"))
                if line.startswith("keg serve: listening on "):
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(WAIT) or self.proc.poll() is not None:
            self.proc.kill()
            raise AssertionError(f"keg serve did not start: {lines}")
        self.log = lines
        first = next(l for l in lines if l.startswith("keg serve: listening on "))
        self.addrs = first[len("keg serve: listening on "):].split(";")[0].split(", ")
        # Restarts listen where this run did (the port picked for :0).
        self.listen = list(self.addrs)

    def location(self, i=0):
        """The address as Django's LOCATION takes it: HOST:PORT or unix:PATH."""
        return self.addrs[i]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(WAIT)
        assert code == 0, f"keg serve exited {code}; log: {self.log}"

    def kill9(self):
        self.proc.kill()
        self.proc.wait(WAIT)

    def restart(self, how):
        self.stop() if how == "clean" else self.kill9()
        self.start()

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT)


@pytest.fixture
def server(tmp_path):
    s = KegServer(tmp_path / "cache", ["127.0.0.1:0"])
    yield s
    s.close()


@pytest.fixture
def unix_server(tmp_path):
    s = KegServer(tmp_path / "cache", [f"unix:{tmp_path / 'keg.sock'}"])
    yield s
    s.close()


@pytest.fixture
def two_servers(tmp_path):
    a = KegServer(tmp_path / "a", ["127.0.0.1:0"])
    b = KegServer(tmp_path / "b", ["127.0.0.1:0"])
    yield a, b
    a.close()
    b.close()


@contextlib.contextmanager
def django_cache(location, **params):
    """Django's `caches["default"]`, configured as PyMemcacheCache at `location`."""
    from django.core.cache import caches
    from django.test.utils import override_settings

    config = {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": location,
        "TIMEOUT": 300,
        "OPTIONS": {"connect_timeout": 5, "timeout": 10},
    }
    config.update(params)
    with override_settings(CACHES={"default": config}):
        cache = caches["default"]
        try:
            yield cache
        finally:
            cache.close()


def wait_until(check, what):
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT} s"
        time.sleep(0.1)
