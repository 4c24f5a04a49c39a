//! `keg serve` as clients meet it: a real server process (the `keg` binary)
//! with a real cache, on 127.0.0.1 with a port the system picks, or on a unix
//! socket in a temporary directory.
//!
//! - `protocol`: every command and every error reply;
//! - `atomic`: the commands that need the library's atomic operations,
//!   flags and versions (cas uniques across a restart);
//! - `abuse`: garbage, half commands, huge lengths, many connections, a
//!   client that never reads: the server survives, stays bounded, and other
//!   clients keep being served;
//! - `lifecycle`: restarts (clean and kill -9), signals, unix sockets.
//!
//! Every wait here is bounded in time, and every loop in count.

#![cfg(feature = "server")]

mod abuse;
mod atomic;
mod connections;
mod lifecycle;
mod meta;
mod protocol;
mod waiting;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any one wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A running `keg serve`.
pub struct Server {
    pub child: Child,
    /// Where it listens, in the order of its --listen options.
    pub addrs: Vec<String>,
    /// Its stderr lines after the start line.
    pub log: mpsc::Receiver<String>,
    pub dir: PathBuf,
}

impl Server {
    /// Starts `keg serve DIR --listen 127.0.0.1:0 --max-bytes 64MiB` plus `extra`
    /// (an `--listen` or `--max-bytes` in `extra` replaces the default one).
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        Self::try_start(dir, extra).unwrap_or_else(|e| panic!("keg serve did not start: {e}"))
    }

    /// As [`Server::start`], or the lines it printed if it did not start.
    pub fn try_start(dir: &Path, extra: &[&str]) -> Result<Server, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keg"));
        cmd.arg("serve").arg(dir);
        if !extra.contains(&"--max-bytes") {
            cmd.args(["--max-bytes", "64MiB"]);
        }
        if !extra.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(extra).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run keg serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut seen = Vec::new();
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("keg serve: listening on ") {
                        let list = rest.split(';').next().unwrap_or("");
                        let addrs = list.split(", ").map(str::to_owned).collect();
                        return Ok(Server { child, addrs, log: rx, dir: dir.to_owned() });
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let code = child.wait().ok().and_then(|s| s.code());
                    return Err(format!("exit code {code:?}, stderr: {seen:?}"));
                }
            }
        }
    }

    /// The first TCP address.
    pub fn tcp(&self) -> SocketAddr {
        self.addrs.iter().find_map(|a| a.parse().ok()).expect("a TCP listen address")
    }

    /// A new client on the first TCP address.
    pub fn client(&self) -> Client {
        Client::tcp(self.tcp())
    }

    /// Sends `signal` (libc number) to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let r = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(r, 0, "kill failed");
    }

    /// Waits for the server to exit; its exit code.
    pub fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status.code();
            }
            assert!(Instant::now() < deadline, "keg serve did not exit within {WAIT:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the server with SIGTERM and checks that it exits 0.
    pub fn stop(mut self) {
        self.signal(libc::SIGTERM);
        assert_eq!(self.wait_exit(), Some(0), "graceful stop; log: {:?}", self.drain_log());
    }

    /// kill -9.
    pub fn kill9(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }

    /// The log lines printed so far.
    pub fn drain_log(&self) -> Vec<String> {
        let mut lines = Vec::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_millis(200)) {
            lines.push(line);
        }
        lines
    }

    /// Resident memory of the server process, in KiB (Linux).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("read /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client with timeouts.
pub struct Client {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
}

pub trait Stream: Read + Write + Send {}
impl Stream for TcpStream {}
impl Stream for UnixStream {}

impl Client {
    pub fn tcp(addr: SocketAddr) -> Client {
        let s = TcpStream::connect_timeout(&addr, WAIT).expect("connect");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client { stream: Box::new(s), buf: Vec::new() }
    }

    pub fn unix(path: &Path) -> Client {
        let s = UnixStream::connect(path).expect("connect to the unix socket");
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        Client { stream: Box::new(s), buf: Vec::new() }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Reads until the bytes read end with `end`; returns them all (as text, lossy).
    pub fn read_until(&mut self, end: &str) -> String {
        let deadline = Instant::now() + WAIT;
        let mut chunk = [0u8; 65536];
        while !self.buf.ends_with(end.as_bytes()) {
            assert!(Instant::now() < deadline, "no {end:?} within {WAIT:?}; got {:?}", self.lossy());
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed before {end:?}; got {:?}", self.lossy()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read failed waiting for {end:?}: {e}; got {:?}", self.lossy()),
            }
        }
        let text = self.lossy();
        self.buf.clear();
        text
    }

    /// Reads one line (without `\r\n`).
    pub fn line(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        let mut chunk = [0u8; 1];
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..i + 2);
                return line;
            }
            assert!(Instant::now() < deadline, "no line within {WAIT:?}");
            match self.stream.read(&mut chunk) {
                Ok(0) => panic!("connection closed; got {:?}", self.lossy()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read failed: {e}"),
            }
        }
    }

    /// Sends `request` and reads a reply ending with `end`.
    pub fn ask(&mut self, request: &str, end: &str) -> String {
        self.send(request.as_bytes());
        self.read_until(end)
    }

    /// Sends `request` and reads one reply line.
    pub fn ask_line(&mut self, request: &str) -> String {
        self.send(request.as_bytes());
        self.line()
    }

    /// Reads until the server closes the connection; what came before.
    pub fn read_to_close(&mut self) -> String {
        let mut rest = Vec::new();
        match self.stream.read_to_end(&mut rest) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("waiting for the server to close: {e}"),
        }
        self.buf.extend_from_slice(&rest);
        let text = self.lossy();
        self.buf.clear();
        text
    }

    /// `set` with flags and exptime; the reply line.
    pub fn set(&mut self, key: &str, flags: u32, exptime: i64, value: &[u8]) -> String {
        self.send(format!("set {key} {flags} {exptime} {}\r\n", value.len()).as_bytes());
        self.send(value);
        self.send(b"\r\n");
        self.line()
    }

    /// `get key`: the value, if any.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n").as_bytes());
        let head = self.line();
        if head == "END" {
            return None;
        }
        let len: usize = head.rsplit(' ').next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{head}"));
        let deadline = Instant::now() + WAIT;
        let mut chunk = [0u8; 65536];
        while self.buf.len() < len + 7 {
            assert!(Instant::now() < deadline, "value not read within {WAIT:?}");
            let n = self.stream.read(&mut chunk).expect("read value");
            assert!(n > 0, "closed while reading a value");
            self.buf.extend_from_slice(&chunk[..n]);
        }
        let value = self.buf[..len].to_vec();
        assert_eq!(&self.buf[len..len + 7], b"\r\nEND\r\n");
        self.buf.drain(..len + 7);
        Some(value)
    }

    fn lossy(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

/// `stats` as name -> value.
pub fn stats(c: &mut Client, group: &str) -> std::collections::HashMap<String, String> {
    let req = if group.is_empty() { "stats\r\n".to_string() } else { format!("stats {group}\r\n") };
    let text = c.ask(&req, "END\r\n");
    text.lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}
