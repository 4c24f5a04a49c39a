//! Bad arguments give a usage message and exit 2; every subcommand has --help.
#![cfg(feature = "cli")]

use crate::common::*;

#[test]
fn bad_arguments_exit_2_with_usage() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["dump"],
        &["get", d],
        &["set", d, "k"],
        &["dump", d, "--format", "xml"],
        &["dump", d, "--key", "a", "--prefix", "b"],
        &["dump", d, "--live", "--no-index"],
        &["dump", d, "--max-value-bytes", "lots"],
        &["set", d, "k", "v", "--ttl", "30"],
        &["set", d, "k", "v", "--ttl", "soon"],
        &["set", d, "k", "v", "--max-bytes", "64M"],
        &["set", d, "k", "v", "--durability", "fast"],
        &["stats", d, "--max-bytes", "-1"],
        &["verify", d, "--bogus"],
    ];
    for args in cases {
        let a = keg().args(*args).assert().code(2).stdout("");
        let err = stderr_of(&a);
        assert!(err.contains("Usage:") || err.contains("usage:"), "{args:?}: {err}");
    }
    // None of them created anything.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn unit_errors_say_what_is_accepted() {
    let _serial = serial();
    let a = keg().args(["set", "/nonexistent", "k", "v", "--ttl", "30"]).assert().code(2);
    assert!(stderr_of(&a).contains("missing unit"), "{}", stderr_of(&a));
    let a = keg().args(["set", "/nonexistent", "k", "v", "--max-bytes", "64M"]).assert().code(2);
    assert!(stderr_of(&a).contains("KiB, MiB"), "{}", stderr_of(&a));
}

#[test]
fn every_subcommand_has_help_and_dump_help_documents_the_fields() {
    let _serial = serial();
    for cmd in ["dump", "verify", "stats", "get", "set", "delete", "compact", "clear", "load", "export"] {
        let a = keg().args([cmd, "--help"]).assert().code(0);
        assert!(stdout_of(&a).contains(&format!("Usage: keg {cmd}")), "{cmd}");
    }
    let a = keg().args(["dump", "--help"]).assert().code(0);
    let help = stdout_of(&a);
    for field in [
        "segment",
        "log",
        "offset",
        "len",
        "kind",
        "status",
        "checksum",
        "seq",
        "key_b64",
        "key_len",
        "value_len",
        "expires_ms",
        "value_b64",
        "value_truncated",
        "error",
        "base64",
    ] {
        assert!(help.contains(&format!("\n  {field} ")) || help.contains(field), "{field} undocumented");
    }
    assert!(help.contains("key_b64") && help.contains("standard base64"));
    for cmd in ["set", "delete", "compact", "clear", "load"] {
        let a = keg().args([cmd, "--help"]).assert().code(0);
        let help = stdout_of(&a);
        assert!(help.contains("--max-bytes <SIZE>") && help.contains("--durability <MODE>"), "{cmd}: {help}");
    }
    let a = keg().arg("--help").assert().code(0);
    assert!(stdout_of(&a).contains("EXIT STATUS"));
}

#[test]
fn missing_paths_are_errors_not_panics() {
    let _serial = serial();
    for cmd in ["dump", "stats", "verify"] {
        let a = keg().args([cmd, "/nonexistent/keg-dir"]).assert().code(2);
        assert!(!stderr_of(&a).contains("panicked"));
    }
}
