// SPDX-License-Identifier: MIT OR Apache-2.0
//! Restoring a saved table, on the real kernel: the flows of a
//! `CONNTRACK_BENCH_FLOWS` (default 250 000) `fill --mix` table, saved once,
//! created again after a flush by each path, interleaved for
//! `CONNTRACK_BENCH_ROUNDS` (default 5) rounds:
//!
//! * `restore_json`: `Conntrack::restore` of the `dump --json` NDJSON
//!   (parse, then pipelined creates, 128 per datagram);
//! * `restore_text`: the same from `conntrack -L -o extended` text;
//! * `create_loop`: one `Conntrack::create` per flow (one round trip each);
//! * `conntrack -R`: conntrack-tools loading its own `-o save` file (a
//!   process; needs `conntrack` on PATH, else skipped);
//! * `drain`: the raw dump of the full table (the baseline every claim in
//!   this repository is measured against).
//!
//! Prints each path's median, flows per second and ratio to `restore_json`.
//! Root only; otherwise it prints one line saying why it skipped.
//!
//! ```text
//! sudo CARGO_TARGET_DIR=... cargo bench -p conntrack-rs --bench restore
//! ```

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use conntrack::restore::{RestoreOptions, SavedTable};
use conntrack::testing::bench::{env_or, median};
use conntrack::testing::mix;
use conntrack::testing::raw::RawSocket;
use conntrack::testing::scratch::{is_root, ScratchNs};
use conntrack::text::{display, TextOptions};
use conntrack::{Conntrack, FlowSpec};

/// Restores `saved`, checking that every flow came back.
fn restore(ct: &mut Conntrack, saved: &[u8], flows: u32) -> Duration {
    ct.flush().expect("flush");
    let started = Instant::now();
    let report = ct
        .restore(
            SavedTable::new(saved, None),
            RestoreOptions::default(),
            |failure| panic!("{failure}"),
        )
        .expect("restore");
    let took = started.elapsed();
    assert_eq!(report.created, u64::from(flows), "{report:?}");
    took
}

fn main() {
    if !is_root() {
        println!("restore: skipped: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces");
        return;
    }
    let flows = env_or("CONNTRACK_BENCH_FLOWS", 250_000);
    let rounds = env_or("CONNTRACK_BENCH_ROUNDS", 5);
    let ns = ScratchNs::new("bench-restore");
    let mut ct = ns.conntrack();
    mix::create_mixed(&mut ct, 0..flows);
    let mut json = Vec::new();
    let mut text = Vec::new();
    let mut specs: Vec<FlowSpec> = Vec::new();
    for flow in ct.flows().expect("dump") {
        let flow = flow.expect("flow");
        serde_json::to_writer(&mut json, &flow).expect("json");
        json.push(b'\n');
        writeln!(text, "{}", display(&flow, TextOptions::EXTENDED)).expect("text");
        specs.push(FlowSpec::from_flow(&flow));
    }
    assert_eq!(specs.len(), flows as usize);
    let save = std::env::temp_dir().join(format!("ctrs-bench-restore-{}.save", std::process::id()));
    let conntrack_tools = Command::new("ip")
        .args(["netns", "exec", &ns.name, "conntrack", "-L", "-o", "save"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| std::fs::write(&save, o.stdout).is_ok())
        .unwrap_or(false);
    println!(
        "restore: {flows} flows, NDJSON {:.1} MB, text {:.1} MB{}",
        json.len() as f64 / 1e6,
        text.len() as f64 / 1e6,
        if conntrack_tools {
            ""
        } else {
            " (conntrack-tools not found: no conntrack -R)"
        }
    );
    let names = [
        "restore_json",
        "restore_text",
        "create_loop",
        "conntrack -R",
        "drain",
    ];
    let mut times: [Vec<Duration>; 5] = Default::default();
    for _ in 0..rounds {
        times[0].push(restore(&mut ct, &json, flows));
        times[1].push(restore(&mut ct, &text, flows));

        ct.flush().expect("flush");
        let started = Instant::now();
        for spec in &specs {
            ct.create(spec).expect("create");
        }
        times[2].push(started.elapsed());

        if conntrack_tools {
            ct.flush().expect("flush");
            let started = Instant::now();
            let status = Command::new("ip")
                .args(["netns", "exec", &ns.name, "conntrack", "-R"])
                .arg(&save)
                .output()
                .expect("conntrack -R");
            times[3].push(started.elapsed());
            assert!(status.status.success(), "{status:?}");
            assert_eq!(ct.count().expect("count"), flows);
        }

        let mut raw = RawSocket::open(Some(&ns.file())).expect("raw socket");
        raw.warm_up().expect("warm up");
        let started = Instant::now();
        let drained = raw.drain().expect("drain");
        times[4].push(started.elapsed());
        assert_eq!(drained.messages, u64::from(flows));
    }
    let _ = std::fs::remove_file(&save);
    let base = median(times[0].clone());
    for (name, times) in names.iter().zip(times) {
        if times.is_empty() {
            continue;
        }
        let m = median(times);
        println!(
            "{name:<14} median {:>8.1} ms  {:>9.0} flows/s  {:.2}x restore_json",
            m.as_secs_f64() * 1e3,
            f64::from(flows) / m.as_secs_f64(),
            m.as_secs_f64() / base.as_secs_f64()
        );
    }
}
