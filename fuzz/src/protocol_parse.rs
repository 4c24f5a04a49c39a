//! `protocol_parse`: arbitrary bytes through the memcached text protocol
//! parser of `keg serve` (`keg::server::protocol`), as a connection's input.
//!
//! The first input byte is a mode (see [`SMALL_LIMITS`]); the rest is what a
//! client sent.
//!
//! Invariants checked on every input:
//! - nothing panics;
//! - every answer stays within its input: a request or an error takes 1 to
//!   `len` bytes, a line too long takes what it saw, `needed` asks for more
//!   than there is but never more than one request can take;
//! - a request or error does not depend on what follows it (parsing exactly
//!   its bytes gives the same answer), and every strict prefix of it reads as
//!   incomplete (a request split across packets is never misread);
//! - a storage request's key passes `check_key` and its data fits the item
//!   limit; an oversized one skips more than the limit; retrieval keys are
//!   never empty and hold no space; a meta request's key is a valid key (or
//!   base64 text no longer than one), its return flags come once each, its
//!   opaque token is 1 to 32 bytes, and an oversized `ms` skips more than
//!   the limit;
//! - a storage request written out again as text parses to the same request;
//! - walking the whole input as a connection does (skipping dropped data
//!   blocks and the rest of overlong lines) always moves forward and ends.

use keg::server::protocol::{check_key, parse, Limits, Parsed, Request, StoreKind};

/// Mode bit: tiny limits (64-byte lines, 32-byte items), to reach them often.
pub const SMALL_LIMITS: u8 = 1;

/// Runs every check on one input: a mode byte, then the bytes.
pub fn run(data: &[u8]) {
    let Some((&mode, input)) = data.split_first() else { return };
    let limits = if mode & SMALL_LIMITS != 0 {
        Limits { max_line: 64, max_retrieval_line: 128, max_item_size: 32 }
    } else {
        Limits::default()
    };
    walk(input, &limits);
}

/// Parses `input` request after request, as a connection would.
fn walk(input: &[u8], limits: &Limits) {
    let mut at = 0;
    let mut skip: u64 = 0;
    let mut skip_line = false;
    // Each step moves forward, so there are at most input.len() + 1 of them.
    for _ in 0..=input.len() {
        if skip > 0 {
            let n = skip.min((input.len() - at) as u64) as usize;
            at += n;
            skip -= n as u64;
        }
        if skip_line {
            match input[at..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    at += i + 1;
                    skip_line = false;
                }
                None => return,
            }
        }
        if at >= input.len() {
            return;
        }
        let rest = &input[at..];
        match check_one(rest, limits) {
            Step::Took(n, s) => {
                at += n;
                skip = s;
            }
            Step::LineTooLong(n) => {
                at += n;
                skip_line = true;
            }
            Step::Incomplete => return,
        }
    }
    panic!("the walk did not end");
}

enum Step {
    Took(usize, u64),
    LineTooLong(usize),
    Incomplete,
}

fn check_one(input: &[u8], limits: &Limits) -> Step {
    let parsed = parse(input, limits);
    match parsed {
        Parsed::Incomplete { needed } => {
            if let Some(n) = needed {
                assert!(n > input.len(), "needed {n} but {} bytes are there", input.len());
                assert!(n <= limits.max_request(), "needed {n} is over one request's bound");
            }
            assert!(input.len() < limits.max_request(), "incomplete with a full request's worth of bytes");
            Step::Incomplete
        }
        Parsed::LineTooLong { len } => {
            assert!(len > 0 && len <= input.len());
            assert!(!input[..len].contains(&b'\n'), "a line too long has a line end in it");
            Step::LineTooLong(len)
        }
        Parsed::Invalid { len, skip, .. } => {
            assert!(len > 0 && len <= input.len());
            assert!(skip <= i32::MAX as u64, "skip {skip}");
            same_alone(input, len, limits, &parsed);
            Step::Took(len, skip)
        }
        Parsed::Request { len, request } => {
            assert!(len > 0 && len <= input.len());
            same_alone(input, len, limits, &parsed);
            check_request(&request, limits);
            let skip = match request {
                Request::TooLarge { skip, .. } | Request::MetaTooLarge { skip, .. } => skip,
                _ => 0,
            };
            Step::Took(len, skip)
        }
    }
}

/// The answer for `input[..len]` alone is `parsed`, and each strict prefix is incomplete.
fn same_alone(input: &[u8], len: usize, limits: &Limits, parsed: &Parsed<'_>) {
    assert_eq!(&parse(&input[..len], limits), parsed, "the answer depends on the bytes after it");
    // Every prefix of a short request; the telling ones of a long one.
    let cuts: Vec<usize> = if len <= 300 {
        (0..len).collect()
    } else {
        let nl = input.iter().position(|&b| b == b'\n').unwrap_or(0);
        vec![0, 1, nl, nl + 1, len / 2, len - 2, len - 1]
    };
    for cut in cuts.into_iter().filter(|&c| c < len) {
        let p = parse(&input[..cut], limits);
        assert!(matches!(p, Parsed::Incomplete { .. }), "prefix of {cut} of {len} bytes reads as {p:?}");
    }
}

fn check_request(request: &Request<'_>, limits: &Limits) {
    match *request {
        Request::Store { kind, key, flags, exptime, data, cas, noreply } => {
            assert!(check_key(key));
            assert!(data.len() <= limits.max_item_size);
            // Written out again, it parses to the same request.
            let name = match kind {
                StoreKind::Set => "set",
                StoreKind::Add => "add",
                StoreKind::Replace => "replace",
                StoreKind::Append => "append",
                StoreKind::Prepend => "prepend",
                StoreKind::Cas => "cas",
            };
            let mut text = format!("{name} ").into_bytes();
            text.extend_from_slice(key);
            text.extend_from_slice(format!(" {flags} {exptime} {}", data.len()).as_bytes());
            if kind == StoreKind::Cas {
                text.extend_from_slice(format!(" {cas}").as_bytes());
            }
            if noreply {
                text.extend_from_slice(b" noreply");
            }
            text.extend_from_slice(b"\r\n");
            if text.len() <= limits.max_line {
                text.extend_from_slice(data);
                text.extend_from_slice(b"\r\n");
                match parse(&text, limits) {
                    Parsed::Request { len, request: again } => {
                        assert_eq!(len, text.len());
                        assert_eq!(&again, request);
                    }
                    other => panic!("{request:?} written out parses as {other:?}"),
                }
            }
        }
        Request::TooLarge { key, skip, .. } => {
            assert!(check_key(key));
            assert!(skip > limits.max_item_size as u64 + 2);
        }
        Request::Retrieve { keys, .. } => {
            let mut n = 0;
            for key in keys {
                assert!(!key.is_empty() && !key.contains(&b' '));
                n += 1;
            }
            assert!(n >= 1, "a retrieval without keys");
        }
        Request::Delete { key, .. } | Request::Arith { key, .. } | Request::Touch { key, .. } => {
            assert!(check_key(key));
        }
        Request::Meta { key, flags, data, .. } => {
            assert!(if flags.base64 { !key.is_empty() && key.len() <= 250 } else { check_key(key) });
            assert!(data.len() <= limits.max_item_size);
            let returns = flags.returns();
            assert!(returns.iter().all(|f| b"cfhklstO".contains(f)), "not a return flag: {flags:?}");
            assert!(
                returns.iter().enumerate().all(|(i, f)| !returns[..i].contains(f)),
                "a return flag twice: {flags:?}"
            );
            assert!(flags.opaque.is_none_or(|o| !o.is_empty() && o.len() <= 32));
        }
        Request::MetaTooLarge { key, skip, .. } => {
            assert!(!key.is_empty() && key.len() <= 250);
            assert!(skip > limits.max_item_size as u64 + 2);
        }
        _ => {}
    }
}
