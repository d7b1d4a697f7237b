// SPDX-License-Identifier: MIT OR Apache-2.0
//! Replays the committed fuzz inputs on stable Rust: every file of
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through the
//! same `conntrack::fuzzing` entry point as the cargo-fuzz target of that name,
//! so a fixed crash stays fixed without a nightly toolchain or libFuzzer.
//! A `README.md` in an input folder documents it and is not an input.

use std::fs;
use std::panic;
use std::path::{Path, PathBuf};

/// A fuzzing entry point, returning how many inputs (or flows) it accepted.
type EntryPoint = fn(&[u8]) -> usize;

/// The fuzz targets and the entry point each one calls.
const TARGETS: [(&str, EntryPoint); 6] = [
    ("datagram", conntrack::fuzzing::datagram),
    ("flow_payload", |bytes| {
        usize::from(conntrack::fuzzing::flow_payload(bytes))
    }),
    ("request_roundtrip", |bytes| {
        usize::from(conntrack::fuzzing::request_roundtrip(bytes))
    }),
    ("filter_eval", |bytes| {
        usize::from(conntrack::fuzzing::filter_eval(bytes))
    }),
    ("sock_diag", conntrack::fuzzing::sock_diag),
    ("restore_roundtrip", |bytes| {
        usize::from(conntrack::fuzzing::restore_roundtrip(bytes))
    }),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// True in the published crate (`cargo package` leaves `Cargo.toml.orig`
/// there), which cannot hold `fuzz/`: Cargo never packages a folder that is a
/// package of its own. In the repository the inputs must be there.
fn outside_the_repository() -> bool {
    let packaged = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml.orig");
    if packaged.is_file() {
        eprintln!("skipped: the published crate does not ship fuzz/ (replay from the repository)");
    }
    packaged.is_file()
}

/// The files of `fuzz/<kind>/<target>/`, sorted; none if the folder is absent.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("readable fuzz folder").path())
        .filter(|path| path.is_file() && !path.ends_with("README.md"))
        .collect();
    files.sort();
    files
}

/// Runs every input of `target`; returns (inputs run, sum of the entry
/// point's results). Panics naming every input that panicked.
fn replay(target: &str, entry: EntryPoint) -> Option<(usize, usize)> {
    if outside_the_repository() {
        return None;
    }
    let mut files = inputs("corpus", target);
    files.extend(inputs("regressions", target));
    let mut accepted = 0;
    let mut panicked = Vec::new();
    for file in &files {
        let bytes = fs::read(file).expect("readable fuzz input");
        match panic::catch_unwind(|| entry(&bytes)) {
            Ok(count) => accepted += count,
            Err(_) => panicked.push(file.display().to_string()),
        }
    }
    assert!(
        panicked.is_empty(),
        "{target}: {} input(s) panicked: {panicked:#?}",
        panicked.len()
    );
    Some((files.len(), accepted))
}

#[test]
fn datagram_inputs_never_panic() {
    let Some((inputs, flows)) = replay(TARGETS[0].0, TARGETS[0].1) else {
        return;
    };
    // A seed corpus that silently went missing would make this test vacuous.
    assert!(inputs > 0, "no input under fuzz/corpus/datagram");
    assert!(flows > 0, "no datagram seed decoded to a flow");
}

#[test]
fn flow_payload_inputs_never_panic() {
    let Some((inputs, accepted)) = replay(TARGETS[1].0, TARGETS[1].1) else {
        return;
    };
    assert!(inputs > 0, "no input under fuzz/corpus/flow_payload");
    assert!(accepted > 0, "no flow_payload seed decoded");
}

#[test]
fn request_roundtrip_inputs_never_panic() {
    let Some((inputs, valid)) = replay(TARGETS[2].0, TARGETS[2].1) else {
        return;
    };
    assert!(inputs > 0, "no input under fuzz/corpus/request_roundtrip");
    // The seeds hold both specs the encoder accepts and specs it must refuse.
    assert!(valid > 0, "no request_roundtrip seed encoded");
    assert!(valid < inputs, "no request_roundtrip seed was refused");
}

#[test]
fn filter_eval_inputs_never_panic() {
    let Some((inputs, matched)) = replay(TARGETS[3].0, TARGETS[3].1) else {
        return;
    };
    assert!(inputs > 0, "no input under fuzz/corpus/filter_eval");
    assert!(matched > 0, "no filter_eval seed matched its flow");
    assert!(matched < inputs, "every filter_eval seed matched its flow");
}

#[test]
fn every_input_folder_is_a_known_target() {
    for kind in ["corpus", "regressions"] {
        let Ok(entries) = fs::read_dir(fuzz_dir().join(kind)) else {
            continue;
        };
        for entry in entries {
            let entry = entry.expect("readable fuzz folder");
            if entry.path().ends_with("README.md") {
                continue;
            }
            let name = entry.file_name();
            let name = name.to_string_lossy();
            assert!(
                TARGETS.iter().any(|(target, _)| *target == name),
                "fuzz/{kind}/{name} is not replayed: add its target to TARGETS"
            );
        }
    }
}

#[test]
fn sock_diag_corpus_replays() {
    let Some((inputs, sockets)) = replay(TARGETS[4].0, TARGETS[4].1) else {
        return;
    };
    assert!(inputs > 0, "no input under fuzz/corpus/sock_diag");
    assert!(sockets > 0, "the seeds hold inet_diag replies that decode");
}

#[test]
fn restore_roundtrip_inputs_never_panic() {
    let Some((inputs, parsed)) = replay(TARGETS[5].0, TARGETS[5].1) else {
        return;
    };
    assert!(inputs > 0, "no input under fuzz/corpus/restore_roundtrip");
    // The seeds hold conntrack -L lines (which parse) and JSON or generator
    // bytes (which do not parse as text).
    assert!(parsed > 0, "no restore_roundtrip seed parsed as text");
    assert!(
        parsed < inputs,
        "every restore_roundtrip seed parsed as text"
    );
}
