//! A small load generator for memcached-protocol servers (`keg serve`,
//! memcached): N connections, each a thread doing one request at a time,
//! a mix of `get` and `set` on Zipf-distributed keys. Prints one line of
//! results. `benches/serve_vs_memcached.sh` drives it. With `--threads N`
//! the connections are spread over N threads instead, each driving its share
//! with nonblocking sockets and poll(2) (the model of memtier_benchmark and
//! memaslap), so that fewer client threads compete for the CPUs.
//!
//! ```text
//! cargo run --release --example memcache_load -- --addr 127.0.0.1:11211 \
//!     --connections 16 --seconds 10 --keys 100000 --value-size 100 --get-percent 90 --zipf 0.99
//! ```
//!
//! Before measuring it stores every key once (so gets hit); then each
//! thread runs for the duration and records every request's latency in a
//! histogram. Output: `ops_per_sec=… p50_us=… p99_us=… p90_us=… p999_us=… get_p99_us=… set_p50_us=…
//! set_p99_us=… gets=… sets=… misses=… errors=… client_waits_per_op=…
//! client_preempted_per_op=…`: the last two are the load threads' voluntary
//! context switches (a thread slept waiting for a reply) and involuntary ones
//! (the kernel took its CPU) per request, which tell whether the latencies
//! measured are the server's or the load generator's own scheduling.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

struct Opts {
    addr: String,
    connections: usize,
    seconds: f64,
    keys: usize,
    value_size: usize,
    get_percent: u64,
    zipf: f64,
    preload: bool,
    /// 0: one blocking thread per connection; N: N threads, each driving its
    /// share of the connections with nonblocking sockets and poll(2).
    threads: usize,
}

fn parse_args() -> Opts {
    let mut o = Opts {
        addr: "127.0.0.1:11211".into(),
        connections: 16,
        seconds: 10.0,
        keys: 100_000,
        value_size: 100,
        get_percent: 90,
        zipf: 0.99,
        preload: true,
        threads: 0,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--no-preload" {
            o.preload = false;
            i += 1;
            continue;
        }
        let v = args.get(i + 1).unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        let num = |what: &str| -> f64 { v.parse().unwrap_or_else(|_| usage(&format!("{what}: not a number: {v}"))) };
        match flag {
            "--addr" => o.addr = v.clone(),
            "--connections" => o.connections = num(flag) as usize,
            "--seconds" => o.seconds = num(flag),
            "--keys" => o.keys = num(flag) as usize,
            "--value-size" => o.value_size = num(flag) as usize,
            "--get-percent" => o.get_percent = num(flag) as u64,
            "--zipf" => o.zipf = num(flag),
            "--threads" => o.threads = num(flag) as usize,
            _ => usage(&format!("unknown option {flag}")),
        }
        i += 2;
    }
    if o.connections == 0 || o.keys == 0 || o.get_percent > 100 {
        usage("connections and keys must be at least 1, get-percent at most 100");
    }
    o
}

fn usage(msg: &str) -> ! {
    eprintln!("memcache_load: {msg}");
    eprintln!(
        "usage: memcache_load [--addr HOST:PORT] [--connections N] [--seconds S] [--keys N] \
         [--value-size BYTES] [--get-percent P] [--zipf S] [--threads N] [--no-preload]"
    );
    std::process::exit(2);
}

/// splitmix64: a small, fast, deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Cumulative Zipf(s) probabilities of ranks 1..=n.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let mut cdf = Vec::with_capacity(n);
    let mut total = 0.0;
    for rank in 1..=n {
        total += 1.0 / (rank as f64).powf(s);
        cdf.push(total);
    }
    for p in &mut cdf {
        *p /= total;
    }
    cdf
}

/// Latency histogram: 1 µs buckets to 1 ms, then 100 µs buckets to 1 s, then one.
struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram { counts: vec![0; 1000 + 10_000 + 1] }
    }

    fn record(&mut self, d: Duration) {
        let us = d.as_micros() as usize;
        let i = if us < 1000 { us } else { (1000 + (us - 1000) / 100).min(self.counts.len() - 1) };
        self.counts[i] += 1;
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The latency (µs) at quantile `q`.
    fn quantile(&self, q: f64) -> u64 {
        let want = (self.total() as f64 * q).ceil() as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= want.max(1) {
                return if i < 1000 { i as u64 } else { 1000 + (i as u64 - 1000) * 100 };
            }
        }
        0
    }
}

#[derive(Default)]
struct Counts {
    gets: u64,
    sets: u64,
    misses: u64,
    errors: u64,
    /// Context switches of the load threads while they ran: they waited for
    /// a reply (voluntary), or the kernel took the CPU from them (involuntary).
    switches: [u64; 2],
}

/// This thread's (voluntary, involuntary) context switches so far (Linux).
fn switches() -> [u64; 2] {
    let status = std::fs::read_to_string("/proc/thread-self/status").unwrap_or_default();
    let field =
        |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    [field("voluntary_ctxt_switches:"), field("nonvoluntary_ctxt_switches:")]
}

impl Counts {
    /// Counts the switches since `before` (from [`switches`]).
    fn switched_since(&mut self, before: [u64; 2]) {
        let now = switches();
        self.switches = [now[0] - before[0], now[1] - before[1]];
    }
}

struct Conn {
    r: BufReader<TcpStream>,
    w: TcpStream,
    line: String,
    scratch: Vec<u8>,
}

impl Conn {
    fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).unwrap_or_else(|e| usage(&format!("cannot connect to {addr}: {e}")));
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Conn {
            r: BufReader::with_capacity(64 << 10, s.try_clone().unwrap()),
            w: s,
            line: String::new(),
            scratch: Vec::new(),
        }
    }

    fn read_line(&mut self) -> &str {
        self.line.clear();
        self.r.read_line(&mut self.line).expect("read a reply");
        self.line.trim_end()
    }

    /// `set`; whether it was stored.
    fn set(&mut self, key: &str, value: &[u8]) -> bool {
        self.scratch.clear();
        self.scratch.extend_from_slice(format!("set {key} 0 0 {}\r\n", value.len()).as_bytes());
        self.scratch.extend_from_slice(value);
        self.scratch.extend_from_slice(b"\r\n");
        self.w.write_all(&self.scratch).expect("send");
        self.read_line() == "STORED"
    }

    /// `get`; Some(hit) or None on an error reply.
    fn get(&mut self, key: &str) -> Option<bool> {
        self.w.write_all(format!("get {key}\r\n").as_bytes()).expect("send");
        let head = self.read_line().to_owned();
        if head == "END" {
            return Some(false);
        }
        let len: usize = head.strip_prefix("VALUE ")?.split(' ').nth(2)?.parse().ok()?;
        self.scratch.resize(len + 2, 0);
        self.r.read_exact(&mut self.scratch).expect("read a value");
        (self.read_line() == "END").then_some(true)
    }
}

fn main() {
    let o = parse_args();
    let value: Vec<u8> = (0..o.value_size).map(|i| b'a' + (i % 26) as u8).collect();
    let key = |i: usize| format!("key:{i:08}");
    if o.preload {
        // Pipelined sets over a few connections.
        std::thread::scope(|s| {
            for part in 0..4 {
                let (o, value) = (&o, &value);
                s.spawn(move || {
                    let mut c = Conn::open(&o.addr);
                    let mut batch = Vec::new();
                    let ids: Vec<usize> = (part..o.keys).step_by(4).collect();
                    for chunk in ids.chunks(100) {
                        batch.clear();
                        for &i in chunk {
                            batch.extend_from_slice(format!("set {} 0 0 {}\r\n", key(i), value.len()).as_bytes());
                            batch.extend_from_slice(value);
                            batch.extend_from_slice(b"\r\n");
                        }
                        c.w.write_all(&batch).expect("preload");
                        for _ in chunk {
                            assert_eq!(c.read_line(), "STORED", "preload");
                        }
                    }
                });
            }
        });
    }
    let cdf = zipf_cdf(o.keys, o.zipf);
    let run_for = Duration::from_secs_f64(o.seconds);
    let start = Instant::now();
    let results: Vec<(Histogram, [Histogram; 2], Counts)> = if o.threads > 0 {
        multiplexed(&o, &value, &cdf, start, run_for)
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..o.connections)
                .map(|t| {
                    let (o, value, cdf) = (&o, &value, &cdf);
                    s.spawn(move || {
                        let mut rng = Rng(0x5eed ^ (t as u64).wrapping_mul(0x1000_0001));
                        let mut c = Conn::open(&o.addr);
                        let mut h = Histogram::new();
                        let mut hs = [Histogram::new(), Histogram::new()];
                        let mut n = Counts::default();
                        let before = switches();
                        while start.elapsed() < run_for {
                            let u = rng.unit();
                            let rank = cdf.partition_point(|&p| p < u).min(o.keys - 1);
                            let k = key(rank);
                            let t0 = Instant::now();
                            let is_get = rng.next() % 100 < o.get_percent;
                            if is_get {
                                n.gets += 1;
                                match c.get(&k) {
                                    Some(true) => {}
                                    Some(false) => n.misses += 1,
                                    None => n.errors += 1,
                                }
                            } else {
                                n.sets += 1;
                                if !c.set(&k, value) {
                                    n.errors += 1;
                                }
                            }
                            let took = t0.elapsed();
                            h.record(took);
                            hs[usize::from(!is_get)].record(took);
                        }
                        n.switched_since(before);
                        (h, hs, n)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a load thread")).collect()
        })
    };
    let elapsed = start.elapsed().as_secs_f64();
    let mut h = Histogram::new();
    let mut hs = [Histogram::new(), Histogram::new()];
    let mut n = Counts::default();
    for (hist, by_op, c) in &results {
        h.merge(hist);
        hs[0].merge(&by_op[0]);
        hs[1].merge(&by_op[1]);
        n.gets += c.gets;
        n.sets += c.sets;
        n.misses += c.misses;
        n.errors += c.errors;
        n.switches[0] += c.switches[0];
        n.switches[1] += c.switches[1];
    }
    let ops = (n.gets + n.sets).max(1) as f64;
    println!(
        "ops_per_sec={:.0} p50_us={} p99_us={} p90_us={} p999_us={} get_p99_us={} set_p50_us={} set_p99_us={} gets={} sets={} misses={} errors={} \
         client_waits_per_op={:.3} client_preempted_per_op={:.3}",
        h.total() as f64 / elapsed,
        h.quantile(0.50),
        h.quantile(0.99),
        h.quantile(0.90),
        h.quantile(0.999),
        hs[0].quantile(0.99),
        hs[1].quantile(0.50),
        hs[1].quantile(0.99),
        n.gets,
        n.sets,
        n.misses,
        n.errors,
        n.switches[0] as f64 / ops,
        n.switches[1] as f64 / ops,
    );
}

/// One connection of the event-loop mode.
struct Pending {
    stream: TcpStream,
    rng: Rng,
    out: Vec<u8>,
    sent: usize,
    input: Vec<u8>,
    is_get: bool,
    t0: Instant,
}

/// What a reply in `buf` is, once it is whole: (bytes it takes, outcome:
/// Some(true) a hit or STORED, Some(false) a miss, None an error reply).
fn parse_reply(buf: &[u8], is_get: bool) -> Option<(usize, Option<bool>)> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = &buf[..line_end];
    if !is_get {
        return Some((line_end + 2, (line == b"STORED").then_some(true)));
    }
    if line == b"END" {
        return Some((line_end + 2, Some(false)));
    }
    let Some(head) = line.strip_prefix(b"VALUE ") else { return Some((line_end + 2, None)) };
    let len: usize = std::str::from_utf8(head).ok()?.split(' ').nth(2)?.parse().ok()?;
    let whole = line_end + 2 + len + 2 + 5; // data, "\r\n", "END\r\n"
    (buf.len() >= whole).then_some((whole, Some(true)))
}

/// `o.threads` threads, each driving its share of `o.connections` with
/// nonblocking sockets and poll(2), one request in flight per connection; a
/// request's latency runs from the first byte sent to the last byte read.
fn multiplexed(
    o: &Opts,
    value: &[u8],
    cdf: &[f64],
    start: Instant,
    run_for: Duration,
) -> Vec<(Histogram, [Histogram; 2], Counts)> {
    use std::os::fd::AsRawFd;
    let key = |i: usize| format!("key:{i:08}");
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..o.threads)
            .map(|t| {
                s.spawn(move || {
                    let mut conns: Vec<Pending> = (0..o.connections)
                        .filter(|c| c % o.threads == t)
                        .map(|c| {
                            let stream = TcpStream::connect(&o.addr)
                                .unwrap_or_else(|e| usage(&format!("cannot connect to {}: {e}", o.addr)));
                            stream.set_nodelay(true).unwrap();
                            stream.set_nonblocking(true).unwrap();
                            Pending {
                                stream,
                                rng: Rng(0x5eed ^ (c as u64).wrapping_mul(0x1000_0001)),
                                out: Vec::new(),
                                sent: 0,
                                input: Vec::new(),
                                is_get: true,
                                t0: start,
                            }
                        })
                        .collect();
                    let mut h = Histogram::new();
                    let mut hs = [Histogram::new(), Histogram::new()];
                    let mut n = Counts::default();
                    let next = |c: &mut Pending, n: &mut Counts| {
                        let u = c.rng.unit();
                        let rank = cdf.partition_point(|&p| p < u).min(o.keys - 1);
                        let k = key(rank);
                        c.is_get = c.rng.next() % 100 < o.get_percent;
                        c.out.clear();
                        c.sent = 0;
                        if c.is_get {
                            n.gets += 1;
                            c.out.extend_from_slice(format!("get {k}\r\n").as_bytes());
                        } else {
                            n.sets += 1;
                            c.out.extend_from_slice(format!("set {k} 0 0 {}\r\n", value.len()).as_bytes());
                            c.out.extend_from_slice(value);
                            c.out.extend_from_slice(b"\r\n");
                        }
                        c.t0 = Instant::now();
                    };
                    for c in conns.iter_mut() {
                        next(c, &mut n);
                    }
                    let mut fds: Vec<libc::pollfd> = conns
                        .iter()
                        .map(|c| libc::pollfd { fd: c.stream.as_raw_fd(), events: 0, revents: 0 })
                        .collect();
                    let mut buf = vec![0u8; 64 << 10];
                    let mut running = conns.len();
                    let before = switches();
                    while running > 0 {
                        for (i, c) in conns.iter_mut().enumerate() {
                            // Send what can be sent before waiting.
                            while c.sent < c.out.len() {
                                match c.stream.write(&c.out[c.sent..]) {
                                    Ok(k) => c.sent += k,
                                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                                    Err(e) => panic!("send: {e}"),
                                }
                            }
                            fds[i].events = if c.out.is_empty() {
                                0
                            } else if c.sent < c.out.len() {
                                libc::POLLOUT
                            } else {
                                libc::POLLIN
                            };
                        }
                        // SAFETY: `fds` is a valid array of pollfd of the given length.
                        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
                        assert!(ready >= 0, "poll: {}", std::io::Error::last_os_error());
                        for (i, c) in conns.iter_mut().enumerate() {
                            if fds[i].revents & libc::POLLIN == 0 || c.out.is_empty() {
                                continue;
                            }
                            loop {
                                match c.stream.read(&mut buf) {
                                    Ok(0) => panic!("the server closed a connection"),
                                    Ok(k) => c.input.extend_from_slice(&buf[..k]),
                                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                                    Err(e) => panic!("receive: {e}"),
                                }
                            }
                            if let Some((used, outcome)) = parse_reply(&c.input, c.is_get) {
                                let took = c.t0.elapsed();
                                h.record(took);
                                hs[usize::from(!c.is_get)].record(took);
                                match outcome {
                                    Some(true) => {}
                                    Some(false) => n.misses += 1,
                                    None => n.errors += 1,
                                }
                                c.input.drain(..used);
                                if start.elapsed() < run_for {
                                    next(c, &mut n);
                                } else {
                                    c.out.clear();
                                    running -= 1;
                                }
                            }
                        }
                    }
                    n.switched_since(before);
                    (h, hs, n)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a load thread")).collect()
    })
}
