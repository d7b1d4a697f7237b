// SPDX-License-Identifier: MIT OR Apache-2.0
//! Listing every network namespace of the host: two throwaway named
//! namespaces (one with a process in it) and an unnamed namespace that only a
//! process holds each appear exactly once, with a `Netns` that opens a handle
//! on the right table; the initial namespace appears once.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::ScratchNs;
use conntrack::netns::{list_all, NetnsEntry, NetnsId};
use conntrack::{Conntrack, FlowSpec, Netns, Tuple};

/// A child process, killed and reaped when dropped (also on test failure).
struct Sleeper(Child);

impl Sleeper {
    /// Runs `program args... sh -c 'echo ready; read line'` and waits for
    /// "ready", so that any namespace switch the wrapper makes has happened.
    /// The shell then blocks reading its stdin (a pipe we keep open) until
    /// killed, so its command name stays `sh`.
    fn spawn(program: &str, args: &[&str]) -> Sleeper {
        let mut child = Command::new(program)
            .args(args)
            .args(["sh", "-c", "echo ready; read line"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped stdout"))
            .read_line(&mut line)
            .expect("read from child");
        let sleeper = Sleeper(child);
        assert_eq!(line.trim(), "ready", "{program} {args:?} did not start");
        sleeper
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn only<'a>(entries: &'a [NetnsEntry], id: NetnsId, what: &str) -> &'a NetnsEntry {
    let matching: Vec<_> = entries.iter().filter(|e| e.id == id).collect();
    assert_eq!(matching.len(), 1, "{what} listed {} times", matching.len());
    matching[0]
}

#[test]
fn lists_named_and_process_namespaces_once_each() {
    require_root!();
    let with_process = ScratchNs::new("ls-a");
    let empty = ScratchNs::new("ls-b");
    let in_named = Sleeper::spawn("ip", &["netns", "exec", &with_process.name]);
    let unnamed = Sleeper::spawn("unshare", &["--net"]);

    let entries = list_all().unwrap();
    for entry in &entries {
        eprintln!("{} {}", entry.id, entry.description());
    }
    let mut ids: Vec<_> = entries.iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), entries.len(), "duplicates: {entries:#?}");

    let a = only(
        &entries,
        NetnsId::of_path(format!("/run/netns/{}", with_process.name)).unwrap(),
        "named namespace with a process",
    );
    assert_eq!(a.names, vec![with_process.name.clone()]);
    assert_eq!(a.netns, Netns::named(&with_process.name));
    assert_eq!(a.pids, vec![in_named.pid()]);
    assert_eq!(a.command.as_deref(), Some("sh"));
    assert!(!a.initial);
    assert_eq!(
        a.description(),
        format!("{} (1 process)", with_process.name)
    );

    let b = only(
        &entries,
        NetnsId::of_path(format!("/run/netns/{}", empty.name)).unwrap(),
        "named namespace without processes",
    );
    assert_eq!(b.names, vec![empty.name.clone()]);
    assert!(b.pids.is_empty());
    assert_eq!(b.description(), empty.name);

    let unnamed_id = NetnsId::of_path(format!("/proc/{}/ns/net", unnamed.pid())).unwrap();
    assert_ne!(unnamed_id, NetnsId::current().unwrap());
    let c = only(&entries, unnamed_id, "unnamed namespace of a process");
    assert!(c.names.is_empty());
    assert_eq!(c.netns, Netns::Pid(unnamed.pid()));
    assert_eq!(c.description(), format!("pid {} (sh)", unnamed.pid()));

    let initial: Vec<_> = entries.iter().filter(|e| e.initial).collect();
    assert_eq!(initial.len(), 1, "{entries:#?}");
    assert_eq!(entries[0].id, initial[0].id, "initial namespace first");
    if let Ok(pid1) = NetnsId::of_path("/proc/1/ns/net") {
        // PID 1 is readable (not in a sandbox that hides it): it is there,
        // and it represents its namespace.
        let entry = only(&entries, pid1, "PID 1's namespace");
        assert_eq!(entry.netns, Netns::Pid(1));
    }
    let current: Vec<_> = entries.iter().filter(|e| e.current).collect();
    assert_eq!(current.len(), 1);
    assert!(current[0].pids.contains(&std::process::id()));

    // Each entry's Netns reaches that namespace's own table: a flow created
    // in the named one is seen there and not in the process's namespace.
    let mut in_a = Conntrack::open_in(&a.netns).unwrap();
    let spec = FlowSpec::new(Tuple::udp(([10, 9, 0, 1], 1000), ([10, 9, 0, 2], 53))).timeout(600);
    in_a.create(&spec).unwrap();
    assert_eq!(with_process.conntrack().count().unwrap(), 1);
    let mut in_c = Conntrack::open_in(&c.netns).unwrap();
    assert_eq!(in_c.count().unwrap(), 0);
    assert!(in_c.get(&spec.orig, 0).unwrap().is_none());
    assert_eq!(c.open().unwrap().id().unwrap(), unnamed_id);
    assert_eq!(a.open().unwrap().id().unwrap(), a.id);

    // Once the process is gone, its namespace is gone from the listing.
    drop(unnamed);
    let after = list_all().unwrap();
    assert!(after.iter().all(|e| e.id != unnamed_id));
    assert!(matches!(
        c.open(),
        Err(conntrack::Error::NoSuchNetns { .. })
    ));
}
