// SPDX-License-Identifier: MIT OR Apache-2.0
//! Shared harness for kernel tests: throwaway network namespaces.
//!
//! Each test makes its own namespace (`ip netns add`), brings loopback up and
//! loads an nftables rule using `ct state` so conntrack tracks its traffic.
//! [`TestNs`] deletes the namespace when dropped, also when the test panics.
//! Without root the kernel tests skip with a one-line reason ([`require_root!`]);
//! with root, a missing tool or a failing setup is a test failure.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use conntrack::netns::NetnsFile;
use conntrack::sysctl::{Sysctl, Timeout};
use conntrack::{Conntrack, FlowSpec, Netns, Status, TcpState, Tuple};

/// Skips the calling test (returns) unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::common::is_root() {
            eprintln!("skipped: kernel test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces");
            return;
        }
    };
}

/// True when the effective uid is 0.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The binary of example `name`, built once per test process with the cargo
/// that runs the tests (same profile and target directory): `cargo test
/// --test X` does not build examples by itself.
pub fn example_binary(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf();
    let path = profile_dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        built.push(name.to_owned());
        let cargo = std::env::var_os("CARGO");
        let profile = profile_dir.file_name().and_then(|n| n.to_str());
        if let (Some(cargo), Some(profile)) = (cargo, profile) {
            let profile = if profile == "debug" { "dev" } else { profile };
            let status = Command::new(cargo)
                .args(["build", "--quiet", "-p", "conntrack-rs", "--example", name])
                .args(["--profile", profile])
                .arg("--target-dir")
                .arg(profile_dir.parent().expect("target directory"))
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status();
            if !matches!(status, Ok(s) if s.success()) {
                eprintln!("warning: `cargo build --example {name}` failed: {status:?}");
            }
        }
    }
    assert!(
        path.is_file(),
        "{} is missing: build it with `cargo build -p conntrack-rs --example {name}`",
        path.display()
    );
    path
}

/// Runs example `name` with `args`, asserting success; returns its stdout.
pub fn run_example(name: &str, args: &[&str]) -> String {
    let output = Command::new(example_binary(name))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run the {name} example: {e}"));
    assert!(
        output.status.success(),
        "{name} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 from an example")
}

/// Runs a command and panics with its output if it fails.
pub fn run(program: &str, args: &[&str]) -> Output {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program} (is it installed?): {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A throwaway network namespace with conntrack active.
pub struct TestNs {
    /// Its `ip netns` name.
    pub name: String,
}

impl TestNs {
    /// Creates `ctrs-<tag>-<pid>-<n>`, loopback up, conntrack armed by nftables.
    pub fn new(tag: &str) -> TestNs {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("ctrs-{tag}-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &name]);
        let ns = TestNs { name };
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

    /// A handle on this namespace's table.
    pub fn conntrack(&self) -> Conntrack {
        Conntrack::open_in(&self.netns()).expect("open conntrack handle in test namespace")
    }

    /// Runs a command inside the namespace (`ip netns exec`), panicking on failure.
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

    /// Writes a sysctl of this namespace (path under /proc/sys/net/netfilter/).
    pub fn sysctl(&self, key: &str, value: &str) {
        self.exec(&[
            "sh",
            "-c",
            &format!("echo {value} > /proc/sys/net/netfilter/{key}"),
        ]);
    }

    /// Runs `f` on a thread inside the namespace (for sockets and traffic).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        NetnsFile::open(format!("/run/netns/{}", self.name))
            .expect("open test namespace")
            .run(f)
            .expect("enter test namespace")
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

    /// `conntrack -L -o extended,id` output lines in this namespace.
    pub fn conntrack_cli(&self, args: &[&str]) -> String {
        let mut full = vec!["conntrack"];
        full.extend_from_slice(args);
        let mut all = vec!["netns", "exec", &self.name];
        all.extend_from_slice(&full);
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

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn addr4(a: u8, b: u8, c: u8, d: u8) -> std::net::IpAddr {
    std::net::IpAddr::from([a, b, c, d])
}

/// A known load for report tests (doctor, exporter): 650 flows.
/// - 300 TCP ESTABLISHED from 10.9.0.1 to 198.51.100.1:443 (idle under a minute);
/// - 200 replied UDP from 10.9.0.2 to 192.0.2.53:53;
/// - 100 TCP SYN_SENT from 10.9.1.1-100 to 198.51.100.2:22;
/// - 20 TCP ESTABLISHED from 10.9.2.1-20 to 192.0.2.10:5432, idle 2 h: orphans;
/// - 30 ICMP echo requests from 10.9.3.1-30 to 192.0.2.1.
pub fn known_load(ns: &TestNs) {
    let mut ct = ns.conntrack();
    let established: u32 = Sysctl::in_netns(ns.netns())
        .timeouts()
        .unwrap()
        .seconds(Timeout::TcpEstablished)
        .unwrap();
    let replied = Status::SEEN_REPLY | Status::ASSURED;
    let mut specs = Vec::new();
    for i in 0..300u16 {
        specs.push(
            FlowSpec::new(Tuple::tcp(
                (addr4(10, 9, 0, 1), 1000 + i),
                (addr4(198, 51, 100, 1), 443),
            ))
            .tcp_state(TcpState::Established)
            .status(replied)
            .timeout(established - u32::from(i % 60)),
        );
    }
    for i in 0..200u16 {
        specs.push(
            FlowSpec::new(Tuple::udp(
                (addr4(10, 9, 0, 2), 2000 + i),
                (addr4(192, 0, 2, 53), 53),
            ))
            .status(replied)
            .timeout(100),
        );
    }
    for i in 1..=100u8 {
        specs.push(
            FlowSpec::new(Tuple::tcp(
                (addr4(10, 9, 1, i), 40000),
                (addr4(198, 51, 100, 2), 22),
            ))
            .tcp_state(TcpState::SynSent)
            .timeout(100),
        );
    }
    for i in 1..=20u8 {
        specs.push(
            FlowSpec::new(Tuple::tcp(
                (addr4(10, 9, 2, i), 50000),
                (addr4(192, 0, 2, 10), 5432),
            ))
            .tcp_state(TcpState::Established)
            .status(replied)
            .timeout(established - 7200),
        );
    }
    for i in 1..=30u8 {
        specs.push(
            FlowSpec::new(Tuple::icmp(
                addr4(10, 9, 3, i),
                addr4(192, 0, 2, 1),
                7,
                8,
                0,
            ))
            .timeout(25),
        );
    }
    for spec in &specs {
        ct.create(spec)
            .unwrap_or_else(|e| panic!("create {spec:?}: {e}"));
    }
}

/// Runs test `probe` of the calling test binary as nobody without capabilities
/// (`setpriv`), with `CTRS_UNPRIVILEGED_PROBE` set, and returns the `PROBE-...`
/// line it printed. The probe is an `#[ignore]`d test that does nothing unless
/// that variable is set.
pub fn run_unprivileged_probe(probe: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&exe)
        .args(["--exact", probe, "--ignored", "--nocapture"])
        .env("CTRS_UNPRIVILEGED_PROBE", "1")
        .output()
        .expect("setpriv (util-linux) runs the probe");
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .find(|l| l.starts_with("PROBE-"))
        .unwrap_or_else(|| {
            panic!(
                "probe printed nothing: {stdout} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        })
        .to_owned()
}

/// A small deterministic PRNG (xorshift64*), so that a randomized test's
/// failure names its seed and round and reproduces.
pub struct Rng(pub u64);

#[allow(dead_code)] // each test binary takes the part it needs
impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// True `percent` % of the time.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// One of `items`.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// `SO_LINGER {1, 0}`: closing the socket sends an RST instead of a FIN, as
/// the kernel does for a killed process with unread data.
pub fn reset_on_close(stream: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a properly sized, initialised option value.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}
