// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every operator tool (the exporter has its own branch) against non-UTF-8,
//! empty, huge and malformed arguments: no panic (exit 101 or "panicked"),
//! exit status 2, a message naming the option. Also `--version`,
//! `--opt=value`, generated completions and man pages, and a closed pipe.
//! No kernel needed: every case is refused before a socket is opened.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Stdio};

use common::example_binary;

const TOOLS: [&str; 11] = [
    "gc", "dump", "doctor", "top", "fill", "drain", "capture", "events", "update", "restore",
    "expect",
];

/// Runs `tool args`; asserts a usage error that names `option`.
fn refused(tool: &str, args: &[OsString], option: &str) {
    let output = Command::new(example_binary(tool))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("{tool} {args:?}: {:?} {stderr}", output.status);
    assert_ne!(output.status.code(), Some(101), "{context}");
    assert!(!stderr.contains("panicked"), "{context}");
    assert_eq!(output.status.code(), Some(2), "{context}");
    assert!(
        stderr.contains(option),
        "the message names {option}: {context}"
    );
}

fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

#[test]
fn hostile_arguments_are_usage_errors_naming_the_option() {
    let huge = "18446744073709551615";
    let bigger = "99999999999999999999999999";
    for tool in TOOLS {
        // Non-UTF-8, as an option value and as an argument of its own.
        let mut bad = os(&["--netns"]);
        bad.push(OsString::from_vec(vec![b'n', 0xff, 0xfe]));
        refused(tool, &bad, "UTF-8");
        refused(tool, &[OsString::from_vec(vec![0xff])], "");
        // Empty, malformed and unknown.
        refused(tool, &os(&["--netns", ""]), "--netns");
        refused(tool, &os(&["--netns="]), "--netns");
        refused(tool, &os(&["--no-such-option"]), "--no-such-option");
        refused(tool, &os(&["--netns"]), "--netns");
    }
    let cases: &[(&str, &[&str], &str)] = &[
        ("drain", &["--buffer", huge], "--buffer"),
        ("drain", &["--buffer", "100"], "--buffer"),
        ("drain", &["--repeat", bigger], "--repeat"),
        ("drain", &["--repeat=0"], "--repeat"),
        ("fill", &["--netns", "x", "--flows", huge], "--flows"),
        ("fill", &["--netns", "x", "--flows", "-1"], "--flows"),
        (
            "fill",
            &["--netns", "x", "--flows", "10", "--timeout", ""],
            "--timeout",
        ),
        ("fill", &["--flows", "10"], "--netns"),
        ("gc", &["--limit", bigger, "-p", "tcp"], "--limit"),
        ("gc", &["--rate", "0", "-p", "tcp"], "--rate"),
        ("gc", &["--rate", huge, "-p", "tcp"], "--rate"),
        ("gc", &["--dport=70000"], "--dport"),
        ("gc", &["--dport", "443-80"], "--dport"),
        ("gc", &["--sport", ""], "--sport"),
        ("gc", &["-p", "nosuchproto"], "--proto"),
        ("gc", &["--state", "BOGUS"], "--state"),
        ("gc", &["--status", "BOGUS"], "--status"),
        ("gc", &["--mark", "0x1/0x0"], "mark"),
        ("gc", &["--mark", "x"], "--mark"),
        ("gc", &["--zone", "65536"], "--zone"),
        ("gc", &["-s", "10.0.0.1", "-d", "2001:db8::1"], "dst"),
        ("gc", &["--idle", "5"], "--orphans"),
        ("gc", &["--orphans", "--idle", huge], "--idle"),
        ("gc", &[], "filter"),
        ("dump", &["--json", "--stats-only"], "--stats-only"),
        ("dump", &["--prefetch", "sometimes"], "--prefetch"),
        ("dump", &["-f", "ipx"], "--family"),
        ("dump", &["--sport", huge], "--sport"),
        ("doctor", &["--interval", "NaN"], "--interval"),
        ("doctor", &["--top", huge], "--top"),
        ("doctor", &["--memory-budget", "lots"], "--memory-budget"),
        (
            "doctor",
            &["--memory-budget", "99999999999T"],
            "--memory-budget",
        ),
        ("doctor", &["--warn", "90", "--crit", "80"], "--warn"),
        ("top", &["--interval", "0"], "--interval"),
        ("top", &["--rows", huge], "--rows"),
        ("top", &["--group", "nope"], "--group"),
        ("top", &["--json"], "--once"),
        ("capture", &["--netns", "x"], "COMMAND"),
        ("capture", &["--netns", "x", "frobnicate"], "COMMAND"),
        (
            "capture",
            &["--netns", "x", "dump", "--proto", "300"],
            "--proto",
        ),
        ("events", &["-e", "NEW,BOGUS"], "--event-mask"),
        ("events", &["--buffer", huge], "--buffer"),
        ("events", &["--json", "--id"], "--id"),
        ("restore", &[], "FILE"),
        ("restore", &["--zone", "65536", "t"], "--zone"),
        ("restore", &["--timeout=-1", "t"], "--timeout"),
        ("restore", &["--timeout", huge, "t"], "--timeout"),
        (
            "restore",
            &["--labels-file", "/nonexistent/labels", "t"],
            "--labels-file",
        ),
        ("restore", &["/nonexistent/table"], "/nonexistent/table"),
        ("restore", &["/"], "is a directory"),
        ("restore", &["a", "b"], "unexpected argument"),
        ("expect", &[], "COMMAND"),
        (
            "expect",
            &["get", "-p", "tcp", "--src", "10.0.0.1"],
            "--dst",
        ),
        (
            "expect",
            &[
                "get", "-p", "tcp", "--src", "10.0.0.1", "--dst", "::1", "--sport", "1", "--dport",
                "2",
            ],
            "address families",
        ),
        (
            "expect",
            &[
                "get", "-p", "tcp", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--dport", "2",
            ],
            "source port",
        ),
        (
            "expect",
            &[
                "get", "-p", "gre", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--sport", "1",
            ],
            "no ports",
        ),
        (
            "expect",
            &["get", "-p", "tcp", "--src", "x", "--dst", "10.0.0.2"],
            "--src",
        ),
        (
            "expect",
            &[
                "delete", "-p", "tcp", "--src", "10.0.0.1", "--dst", "10.0.0.2", "--sport",
                "70000", "--dport", "1",
            ],
            "--sport",
        ),
        ("expect", &["flush", "--helper", ""], "--helper"),
        (
            "expect",
            &["flush", "--helper", "a-name-longer-than-15"],
            "--helper",
        ),
        ("events", &["--expect", "-p", "tcp"], "--expect"),
        ("events", &["--expect", "--with-expect"], "--with-expect"),
        ("events", &["--expect=yes"], "--expect"),
        ("dump", &["-S", "bogus"], "--stats"),
        ("dump", &["--stats="], "--stats"),
        ("dump", &["-S", "expect", "-p", "tcp"], "-S"),
        ("dump", &["--expect", "--id"], "--expect"),
        ("dump", &["--expect", "--list", "dying"], "--expect"),
        // --labels-file only goes with --labels, and --labels with text lines.
        ("dump", &["--labels-file", "/etc/hosts"], "--labels"),
        ("dump", &["--labels", "--json"], "--labels"),
        ("dump", &["--labels", "--stats-only"], "--labels"),
        ("dump", &["--labels", "--expect"], "--labels"),
        ("dump", &["--labels", "-S"], "--labels"),
        ("events", &["--labels", "--json"], "--labels"),
        ("events", &["--labels-file", "/etc/hosts"], "--labels"),
        ("gc", &["-p", "tcp", "--labels"], "--labels"),
        (
            "gc",
            &["-p", "tcp", "--list", "--json", "--labels"],
            "--labels",
        ),
        (
            "gc",
            &["-p", "tcp", "--list", "--labels-file", "/etc/hosts"],
            "--labels",
        ),
    ];
    for (tool, args, option) in cases {
        refused(tool, &os(args), option);
    }
    // expect create: one command line, and what each case adds to it.
    let create = "create -p tcp --src 10.0.0.1 --dst 10.0.0.2 --dport 1 \
                  --master-src 10.0.0.1 --master-dst 10.0.0.2";
    for (extra, option) in [
        (
            "--master-sport 1 --master-dport 21 --timeout 0 --any-sport",
            "--timeout",
        ),
        ("--sport 1 --any-sport --timeout 5", "--any-sport"),
        (
            "--any-sport --timeout 5",
            "--master-src/--master-dst/--master-sport",
        ),
    ] {
        let args: Vec<&str> = create
            .split_whitespace()
            .chain(extra.split_whitespace())
            .collect();
        refused("expect", &os(&args), option);
    }
}

#[test]
fn label_files_that_cannot_be_read_are_usage_errors_naming_the_option() {
    let dir = std::env::temp_dir().join(format!("ctrs-cli-labels-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let malformed = dir.join("malformed.conf");
    std::fs::write(&malformed, "1 two words\n").unwrap();
    let binary = dir.join("binary.conf");
    std::fs::write(&binary, b"1 \xff\n").unwrap();
    let non_utf8_path = OsString::from_vec(b"/nonexistent/\xff.conf".to_vec());
    let bad_files = [
        OsString::from("/nonexistent/labels"),
        OsString::from("/"),
        malformed.into_os_string(),
        binary.into_os_string(),
        non_utf8_path,
    ];
    // The tools that print conntrack lines, with what makes them print.
    let printers: [(&str, &[&str]); 3] = [
        ("dump", &["--labels"]),
        ("gc", &["--list", "-p", "tcp", "--labels"]),
        ("events", &["--labels"]),
    ];
    for file in &bad_files {
        for (tool, args) in printers {
            let mut all = os(args);
            all.extend([OsString::from("--labels-file"), file.clone()]);
            refused(tool, &all, "--labels-file");
        }
        let mut all = os(&["-p", "tcp", "--label-add", "1", "--labels-file"]);
        all.push(file.clone());
        refused("update", &all, "--labels-file");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_version_and_generated_completions_and_man_pages() {
    for tool in TOOLS {
        let run = |args: &[&str]| {
            let output = Command::new(example_binary(tool))
                .args(args)
                .output()
                .unwrap();
            assert!(output.status.success(), "{tool} {args:?}: {output:?}");
            String::from_utf8(output.stdout).unwrap()
        };
        assert!(run(&["--help"]).contains("Usage: "), "{tool}");
        assert!(
            run(&["--version"]).starts_with(&format!("{tool} 0.")),
            "{tool}"
        );
        assert!(run(&["--generate", "bash"]).contains(&format!("_{tool}()")));
        assert!(run(&["--generate", "zsh"]).contains(&format!("#compdef {tool}")));
        assert!(run(&["--generate", "fish"]).contains(&format!("complete -c {tool}")));
        let man = run(&["--generate", "man"]);
        assert!(
            man.contains(".TH") && man.contains("netns"),
            "{tool}: {man}"
        );
        let output = Command::new(example_binary(tool))
            .args(["--generate", "tcsh"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{tool}");
    }
}

#[test]
fn a_closed_pipe_ends_quietly() {
    // The man page is long enough to fill a pipe whose reader has gone.
    for tool in TOOLS {
        let output = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "'{}' --generate man | head -c 10 >/dev/null",
                    example_binary(tool).display()
                ),
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{tool}: {stderr}");
    }
}
