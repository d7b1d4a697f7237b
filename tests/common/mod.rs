// SPDX-License-Identifier: MIT OR Apache-2.0
//! Shared harness for kernel tests.
//!
//! Each test makes its own throwaway namespace, a [`ScratchNs`]
//! (`conntrack::testing::scratch`, shared with the benches): `ip netns add`,
//! loopback up, an nftables rule using `ct state` so conntrack tracks its
//! traffic, deleted when dropped, also when the test panics. Without root the
//! kernel tests skip with a one-line reason ([`require_root!`]); with root, a
//! missing tool or a failing setup is a test failure. Here live the helpers
//! only tests use: running examples, a known load, probes, a PRNG.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::process::Command;

use conntrack::sysctl::{Sysctl, Timeout};
use conntrack::testing::scratch::run;
#[allow(unused_imports)] // not every test binary makes a namespace
pub use conntrack::testing::scratch::ScratchNs;
use conntrack::{proto, FlowSpec, Labels, ProtoInfo, SctpInfo, SctpState, Status, TcpState, Tuple};

/// Skips the calling test (returns) unless running as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !conntrack::testing::scratch::is_root() {
            eprintln!("skipped: kernel test needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces");
            return;
        }
    };
}

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
    let binary = example_binary(name);
    let output = run(binary.to_str().expect("a UTF-8 target directory"), args);
    String::from_utf8(output.stdout).expect("utf-8 from an example")
}

/// What a tool run said: its exit code, stdout and stderr.
pub struct ToolRun {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs example `name` with `--netns NS` and `args`, whatever its exit status.
pub fn run_tool_in(ns: &ScratchNs, name: &str, args: &[&str]) -> ToolRun {
    let output = std::process::Command::new(example_binary(name))
        .args(["--netns", &ns.name])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run the {name} example: {e}"));
    ToolRun {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A known load for report tests (doctor, exporter): 650 flows.
/// - 300 TCP ESTABLISHED from 10.9.0.1 to 198.51.100.1:443 (idle under a minute);
/// - 200 replied UDP from 10.9.0.2 to 192.0.2.53:53;
/// - 100 TCP SYN_SENT from 10.9.1.1-100 to 198.51.100.2:22;
/// - 20 TCP ESTABLISHED from 10.9.2.1-20 to 192.0.2.10:5432, idle 2 h: orphans;
/// - 30 ICMP echo requests from 10.9.3.1-30 to 192.0.2.1.
pub fn known_load(ns: &ScratchNs) {
    let mut ct = ns.conntrack();
    let established = established_timeout(ns);
    let replied = Status::SEEN_REPLY | Status::ASSURED;
    let mut specs = Vec::new();
    for i in 0..300u16 {
        specs.push(
            FlowSpec::new(Tuple::tcp(
                (v4(10, 9, 0, 1), 1000 + i),
                (v4(198, 51, 100, 1), 443),
            ))
            .tcp_state(TcpState::Established)
            .status(replied)
            .timeout(established - u32::from(i % 60)),
        );
    }
    for i in 0..200u16 {
        specs.push(
            FlowSpec::new(Tuple::udp(
                (v4(10, 9, 0, 2), 2000 + i),
                (v4(192, 0, 2, 53), 53),
            ))
            .status(replied)
            .timeout(100),
        );
    }
    for i in 1..=100u8 {
        specs.push(
            FlowSpec::new(Tuple::tcp(
                (v4(10, 9, 1, i), 40000),
                (v4(198, 51, 100, 2), 22),
            ))
            .tcp_state(TcpState::SynSent)
            .timeout(100),
        );
    }
    for i in 1..=20u8 {
        specs.push(
            FlowSpec::new(Tuple::tcp(
                (v4(10, 9, 2, i), 50000),
                (v4(192, 0, 2, 10), 5432),
            ))
            .tcp_state(TcpState::Established)
            .status(replied)
            .timeout(established - 7200),
        );
    }
    for i in 1..=30u8 {
        specs.push(
            FlowSpec::new(Tuple::icmp(v4(10, 9, 3, i), v4(192, 0, 2, 1), 7, 8, 0)).timeout(25),
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

/// Runs `conntrack ARGS` in `ns` as if `/etc/xtables/connlabel.conf` (the
/// only file conntrack-tools reads names from) held `dir/connlabel.conf`,
/// without touching the host's `/etc`: in a private mount namespace
/// (`unshare --mount --propagation private`, gone when the command ends),
/// `/etc` becomes an overlay whose upper layer is `dir` or, with
/// `overlay: false` (or where overlayfs is missing), a tmpfs of symlinks to
/// the real entries. Either way the file appears there only. The command
/// is returned unstarted (to wait for it or to spawn a listener).
pub fn conntrack_with_connlabel_conf(
    ns: &ScratchNs,
    dir: &std::path::Path,
    overlay: bool,
    args: &[&str],
) -> Command {
    const SCRIPT: &str = r#"set -eu
dir=$1 netns=$2 overlay=$3
shift 3
mkdir -p "$dir/upper/xtables" "$dir/work" "$dir/real"
cp "$dir/connlabel.conf" "$dir/upper/xtables/connlabel.conf"
if [ "$overlay" = yes ] && mount -t overlay overlay \
    -o "lowerdir=/etc,upperdir=$dir/upper,workdir=$dir/work" /etc 2>/dev/null; then
  :
else
  mount --bind /etc "$dir/real"
  mount -t tmpfs ctrs-etc /etc
  for entry in "$dir"/real/* "$dir"/real/.[!.]*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue
    [ "${entry##*/}" = xtables ] && continue
    ln -s "$entry" /etc/
  done
  mkdir /etc/xtables
  cp "$dir/connlabel.conf" /etc/xtables/connlabel.conf
fi
exec nsenter "--net=/run/netns/$netns" conntrack "$@"
"#;
    let dir_text = dir.to_str().expect("a UTF-8 temporary directory");
    let mode = if overlay { "yes" } else { "no" };
    let mut command = Command::new("unshare");
    command
        .args(["--mount", "--propagation", "private", "sh", "-c", SCRIPT])
        .args(["sh", dir_text, &ns.name, mode])
        .args(args);
    command
}

/// `a.b.c.d`.
pub fn v4(a: u8, b: u8, c: u8, d: u8) -> std::net::IpAddr {
    std::net::IpAddr::from([a, b, c, d])
}

/// `2001:db8::<last>` (documentation prefix).
pub fn v6(last: u16) -> std::net::IpAddr {
    std::net::IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last))
}

/// One spec of every kind the kernel tracks, with the protoinfo each needs
/// (the generic IPv4 flow has labels: its namespace needs label space).
pub fn every_kind() -> Vec<FlowSpec> {
    let sctp_info = ProtoInfo::Sctp(SctpInfo {
        state: Some(SctpState::Established),
        vtag_orig: Some(0x1111_2222),
        vtag_reply: Some(0x3333_4444),
    });
    vec![
        FlowSpec::new(Tuple::tcp((v4(10, 0, 0, 1), 1111), (v4(10, 0, 0, 2), 80)))
            .timeout(3600)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .mark(0x42),
        FlowSpec::new(Tuple::tcp((v6(1), 2222), (v6(2), 443)))
            .timeout(120)
            .tcp_state(TcpState::SynSent),
        FlowSpec::new(Tuple::udp((v4(10, 0, 0, 1), 5353), (v4(10, 0, 0, 3), 53))).timeout(30),
        FlowSpec::new(Tuple::udp((v6(1), 5353), (v6(3), 53)))
            .timeout(90)
            .status(Status::SEEN_REPLY)
            .zone(7),
        FlowSpec::new(Tuple::ports(
            proto::UDPLITE,
            v4(10, 0, 0, 1),
            7000,
            v4(10, 0, 0, 4),
            7001,
        ))
        .timeout(60),
        FlowSpec::new(Tuple::icmp(v4(10, 0, 0, 1), v4(10, 0, 0, 5), 77, 8, 0)).timeout(30),
        FlowSpec::new(Tuple::icmp(v6(1), v6(5), 78, 128, 0)).timeout(30),
        FlowSpec::new(Tuple::ports(
            proto::SCTP,
            v4(10, 0, 0, 1),
            3868,
            v4(10, 0, 0, 6),
            3868,
        ))
        .timeout(210)
        .protoinfo(sctp_info),
        FlowSpec::new(Tuple::ports(
            proto::GRE,
            v4(10, 0, 0, 1),
            0,
            v4(10, 0, 0, 7),
            0,
        ))
        .timeout(180),
        FlowSpec::new(Tuple::generic(253, v4(10, 0, 0, 1), v4(10, 0, 0, 8)))
            .timeout(600)
            .labels(Labels::default().with(1).with(70)),
        FlowSpec::new(Tuple::generic(253, v6(1), v6(8)))
            .timeout(600)
            .zone(9)
            .mark(0xffff_ffff),
    ]
}

/// One request/response round on a connection (client side `a`, server side `b`).
pub fn ping(a: &mut std::net::TcpStream, b: &mut std::net::TcpStream) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 4];
    a.write_all(b"ping").expect("send ping");
    b.read_exact(&mut buf).expect("receive ping");
    b.write_all(b"pong").expect("send pong");
    a.read_exact(&mut buf).expect("receive pong");
    assert_eq!(&buf, b"pong");
}

/// An established TCP flow `orig` (to port 21) with the FTP helper: a master
/// that accepts expectations.
pub fn ftp_master(orig: Tuple) -> FlowSpec {
    FlowSpec::new(orig)
        .timeout(600)
        .tcp_state(TcpState::Established)
        .status(Status::SEEN_REPLY | Status::ASSURED)
        .helper("ftp")
}

/// FIN and RST of TCP port `port` never reach conntrack in `ns`, in either
/// direction: dropped at output priority -300 (before conntrack's -200) by
/// two counting rules of a chain `early`.
pub fn drop_fin_rst(ns: &ScratchNs, port: u16) {
    ns.exec(&[
        "nft",
        "add chain inet ctrs early { type filter hook output priority -300 ; }",
    ]);
    for side in ["dport", "sport"] {
        ns.exec(&[
            "nft",
            &format!("add rule inet ctrs early tcp {side} {port} tcp flags & (fin|rst) != 0 counter drop"),
        ]);
    }
}

/// Orphan thresholds for `gc` (idle ESTABLISHED, unreplied, half-closed)
/// that the orphan tables of the kernel tests are built around.
pub const GC_ORPHAN_THRESHOLDS: [&str; 7] = [
    "--orphans",
    "--idle",
    "100",
    "--unreplied",
    "100",
    "--half-closed",
    "60",
];

/// The namespace's `nf_conntrack_tcp_timeout_established`, in seconds: flows
/// made "idle for N s" get this minus N as their timeout.
pub fn established_timeout(ns: &ScratchNs) -> u32 {
    Sysctl::in_netns(ns.netns())
        .timeouts()
        .unwrap()
        .seconds(Timeout::TcpEstablished)
        .unwrap()
}
