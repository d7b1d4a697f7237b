// SPDX-License-Identifier: MIT OR Apache-2.0
//! Throwaway network namespaces for the kernel tests and benches.
//!
//! [`ScratchNs::new`] makes a named namespace (`ip netns add`), brings loopback
//! up and loads nftables rules using `ct state`, so conntrack tracks its
//! traffic; dropping it deletes the namespace, also when the test or bench
//! panics. Setup failures panic with the failing command's output: with root,
//! a missing tool is a test failure, not a skip.
//!
//! `doctor --demo` has a namespace of its own (`examples/doctor.rs`): a shipped
//! tool does not build on test code, and it needs what these do not give, an
//! `unshare`d namespace tied to the process (gone even after `kill -9`) and
//! errors as messages for an operator rather than panics.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::netns::NetnsFile;
use crate::{Conntrack, Netns};

/// True when the effective uid is 0 (namespaces and ctnetlink need root).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("Uid:"))
                .and_then(|line| line.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Runs a command and returns its output; panics with that output if it
/// cannot start or fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Deletes the `ctrs-<tag>-<pid>-<n>` namespaces of processes that are gone.
fn remove_orphaned() {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with("ctrs-") {
            continue;
        }
        let mut fields = name.rsplit('-');
        let (Some(n), Some(pid)) = (fields.next(), fields.next()) else {
            continue;
        };
        let (Ok(_), Ok(pid)) = (n.parse::<u32>(), pid.parse::<u32>()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Namespaces made by this process so far: part of every name.
static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A throwaway network namespace with conntrack active, deleted on drop.
#[derive(Debug)]
pub struct ScratchNs {
    /// Its `ip netns` name.
    pub name: String,
}

impl ScratchNs {
    /// Creates `ctrs-<tag>-<pid>-<n>`: loopback up, conntrack armed by an
    /// nftables table `inet ctrs` (new connections accepted on output,
    /// established and related ones on input).
    ///
    /// The first one of a process also deletes the `ctrs-*-<pid>-<n>`
    /// namespaces left by test processes that are gone (killed before their
    /// drop ran): only those whose pid no longer exists, never another
    /// running process's.
    pub fn new(tag: &str) -> ScratchNs {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(remove_orphaned);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ctrs-{tag}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = ScratchNs { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns.nft("add table inet ctrs");
        ns.nft("add chain inet ctrs out { type filter hook output priority 0; }");
        ns.nft("add chain inet ctrs in { type filter hook input priority 0; }");
        ns.nft("add rule inet ctrs out ct state new accept");
        ns.nft("add rule inet ctrs in ct state established,related accept");
        ns
    }

    /// The namespace as a library value.
    pub fn netns(&self) -> Netns {
        Netns::named(&self.name)
    }

    /// The namespace file, to open sockets in it ([`NetnsFile::run`]).
    pub fn file(&self) -> NetnsFile {
        NetnsFile::open(format!("/run/netns/{}", self.name)).expect("open scratch namespace")
    }

    /// A library handle on this namespace's table.
    pub fn conntrack(&self) -> Conntrack {
        Conntrack::open_in(&self.netns()).expect("open conntrack handle in scratch namespace")
    }

    /// Runs a command inside the namespace (`ip netns exec`), panicking on
    /// failure.
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["netns", "exec", &self.name];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Runs one `nft` command (split on whitespace) inside the namespace.
    pub fn nft(&self, command: &str) {
        let mut args = vec!["nft"];
        args.extend(command.split_whitespace());
        self.exec(&args);
    }

    /// Writes a sysctl of this namespace (a path under
    /// `/proc/sys/net/netfilter/`).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&[
            "sh",
            "-c",
            &format!("echo {value} > /proc/sys/net/netfilter/{key}"),
        ]);
    }

    /// Runs `f` on a thread inside the namespace (for sockets and traffic).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        self.file().run(f).expect("enter scratch namespace")
    }

    /// Sends `count` TCP segments with an impossible flag combination
    /// (SYN|FIN|RST) to 127.0.0.1 through a raw socket: conntrack counts each
    /// as `invalid` (current kernels no longer count `found`/`insert` on the
    /// packet path, so this is the counter a test can move).
    pub fn send_invalid_tcp_segments(&self, count: u32) {
        let script = format!(
            "import socket\n\
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)\n\
segment = bytes([0x30, 0x39, 0x00, 0x50]) + bytes(8) + bytes([0x50, 0x07, 0x10, 0x00]) + bytes(4)\n\
for _ in range({count}): s.sendto(segment, ('127.0.0.1', 0))\n"
        );
        self.exec(&["python3", "-c", &script]);
    }

    /// Runs the `conntrack` tool (conntrack-tools) with `args` inside the
    /// namespace and returns its standard output; panics if it fails.
    pub fn conntrack_cli(&self, args: &[&str]) -> String {
        let mut all = vec!["netns", "exec", &self.name, "conntrack"];
        all.extend_from_slice(args);
        let output = Command::new("ip")
            .args(&all)
            .output()
            .expect("run conntrack (apt install conntrack)");
        assert!(
            output.status.success(),
            "conntrack {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 from conntrack")
    }
}

impl Drop for ScratchNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}
