// SPDX-License-Identifier: MIT OR Apache-2.0
//! The `doctor` example against the real kernel: its JSON report on a table
//! with a known load, `--apply` on a copy of the settings tree, and `--demo`,
//! which must leave no namespace behind, also when interrupted.
//!
//! The tests of this file run one at a time (they watch namespaces come and go).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{example_binary, known_load, v4, ScratchNs};
use conntrack::{FlowSpec, Status, TcpState, Tuple};
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `doctor` with `args`; returns (exit code, stdout, stderr).
fn doctor(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(example_binary("doctor"))
        .args(args)
        .output()
        .expect("run doctor");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn doctor_json(args: &[&str]) -> Value {
    let (code, stdout, stderr) = doctor(args);
    assert_eq!(code, 0, "doctor {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("doctor JSON ({e}): {stdout}"))
}

fn groups(report: &Value, list: &str, key: &str) -> BTreeMap<String, u64> {
    report["top"][list]
        .as_array()
        .unwrap_or_else(|| panic!("top.{list} in {report}"))
        .iter()
        .map(|g| {
            let k = match &g[key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k, g["flows"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn json_report_on_a_known_load() {
    require_root!();
    let _serial = serial();
    let ns = ScratchNs::new("doctor-load");
    known_load(&ns);
    let limit = ns.conntrack().limit().unwrap();

    let report = doctor_json(&[
        "--netns",
        &ns.name,
        "--json",
        "--interval",
        "0",
        "--top",
        "5",
    ]);
    // 20 orphans in 650 flows (3.1 %, above 1 %) make a warning; the table is fine.
    assert_eq!(report["level"], "WARN", "{report:#}");
    assert_eq!(report["findings"][0]["level"], "WARN");
    assert!(report["findings"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("20 orphaned flows"));
    assert_eq!(report["table"]["entries"], 650);
    assert_eq!(report["table"]["max"], limit);
    assert_eq!(report["table"]["level"], "OK");
    assert_eq!(report["dump"]["flows"], 650);
    assert_eq!(report["dump"]["decode_errors"], 0);
    assert!(report["counters"]["delta"].is_null());
    assert!(report["counters"]["since_start"].is_object());

    // Sources: two heavy ones, then singletons in address order.
    let sources = report["top"]["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 5);
    assert_eq!(sources[0]["address"], "10.9.0.1");
    assert_eq!(sources[0]["flows"], 300);
    assert_eq!(sources[1]["address"], "10.9.0.2");
    assert_eq!(sources[1]["flows"], 200);
    assert_eq!(sources[2]["address"], "10.9.1.1");
    assert_eq!(sources[2]["flows"], 1);
    assert_eq!(report["top"]["other"]["sources"], 650 - 300 - 200 - 3);

    let ports: BTreeMap<(String, String), u64> = report["top"]["destination_ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                (
                    g["protocol"].as_str().unwrap().to_owned(),
                    g["port"].to_string(),
                ),
                g["flows"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected: BTreeMap<(String, String), u64> = [
        (("tcp".to_owned(), "443"), 300),
        (("udp".to_owned(), "53"), 200),
        (("tcp".to_owned(), "22"), 100),
        (("icmp".to_owned(), "null"), 30),
        (("tcp".to_owned(), "5432"), 20),
    ]
    .into_iter()
    .map(|((protocol, port), n)| ((protocol, port.to_owned()), n))
    .collect();
    assert_eq!(ports, expected);
    assert_eq!(report["top"]["other"]["destination_ports"], 0);

    let protocols = groups(&report, "protocols", "protocol");
    let expected: BTreeMap<String, u64> = [("tcp", 420), ("udp", 200), ("icmp", 30)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(protocols, expected);
    let states = groups(&report, "tcp_states", "state");
    let expected: BTreeMap<String, u64> = [("ESTABLISHED", 320), ("SYN_SENT", 100)]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    assert_eq!(states, expected);

    let orphans = &report["orphans"];
    assert_eq!(orphans["idle_established"], 20, "{orphans}");
    assert_eq!(orphans["long_unreplied"], 0, "{orphans}");
    assert_eq!(orphans["lingering_half_closed"], 0, "{orphans}");
    assert_eq!(orphans["total"], 20, "{orphans}");
    assert_eq!(orphans["thresholds"]["idle_established"], 3600);

    // Nothing to fix: no plan, but the orphans get a cleanup command.
    assert_eq!(report["plan"]["needed"], false);
    let commands = report["plan"]["commands"].to_string();
    assert!(
        commands.contains(&format!("gc --netns {} --orphans", ns.name)),
        "{commands}"
    );

    // The text report says the same.
    let (code, text, stderr) = doctor(&["--netns", &ns.name, "--interval", "0"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(text.starts_with("conntrack doctor: WARN"), "{text}");
    assert!(text.contains("10.9.0.1 300 (46.2 %)"), "{text}");
    assert!(text.contains("idle ESTABLISHED ≥ 3600 s: 20"), "{text}");
    assert!(text.contains("PLAN      no change needed"), "{text}");
}

/// A real loopback TCP connection in `ns` (client, server), one ping done.
fn loopback_connection(ns: &ScratchNs, port: u16) -> (TcpStream, TcpStream) {
    ns.run(|| {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("listen");
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (mut server, _) = listener.accept().expect("accept");
        for s in [&client, &server] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        common::ping(&mut client, &mut server);
        (client, server)
    })
}

#[test]
fn orphans_confirmed_by_the_socket_table_are_reported() {
    require_root!();
    let _serial = serial();
    const DEAD: u16 = 7511;
    const LIVE: u16 = 7512;
    let ns = ScratchNs::new("doctor-confirmed");
    common::drop_fin_rst(&ns, DEAD);
    let established = common::established_timeout(&ns);
    // Idle for two hours by the estimate: above the 3600 s threshold.
    let idle = |orig: Tuple| {
        FlowSpec::new(orig)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .timeout(established - 7200)
    };
    let mut ct = ns.conntrack();
    // Confirmed: a real connection whose sockets are gone (both closed with
    // an RST that never reached conntrack: the flow stays ESTABLISHED)...
    let (client, server) = loopback_connection(&ns, DEAD);
    let dead = Tuple::tcp(client.local_addr().unwrap(), client.peer_addr().unwrap());
    common::reset_on_close(&client);
    common::reset_on_close(&server);
    drop((client, server));
    std::thread::sleep(Duration::from_millis(300));
    let flow = ct
        .get(&dead, 0)
        .unwrap()
        .expect("the dead connection's flow");
    assert_eq!(flow.tcp_state(), Some(TcpState::Established), "{flow:?}");
    ct.update(&FlowSpec::new(dead).timeout(established - 7200))
        .unwrap();
    // ...and a local flow no socket ever had.
    ct.create(&idle(Tuple::tcp(
        ([127, 0, 0, 1], 41000),
        ([127, 0, 0, 1], 7513),
    )))
    .unwrap();
    // Suspected: forwarded flows (no local end), idle as long.
    for i in 1..=3u8 {
        ct.create(&idle(Tuple::tcp(
            (v4(10, 9, 2, i), 50000),
            (v4(192, 0, 2, 10), 5432),
        )))
        .unwrap();
    }
    // Idle but alive: a silent connection whose sockets are open.
    let (live_client, live_server) = loopback_connection(&ns, LIVE);
    let live = Tuple::tcp(
        live_client.local_addr().unwrap(),
        live_client.peer_addr().unwrap(),
    );
    ct.update(&FlowSpec::new(live).timeout(established - 7200))
        .unwrap();

    let report = doctor_json(&["--netns", &ns.name, "--json", "--interval", "0"]);
    let orphans = &report["orphans"];
    assert_eq!(orphans["confirmed"], 2, "{orphans}");
    assert_eq!(orphans["suspected"], 3, "{orphans}");
    assert_eq!(orphans["alive"], 1, "{orphans}");
    assert_eq!(orphans["idle_established"], 5, "{orphans}");
    assert_eq!(orphans["total"], 5, "{orphans}");

    let (code, text, stderr) = doctor(&["--netns", &ns.name, "--interval", "0"]);
    assert_eq!(code, 0, "{stderr}");
    let line = text
        .lines()
        .find(|l| l.starts_with("ORPHANS"))
        .unwrap_or_else(|| panic!("no ORPHANS line: {text}"));
    assert_eq!(
        line,
        "ORPHANS   5 (confirmed 2, suspected 3; 1 idle but alive): idle ESTABLISHED ≥ 3600 s: 5, \
         unreplied ≥ 60 s: 0, half-closed ≥ 300 s: 0",
        "{text}"
    );
    drop((live_client, live_server));
}

#[test]
fn counter_deltas_cover_the_interval() {
    require_root!();
    let _serial = serial();
    let ns = ScratchNs::new("doctor-counters");
    let child = Command::new(example_binary("doctor"))
        .args(["--netns", &ns.name, "--json", "--interval", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start doctor");
    // Well inside the 3-second measurement.
    std::thread::sleep(Duration::from_millis(1000));
    ns.send_invalid_tcp_segments(40);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let delta = &report["counters"]["delta"];
    assert!(delta["invalid"].as_u64().unwrap() >= 40, "{delta}");
    assert!(
        report["counters"]["since_start"]["invalid"]
            .as_u64()
            .unwrap()
            >= 40
    );
    assert_eq!(report["counters"]["interval"], 3.0);
    assert_eq!(report["counters"]["table_full"], false);
}

/// A copy of the settings a doctor run reads and writes, below one directory.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str, ns: &ScratchNs, initial: bool) -> Tree {
        let dir = std::env::temp_dir().join(format!("ctrs-doctor-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let tree = Tree(dir);
        // The namespace's own sysctls, read inside it.
        let files: Vec<(String, String)> = ns.run(|| {
            std::fs::read_dir("/proc/sys/net/netfilter")
                .unwrap()
                .filter_map(|e| {
                    let e = e.unwrap();
                    let name = e.file_name().into_string().unwrap();
                    std::fs::read_to_string(e.path()).ok().map(|v| (name, v))
                })
                .collect()
        });
        for (name, value) in &files {
            tree.write(&format!("proc/sys/net/netfilter/{name}"), value);
        }
        let max = tree.read("proc/sys/net/netfilter/nf_conntrack_max");
        let buckets = tree.read("proc/sys/net/netfilter/nf_conntrack_buckets");
        if initial {
            // Only the initial namespace has the net.nf_conntrack_max alias.
            tree.write("proc/sys/net/nf_conntrack_max", &max);
        }
        tree.write("sys/module/nf_conntrack/parameters/hashsize", &buckets);
        tree.write("sys/kernel/slab/nf_conntrack/object_size", "248\n");
        tree.write("sys/kernel/slab/nf_conntrack/align", "64\n");
        tree.write("proc/meminfo", "MemTotal:       16777216 kB\n");
        tree.write("proc/sys/kernel/osrelease", "6.18.0-test\n");
        tree.write(
            "etc/sysctl.conf",
            "# an old tuning line\nnet.netfilter.nf_conntrack_max = 65536\n",
        );
        tree
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }

    fn write(&self, relative: &str, content: &str) {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.0.join(relative)).unwrap()
    }

    fn number(&self, relative: &str) -> u64 {
        self.read(relative).trim().parse().unwrap()
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A namespace with 30 unreplied UDP flows: above thresholds of 0.001 % / 0.002 %.
fn ns_with_30_flows(tag: &str) -> ScratchNs {
    let ns = ScratchNs::new(tag);
    let mut ct = ns.conntrack();
    for i in 1..=30u8 {
        let orig = Tuple::udp((v4(10, 8, 0, i), 5000), (v4(10, 8, 1, 1), 53));
        ct.create(&FlowSpec::new(orig).timeout(300)).unwrap();
    }
    ns
}

/// Options that make a 30-entry table CRIT (thresholds of 0.001 % / 0.002 %),
/// with the settings below `tree`, as JSON and without the counter interval.
fn crit_args<'a>(ns: &'a ScratchNs, tree: &'a Tree) -> Vec<&'a str> {
    vec![
        "--netns",
        &ns.name,
        "--root",
        tree.path(),
        "--json",
        "--interval",
        "0",
        "--warn",
        "0.001",
        "--crit",
        "0.002",
    ]
}

#[test]
fn apply_writes_the_plan_live_and_persists_it_once() {
    require_root!();
    let _serial = serial();
    let host_max = std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max").unwrap();
    let ns = ns_with_30_flows("doctor-apply");
    let tree = Tree::new("apply", &ns, true);
    let max = tree.number("proc/sys/net/netfilter/nf_conntrack_max");
    let buckets = tree.number("proc/sys/net/netfilter/nf_conntrack_buckets");
    // 30 entries are above thresholds of 0.001 % / 0.002 %: CRIT, so the plan
    // doubles the limit (in steps of 65536) and keeps chains at 4 when full.
    let args = crit_args(&ns, &tree);
    let dry = doctor_json(&args);
    assert_eq!(dry["level"], "CRIT");
    let plan = &dry["plan"];
    assert_eq!(plan["needed"], true, "{plan:#}");
    let want_max = (2 * max).div_ceil(65_536) * 65_536;
    let want_buckets = buckets.max((2 * want_max / 4).div_ceil(512) * 512);
    assert_eq!(plan["max"]["current"], max);
    assert_eq!(plan["max"]["recommended"], want_max);
    assert_eq!(plan["buckets"]["recommended"], want_buckets);
    // 248-byte objects in 64-byte lines: 256 B, plus the 128-byte extension area.
    assert_eq!(plan["per_entry_bytes"], 384);
    assert_eq!(plan["pinned_bytes"], want_max * 384 + want_buckets * 8);
    // 1/16 of the tree's 16 GiB.
    assert_eq!(plan["memory_budget"], 1u64 << 30);
    assert_eq!(plan["capped_by_budget"], false);
    assert_eq!(plan["applied"], false);
    // Dry run: nothing written.
    assert_eq!(
        tree.read("proc/sys/net/netfilter/nf_conntrack_max"),
        format!("{max}\n")
    );
    assert!(!tree.0.join("etc/sysctl.d").exists());
    let overrides = plan["overrides"].as_array().unwrap();
    assert_eq!(overrides.len(), 1, "{overrides:?}");
    assert!(overrides[0]["path"]
        .as_str()
        .unwrap()
        .ends_with("etc/sysctl.conf"));
    assert_eq!(overrides[0]["line"], 2);

    let mut apply_args = args.clone();
    apply_args.push("--apply");
    let applied = doctor_json(&apply_args);
    let plan = &applied["plan"];
    assert_eq!(plan["applied"], true, "{plan:#}");
    // Live values, in the tree's /proc and /sys.
    assert_eq!(
        tree.read("proc/sys/net/netfilter/nf_conntrack_max").trim(),
        want_max.to_string()
    );
    assert_eq!(
        tree.read("proc/sys/net/netfilter/nf_conntrack_buckets")
            .trim(),
        want_buckets.to_string()
    );
    assert_eq!(
        tree.read("sys/module/nf_conntrack/parameters/hashsize")
            .trim(),
        want_buckets.to_string()
    );
    // Persisted, exactly.
    let drop_in = tree.read("etc/sysctl.d/90-conntrack-rs.conf");
    assert_eq!(
        drop_in,
        format!(
            "# Conntrack settings, written by conntrack-rs (rewritten as a whole: edit with care).\n\
             # modules-load.d/conntrack-rs.conf loads nf_conntrack first, so these keys exist\n\
             # when systemd-sysctl (or `sysctl --system`) applies this file at boot.\n\
             net.netfilter.nf_conntrack_buckets = {want_buckets}\n\
             net.netfilter.nf_conntrack_max = {want_max}\n"
        )
    );
    assert!(tree
        .read("etc/modprobe.d/conntrack-rs.conf")
        .ends_with(&format!("options nf_conntrack hashsize={want_buckets}\n")));
    assert!(tree
        .read("etc/modules-load.d/conntrack-rs.conf")
        .ends_with("\nnf_conntrack\n"));
    let outcomes: Vec<&str> = plan["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["created", "created", "created"], "{plan:#}");
    // Twice: the files are left alone.
    let again = doctor_json(&apply_args);
    let outcomes: Vec<&str> = again["plan"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["unchanged", "unchanged", "unchanged"]);
    assert_eq!(tree.read("etc/sysctl.d/90-conntrack-rs.conf"), drop_in);

    // The host's own value never moved.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max").unwrap(),
        host_max
    );
}

#[test]
fn the_budget_caps_the_plan_and_apply_needs_the_initial_namespace() {
    require_root!();
    let _serial = serial();
    let ns = ns_with_30_flows("doctor-budget");
    let tree = Tree::new("budget", &ns, true);
    let max = tree.number("proc/sys/net/netfilter/nf_conntrack_max");
    let budget: u64 = 100 << 20;
    let mut args = crit_args(&ns, &tree);
    args.extend(["--memory-budget", "100M"]);
    let report = doctor_json(&args);
    let plan = &report["plan"];
    assert_eq!(plan["memory_budget"], budget);
    assert_eq!(plan["capped_by_budget"], true, "{plan:#}");
    let recommended = plan["max"]["recommended"].as_u64().unwrap();
    let pinned = plan["pinned_bytes"].as_u64().unwrap();
    assert!(recommended >= max, "never lowers the limit: {plan:#}");
    if recommended > max {
        // As many entries as fit, and not one more.
        assert!(pinned <= budget, "{plan:#}");
        assert!(pinned + 384 > budget, "{plan:#}");
    }
    assert!(
        report["findings"].to_string().contains("memory budget"),
        "{report:#}"
    );

    // A tree without the initial namespace's marker: --apply is refused, nothing written.
    let child_tree = Tree::new("child", &ns, false);
    let mut args = crit_args(&ns, &child_tree);
    args.push("--apply");
    let (code, _, stderr) = doctor(&args);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("initial namespace"), "{stderr}");
    assert_eq!(
        child_tree.read("proc/sys/net/netfilter/nf_conntrack_max"),
        format!("{max}\n")
    );
    assert!(!child_tree.0.join("etc/sysctl.d").exists());

    // Usage errors.
    assert_eq!(doctor(&["--warn", "90", "--crit", "80"]).0, 2);
    assert_eq!(doctor(&["--memory-budget", "lots"]).0, 2);
    assert_eq!(doctor(&["--demo", "--apply"]).0, 2);
}

/// Inodes of the network namespaces of every running process.
fn process_namespaces() -> Vec<(u32, u64)> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
            let ino = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?.ino();
            Some((pid, ino))
        })
        .collect()
}

/// Waits until no process is in the namespace `inode` and `pid` is gone.
fn assert_namespace_gone(pid: u32, inode: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let holders: Vec<u32> = process_namespaces()
            .into_iter()
            .filter(|(_, ino)| *ino == inode)
            .map(|(pid, _)| pid)
            .collect();
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if holders.is_empty() && !alive {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "namespace net:[{inode}] still held by {holders:?} (holder {pid} alive: {alive})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn demo_reports_and_leaves_no_namespace_behind() {
    require_root!();
    let _serial = serial();
    let report = doctor_json(&["--demo", "--json"]);
    let demo = &report["demo"];
    let (pid, inode) = (
        demo["pid"].as_u64().unwrap() as u32,
        demo["namespace_inode"].as_u64().unwrap(),
    );
    let own = std::fs::metadata("/proc/self/ns/net").unwrap().ino();
    assert_ne!(inode, own, "the demo ran in its own namespace");
    assert_namespace_gone(pid, inode);

    // What it shows: thousands of flows over several protocols and states,
    // heavy sources, orphans, and (below the fill limit) a full table.
    let created = demo["flows_created"].as_u64().unwrap();
    assert!(created >= 20_000, "{demo}");
    assert!(report["dump"]["flows"].as_u64().unwrap() >= created * 9 / 10);
    assert_eq!(report["top"]["sources"][0]["address"], "10.20.0.5");
    assert_eq!(report["top"]["sources"][1]["address"], "10.20.0.6");
    assert!(report["top"]["protocols"].as_array().unwrap().len() >= 3);
    assert!(report["top"]["tcp_states"].as_array().unwrap().len() >= 3);
    assert!(report["orphans"]["idle_established"].as_u64().unwrap() >= 50);
    let max = report["table"]["max"].as_u64().unwrap();
    if max <= 400_000 {
        assert_eq!(report["level"], "CRIT", "{report:#}");
        assert_eq!(report["counters"]["table_full"], true, "{report:#}");
        assert_eq!(report["plan"]["needed"], true);
        assert!(report["plan"]["max"]["recommended"].as_u64().unwrap() > max);
    }
}

#[test]
fn an_interrupted_demo_leaves_no_namespace_behind() {
    require_root!();
    let _serial = serial();
    let mut child = Command::new(example_binary("doctor"))
        .args(["--demo"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start doctor --demo");
    // "doctor --demo: building N flows in a throwaway namespace (pid P, limit L)..."
    let mut line = String::new();
    BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pid: u32 = line
        .split("(pid ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    let inode = std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .unwrap()
        .ino();
    // Ctrl-C while the table is being built.
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGINT), "{status:?}");
    assert_namespace_gone(pid, inode);
}

/// The next step doctor prints runs as printed, whichever way the namespace
/// was given (a pid here: `gc` once read every `--netns` as an `ip netns` name).
#[test]
fn the_printed_next_step_runs_as_printed() {
    require_root!();
    let ns = ScratchNs::new("nextstep");
    known_load(&ns);
    let mut holder = Command::new("ip")
        .args(["netns", "exec", &ns.name, "sleep", "60"])
        .spawn()
        .expect("a process inside the namespace");
    // `ip netns exec` execs sleep in place: its pid is the namespace's member.
    let pid = holder.id().to_string();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let report = doctor_json(&["--netns", &pid, "--json", "--interval", "0"]);
    let commands: Vec<String> = report["plan"]["commands"]
        .as_array()
        .expect("plan.commands")
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    let gc_line = commands
        .iter()
        .find(|c| c.starts_with("gc "))
        .unwrap_or_else(|| panic!("a gc step in {commands:?}"));
    let printed = gc_line.split('#').next().unwrap().split_whitespace();
    let args: Vec<&str> = printed.skip(1).collect();
    assert!(
        args.windows(2).any(|w| w == ["--netns", pid.as_str()]),
        "{gc_line}"
    );
    let output = Command::new(example_binary("gc"))
        .args(&args)
        .output()
        .expect("run gc");
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(
        output.status.success(),
        "{gc_line}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("idle_established=20"), "{stdout}");
}
