// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every operator tool against non-UTF-8, empty, huge and malformed
//! arguments: no panic (exit 101 or "panicked"), exit status 2, a message
//! naming the option (also the option whose value is not UTF-8). Also
//! `--version`, `--opt=value`, generated completions and man pages, and a
//! closed pipe. No kernel needed: every case is refused before a socket is
//! opened (the exporter's closed-stdout case exports a namespace that does
//! not exist).

mod common;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Read;
use std::os::unix::ffi::OsStringExt;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::example_binary;

const TOOLS: [&str; 12] = [
    "gc", "dump", "doctor", "top", "fill", "drain", "capture", "events", "update", "restore",
    "expect", "exporter",
];

/// 2^64: one more than any u64.
const OVER_U64: &str = "18446744073709551616";

/// Runs `command` to its end, killed (and the test failed) after 30 s: a
/// case that is wrongly accepted starts a tool that may never end (`events`,
/// `top`, the exporter).
fn run_bounded(mut command: Command, context: &str) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{context}: still running after 30 s (the arguments were accepted)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Runs `tool args`; asserts a usage error that names `option`.
fn refused(tool: &str, args: &[OsString], option: &str) {
    let mut command = Command::new(example_binary(tool));
    command.args(args);
    let shown: Vec<String> = args
        .iter()
        .map(|a| {
            let a = a.to_string_lossy();
            match a.len() {
                0..=200 => a.into_owned(),
                n => format!("{}... ({n} bytes)", &a[..40]),
            }
        })
        .collect();
    let output = run_bounded(command, &format!("{tool} {shown:?}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let context = format!("{tool} {shown:?}: {:?} {stderr}", output.status);
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

/// `args` with `value` (any bytes) appended to the last one.
fn with_bytes(args: &[&str], value: &[u8]) -> Vec<OsString> {
    let mut all = os(args);
    let mut last = all.pop().unwrap_or_default().into_vec();
    last.extend_from_slice(value);
    all.push(OsString::from_vec(last));
    all
}

#[test]
fn a_value_that_is_not_utf8_is_refused_naming_its_option() {
    let bad: &[u8] = b"n\xff\xfe";
    for tool in TOOLS {
        // As the next argument and after `=`.
        for args in [
            with_bytes(&["--netns", ""], bad),
            with_bytes(&["--netns="], bad),
        ] {
            refused(tool, &args, "--netns");
            refused(tool, &args, "not valid UTF-8");
        }
        // An option name that is not UTF-8, long or short.
        refused(tool, &with_bytes(&["--net"], bad), "option name");
        refused(tool, &with_bytes(&["-"], &[0xff]), "option name");
        // A positional argument: a path may be any bytes (restore's FILE,
        // so it is looked for), text may not.
        let lone = [OsString::from_vec(bad.to_vec())];
        if tool == "restore" {
            refused(tool, &lone, "No such file");
        } else {
            refused(tool, &lone, "positional argument");
        }
    }
    // Short options, alone and with the value attached; options of a
    // subcommand; a value after a valid one.
    let cases: &[(&str, &[&str], &str)] = &[
        ("dump", &["-s", ""], "--src"),
        ("dump", &["-s"], "--src"),
        ("dump", &["-z", "-p", ""], "--proto"),
        ("gc", &["-p"], "--proto"),
        ("gc", &["-p", "tcp", "--dport", ""], "--dport"),
        ("gc", &["--orphans", "--sockets"], "--sockets"),
        ("events", &["-e", ""], "--event-mask"),
        ("update", &["-p", "tcp", "-m", ""], "--mark"),
        ("update", &["-p", "tcp", "--label-add", ""], "--label-add"),
        ("expect", &["get", "-p", ""], "--proto"),
        ("expect", &["get", "--netns", ""], "--netns"),
        (
            "capture",
            &["--netns", "x", "dump", "--comment", ""],
            "--comment",
        ),
        ("capture", &["--netns", "x", "dump", "--out", ""], "--out"),
        ("restore", &["--zone", ""], "--zone"),
        ("exporter", &["--listen", ""], "--listen"),
        ("exporter", &["--breakdown-budget="], "--breakdown-budget"),
        ("top", &["--group", ""], "--group"),
        ("doctor", &["--memory-budget", ""], "--memory-budget"),
        ("drain", &["--netns", "x", "--buffer", ""], "--buffer"),
        ("fill", &["--netns", "x", "--flows", ""], "--flows"),
    ];
    for (tool, args, option) in cases {
        refused(tool, &with_bytes(args, bad), option);
    }
    // Where a path is expected, other bytes are a name like any other.
    refused(
        "dump",
        &with_bytes(&["--labels", "--labels-file", "/nonexistent/"], bad),
        "--labels-file",
    );
}

#[test]
fn hostile_arguments_are_usage_errors_naming_the_option() {
    let huge = "18446744073709551615";
    let bigger = "99999999999999999999999999";
    for tool in TOOLS {
        // Empty, malformed and unknown (non-UTF-8: the test above).
        refused(tool, &os(&["--netns", ""]), "--netns");
        refused(tool, &os(&["--netns="]), "--netns");
        refused(tool, &os(&["--no-such-option"]), "--no-such-option");
        refused(tool, &os(&["--netns"]), "--netns");
    }
    // Huge values, at least one per tool (checked below): 2^64 where a
    // number is read, 100 kB where text is.
    let long = "9".repeat(100_000);
    let long = long.as_str();
    let huge_cases: &[(&str, &[&str], &str)] = &[
        ("gc", &["--limit", OVER_U64, "-p", "tcp"], "--limit"),
        ("gc", &["--dport", long], "--dport"),
        ("dump", &["--zone", OVER_U64], "--zone"),
        ("dump", &["-s", long], "--src"),
        ("doctor", &["--top", OVER_U64], "--top"),
        ("doctor", &["--memory-budget", long], "--memory-budget"),
        ("top", &["--rows", OVER_U64], "--rows"),
        ("top", &["--interval", long], "--interval"),
        ("fill", &["--netns", "x", "--flows", OVER_U64], "--flows"),
        ("drain", &["--netns", "x", "--repeat", OVER_U64], "--repeat"),
        (
            "capture",
            &["--netns", "x", "dump", "--sport", OVER_U64],
            "--sport",
        ),
        (
            "capture",
            &["--netns", "x", "dump", "--proto", long],
            "--proto",
        ),
        ("events", &["--buffer", OVER_U64], "--buffer"),
        ("events", &["-e", long], "--event-mask"),
        ("update", &["-p", "tcp", "--timeout", OVER_U64], "--timeout"),
        ("update", &["-p", "tcp", "--set-mark", long], "--set-mark"),
        ("update", &["-p", "tcp", "--rate", OVER_U64], "--rate"),
        ("restore", &["--timeout", OVER_U64, "t"], "--timeout"),
        ("restore", &["--zone", long, "t"], "--zone"),
        (
            "expect",
            &["get", "-p", "tcp", "--sport", OVER_U64],
            "--sport",
        ),
        ("expect", &["get", "-p", "tcp", "--src", long], "--src"),
        (
            "expect",
            &["create", "-p", "tcp", "--timeout", OVER_U64],
            "--timeout",
        ),
        (
            "exporter",
            &["--max-connections", OVER_U64],
            "--max-connections",
        ),
        ("exporter", &["--top", OVER_U64], "--top"),
        (
            "exporter",
            &["--request-timeout", OVER_U64],
            "--request-timeout",
        ),
        (
            "exporter",
            &["--breakdown-interval", long],
            "--breakdown-interval",
        ),
        ("exporter", &["--listen", long], "--listen"),
    ];
    for (tool, args, option) in huge_cases {
        refused(tool, &os(args), option);
    }
    let covered: BTreeSet<&str> = huge_cases.iter().map(|(tool, _, _)| *tool).collect();
    let uncovered: Vec<&str> = TOOLS.into_iter().filter(|t| !covered.contains(t)).collect();
    assert!(uncovered.is_empty(), "no huge-value case for {uncovered:?}");

    let cases: &[(&str, &[&str], &str)] = &[
        // The exporter: the address, the durations, the bounds.
        ("exporter", &["--listen", "nope"], "--listen"),
        ("exporter", &["--listen", "localhost:9466"], "--listen"),
        ("exporter", &["--listen", "127.0.0.1:65536"], "--listen"),
        ("exporter", &["--listen", "127.0.0.1"], "--listen"),
        ("exporter", &["--listen="], "--listen"),
        ("exporter", &["--max-connections", "0"], "--max-connections"),
        (
            "exporter",
            &["--max-connections", "65537"],
            "--max-connections",
        ),
        ("exporter", &["--top", "-1"], "--top"),
        (
            "exporter",
            &["--max-connections", "-5"],
            "--max-connections",
        ),
        (
            "exporter",
            &["--request-timeout", "-0.5"],
            "--request-timeout",
        ),
        (
            "exporter",
            &["--breakdown-interval", "NaN"],
            "--breakdown-interval",
        ),
        (
            "exporter",
            &["--breakdown-interval", "1e300"],
            "--breakdown-interval",
        ),
        (
            "exporter",
            &["--breakdown-interval", "-1"],
            "--breakdown-interval",
        ),
        (
            "exporter",
            &["--breakdown-budget", "0"],
            "--breakdown-budget",
        ),
        (
            "exporter",
            &["--breakdown-budget", "100.5"],
            "--breakdown-budget",
        ),
        (
            "exporter",
            &["--breakdown-budget", "inf"],
            "--breakdown-budget",
        ),
        (
            "exporter",
            &["--breakdown-budget", ""],
            "--breakdown-budget",
        ),
        (
            "exporter",
            &["--request-timeout", "86401"],
            "--request-timeout",
        ),
        ("exporter", &["--request-timeout", ""], "--request-timeout"),
        ("exporter", &["--no-orphans=yes"], "--no-orphans"),
        // --discovery-interval: only with --all-namespaces, 0.1 s to a day.
        (
            "exporter",
            &["--discovery-interval", "1"],
            "--all-namespaces",
        ),
        (
            "exporter",
            &["--all-namespaces", "--discovery-interval", "0"],
            "--discovery-interval",
        ),
        (
            "exporter",
            &["--all-namespaces", "--discovery-interval", "0.05"],
            "--discovery-interval",
        ),
        (
            "exporter",
            &["--all-namespaces", "--discovery-interval", OVER_U64],
            "--discovery-interval",
        ),
        (
            "exporter",
            &["--all-namespaces", "--discovery-interval=-1"],
            "--discovery-interval",
        ),
        (
            "exporter",
            &["--all-namespaces", "x"],
            "unexpected argument",
        ),
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
        ("gc", &["--orphans", "--sockets", "pods"], "--sockets"),
        ("gc", &["--orphans", "--sockets", ""], "--sockets"),
        ("gc", &["--orphans", "--sockets", huge], "--sockets"),
        (
            "gc",
            &["--orphans", "--confirmed", "--sockets", "off"],
            "--sockets",
        ),
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
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--generate"), "{tool}: {stderr}");
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

#[test]
fn the_exporter_serves_on_when_its_stdout_is_closed() {
    // A free port, then the exporter on it, its stdout a pipe whose reader
    // is gone before it prints its `listening on` line. It exports a
    // namespace that does not exist: no kernel table is read.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let mut child = Command::new(example_binary("exporter"))
        .args([
            "--listen",
            &address,
            "--netns",
            "ctrs-cli-no-such-namespace",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // It prints before it serves: an answer means the line was written.
    let deadline = Instant::now() + Duration::from_secs(30);
    let answer = loop {
        let exited = child.try_wait().unwrap();
        if let Some(status) = exited {
            panic!("the exporter ended: {status:?}\n{}", log.join().unwrap());
        }
        let response =
            conntrack::testing::http::get(&address, "/metrics", None, Duration::from_secs(10));
        if let Ok(response) = response {
            break response;
        }
        assert!(Instant::now() < deadline, "the exporter never answered");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(answer.status, 200, "{}", answer.head);
    assert!(
        answer
            .body
            .contains("conntrack_up{netns=\"ctrs-cli-no-such-namespace\"} 0"),
        "{}",
        answer.body
    );
    assert!(child.try_wait().unwrap().is_none(), "the exporter ended");
    let _ = child.kill();
    let _ = child.wait();
    let log = log.join().unwrap();
    assert!(!log.contains("panicked"), "{log}");
}
