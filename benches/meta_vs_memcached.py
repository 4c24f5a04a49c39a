#!/usr/bin/env python3
"""keg serve's replies against memcached's, on the same request transcripts.

    cargo build --release --bin keg && python3 benches/meta_vs_memcached.py

Starts memcached (Debian's package; installed with apt-get if missing) and
`keg serve` on 127.0.0.1, sends each transcript below to both servers, each
on a fresh connection and in the same order, and compares the replies with
cas numbers blanked out (the two servers number items differently). Prints
every transcript whose replies differ; the differences keg has on purpose
are listed in KNOWN (docs/serve.md says why) and do not fail the run; any
other difference does (exit status 1), as does a known one that is gone.

Stdlib only; no package to install.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEG = os.environ.get("KEG_BIN") or os.path.join(ROOT, "target", "release", "keg")

# Request bytes, one transcript each (a fresh connection), in order: later
# transcripts see what earlier ones stored.
TRANSCRIPTS = [
    # mg
    b"mg foo v\r\n",
    b"mg foo O5 k v c\r\n",
    b"ms foo 2 T90 F1\r\nhi\r\n",
    b"mg foo f v k s O123\r\n",
    b"mg foo q\r\nmn\r\n",
    b"mg nokey q\r\nmn\r\n",
    b"mg foo k q\r\n",
    b"mg foo v q k\r\n",
    b"mg foo P L v\r\n",
    b"mg foo Pxyz Labc v\r\n",
    b"mg foo v1\r\n",
    # ms
    b"ms a 2\r\nhi\r\n",
    b"ms a 2 k O9 q\r\nhi\r\nmn\r\n",
    b"ms a 2 ME\r\nhi\r\n",
    b"ms a 2 MA\r\nyo\r\nmg a v\r\n",
    b"ms a 2 MP\r\nyo\r\nmg a v f\r\n",
    b"ms zz 2 MR\r\nyo\r\n",
    b"ms zz 2 MA\r\nyo\r\n",
    b"ms a 2 C1\r\nyo\r\n",
    b"ms zz 2 C1\r\nyo\r\n",
    b"ms zz9 2 MR C5\r\nhi\r\n",
    b"ms zz9 2 MS C5 q\r\nhi\r\nmn\r\n",
    b"ms nx 2 ME C5\r\nhi\r\n",
    b"ms x 2 T100\r\nhi\r\nms x 2 MA T5\r\nyo\r\nmg x v\r\n",
    b"ms x 2 ME C5\r\nhi\r\n",
    b"ms x 2 MR C5\r\nhi\r\n",
    b"ms x 2 MA C5\r\nhi\r\n",
    b"ms nx2 2 MA C5\r\nhi\r\n",
    b"ms x 2 F5 MA\r\nzz\r\nmg x f v\r\n",
    b"ms x 0\r\n\r\nmg x v s\r\n",
    b"ms a 2 T-1\r\nhi\r\nmg a v\r\n",
    b"ms w 2 Oab\r\nhi\r\nms w 2 Oab q\r\nhi\r\nmn\r\n",
    b"ms Zm9v 2 b\r\nhi\r\nmg foo v\r\n",
    b"ms big 20\r\n18446744073709551615\r\nma big v\r\n",
    # md
    b"ms d 2\r\nhi\r\nmd d\r\n",
    b"md d\r\n",
    b"md d q\r\nmn\r\n",
    b"ms d 2\r\nhi\r\nmd d q k O5\r\nmn\r\n",
    b"md nod q k O5\r\nmn\r\n",
    b"ms d 2\r\nhi\r\nmd d C1\r\n",
    # ma
    b"ma n\r\n",
    b"ma n N0 J10 v\r\n",
    b"ma n v\r\n",
    b"ma n v D5 MD\r\n",
    b"ma n v D50 M-\r\n",
    b"ma n q\r\nmn\r\n",
    b"ma nn q\r\nmn\r\n",
    b"ms s 2\r\nhi\r\nma s v\r\n",
    b"ma n C1 v\r\n",
    # leases, recache, stale copies
    b"mg viv N30 v\r\n",
    b"mg viv N30 v\r\n",
    b"mg viv k O1\r\n",
    b"ms viv 3\r\nnew\r\nmg viv N30 v\r\n",
    b"ms r 2 T100\r\nhi\r\nmg r R200 v\r\n",
    b"mg r R200 v\r\n",
    b"mg r R50 v\r\n",
    b"ms r2 2 T100\r\nhi\r\nmg r2 R50 v\r\n",
    b"ms r3 2\r\nhi\r\nmg r3 R50 v\r\n",
    b"md r I T30\r\nmg r v\r\n",
    b"mg r v\r\n",
    b"ms r 2\r\nyo\r\nmg r v\r\n",
    b"md nope I\r\n",
    b"ms s 2\r\nhi\r\nmd s I q\r\nmn\r\n",
    b"mg s v\r\n",
    b"md s I\r\n",
    b"md s\r\nmg s v\r\n",
    b"ms s2 2\r\nhi\r\nmd s2 I C1\r\n",
    b"ms si2 2\r\nv1\r\nms si2 2 I C99999999999\r\nv2\r\n",
    b"ms nosi 2 I C5\r\nv2\r\n",
    b"ms ls 2 T100\r\nv1\r\nmd ls I\r\nmg ls v\r\n",
    b"ms ls 2 I C1\r\nv9\r\nmg ls v\r\n",
    # errors
    b"mg foo zz\r\n",
    b"mg foo v v\r\n",
    b"mg foo Tabc\r\n",
    b"ms a 2 MX\r\nhi\r\n",
    b"ms a 2 MS ME\r\nhi\r\nmn\r\n",
    b"ma n MZ\r\n",
    b"mg Zm9 b v\r\n",
    b"ms w 2 T\r\nhi\r\nmn\r\n",
    b"ms w 2 O123456789012345678901234567890123\r\nhi\r\nmn\r\n",
    b"mg\r\n",
    b"mn\r\n",
    # classic commands beside them
    b"set c 5 0 2\r\nhi\r\nmg c v f\r\n",
    b"ms c 3 F9\r\nnew\r\nget c\r\n",
    b"ma c v\r\n",
]

# Differences keg has on purpose (docs/serve.md), by transcript; they are
# sent too, and fail the run if they stop differing as described.
KNOWN = {
    b"ms a 3 Fx\r\nabc\r\nmn\r\n": "the same error, named as a bad token",
    b"ms a 2 Mset\r\nhi\r\nmn\r\n": "the same error, named as a bad mode",
    b"ma x D\r\n": "the same error, named as a bad token",
    b"ma nosuch N\r\n": "the same error, named as a bad token",
    b"mg k O\r\n": "keg refuses an empty opaque token",
    b"mg stub N30 v\r\nget stub\r\n": "a lease stub is the server's, not an item: a classic get misses it",
    b"ms gs 2\r\nhi\r\nmd gs I\r\nget gs\r\n": "a stale copy is the server's, not an item: a classic get misses it",
    b"ms tt 1 T0\r\n5\r\nma tt v t T50\r\n": "ma's t reports the expiry after its T (memcached: before)",
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port):
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def talk(port, data):
    """Sends `data` and reads until the server has been quiet for 100 ms."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    s.settimeout(0.1)
    out = b""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def normal(reply):
    # cas numbers differ between servers; so may a TTL by a second (clocks tick apart).
    return re.sub(rb" t\d+", b" tN", re.sub(rb" c\d+", b" cN", reply))


def main():
    memcached = shutil.which("memcached")
    if memcached is None:
        print("installing memcached (Debian package)", file=sys.stderr)
        subprocess.run(["apt-get", "install", "-y", "-qq", "memcached"], check=True, stdout=subprocess.DEVNULL)
        memcached = shutil.which("memcached")
    if not os.path.exists(KEG):
        raise SystemExit(f"no keg binary at {KEG}: cargo build --release --bin keg, or set KEG_BIN")
    mc_port, keg_port = free_port(), free_port()
    procs = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            procs.append(subprocess.Popen([memcached, *user, "-p", str(mc_port), "-U", "0", "-l", "127.0.0.1"]))
            procs.append(subprocess.Popen([KEG, "serve", os.path.join(tmp, "c"), "--max-bytes", "64MiB",
                                           "--listen", f"127.0.0.1:{keg_port}", "-q"]))
            wait_port(mc_port)
            wait_port(keg_port)
            version = talk(mc_port, b"version\r\n").decode().strip()
            same, known, other = 0, 0, 0
            for t in TRANSCRIPTS + list(KNOWN):
                a, b = talk(mc_port, t), talk(keg_port, t)
                why = KNOWN.get(t)
                if (normal(a) == normal(b)) == (why is None):
                    same += why is None
                    known += why is not None
                    if why:
                        print(f"known {t!r}\n      memcached: {a!r}\n      keg:       {b!r}\n      ({why})")
                    continue
                other += 1
                label = "SAME " if why else "DIFF "
                print(f"{label} {t!r}\n      memcached: {a!r}\n      keg:       {b!r}")
            print(f"{len(TRANSCRIPTS) + len(KNOWN)} transcripts against {version}: {same} the same, "
                  f"{known} known differences, {other} unexpected")
            return 1 if other else 0
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    sys.exit(main())
