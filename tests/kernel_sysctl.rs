// SPDX-License-Identifier: MIT OR Apache-2.0
//! `conntrack::sysctl` against the real kernel: reads match `/proc/sys` in the
//! current namespace and in throwaway ones, per-namespace writes take effect there,
//! global keys refuse writes from a child namespace with the kernel's real errno and
//! a message naming the rule, capacity numbers come from the real slab, and counter
//! deltas see the `invalid` counter move.
//!
//! Nothing here writes in the host's initial namespace: every write goes to a
//! throwaway namespace, writes of global keys from a child namespace use the
//! current value (so even a misrouted write would change nothing), and the tests
//! that write compare every host value before and after.

mod common;

use std::fs;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use common::ScratchNs;
use conntrack::sysctl::{
    EventsMode, KernelStatsDelta, Key, MemoryModel, Scope, SlabInfo, Sysctl, SysctlRoot, Timeout,
};
use conntrack::{proto, Error, Flow, TcpState};

/// Every host value except the entry count (which moves with host traffic).
fn host_snapshot() -> Vec<(Key, Option<u64>)> {
    let keys: Vec<Key> = Key::all().filter(|k| *k != Key::Count).collect();
    let values = Sysctl::new().read_keys(&keys).expect("read host settings");
    keys.into_iter().zip(values).collect()
}

/// What `cat` shows for a key inside `ns` (`None` if the file does not exist).
fn cat_in(ns: &ScratchNs, key: Key) -> Option<u64> {
    let path = key.path(&SysctlRoot::system());
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", &ns.name, "cat"])
        .arg(&path)
        .output()
        .expect("run cat");
    output.status.success().then(|| {
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("a number")
    })
}

fn read_file(path: &Path) -> Option<u64> {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().parse().expect("a number"))
}

fn all_flows(ns: &ScratchNs) -> Vec<Flow> {
    ns.conntrack()
        .flows()
        .unwrap()
        .collect::<conntrack::Result<_>>()
        .unwrap()
}

#[test]
fn reads_match_proc_sys_in_the_current_namespace() {
    require_root!();
    let sysctl = Sysctl::new();
    let root = SysctlRoot::system();
    for key in Key::all().filter(|k| *k != Key::Count) {
        assert_eq!(
            sysctl.read_optional(key).unwrap(),
            read_file(&key.path(&root)),
            "{key}"
        );
    }
    let settings = sysctl.settings().unwrap();
    assert_eq!(
        settings.initial_namespace,
        Path::new("/proc/sys/net/nf_conntrack_max").exists()
    );
    assert_eq!(
        Some(u64::from(settings.max)),
        read_file(&Key::Max.path(&root))
    );
    assert_eq!(
        settings.hashsize,
        Some(settings.buckets),
        "hashsize is the bucket count"
    );
    let timeouts = sysctl.timeouts().unwrap();
    assert_eq!(timeouts, settings.timeouts);
    for timeout in Timeout::ALL {
        assert_eq!(
            timeouts.seconds(*timeout).map(u64::from),
            read_file(&Key::Timeout(*timeout).path(&root)),
            "{timeout}"
        );
    }
}

#[test]
fn reads_in_a_named_namespace_see_that_namespace() {
    require_root!();
    let host_before = host_snapshot();
    let ns = ScratchNs::new("sysrd");
    ns.sysctl("nf_conntrack_udp_timeout", "77");
    ns.sysctl("nf_conntrack_tcp_timeout_established", "1234");
    ns.sysctl("nf_conntrack_acct", "1");
    let child = Sysctl::in_netns(ns.netns());

    assert_eq!(
        child.timeout(Timeout::Udp).unwrap(),
        Duration::from_secs(77)
    );
    assert_eq!(
        child.timeout(Timeout::TcpEstablished).unwrap(),
        Duration::from_secs(1234)
    );
    assert!(child.acct().unwrap());
    // Every key the way `cat` inside the namespace shows it.
    let keys: Vec<Key> = Key::all().filter(|k| *k != Key::Count).collect();
    let values = child.read_keys(&keys).unwrap();
    for (key, value) in keys.iter().zip(&values) {
        assert_eq!(*value, cat_in(&ns, *key), "{key}");
    }
    let settings = child.settings().unwrap();
    assert!(!settings.initial_namespace);
    assert!(!child.is_initial_namespace().unwrap());
    assert_eq!(settings.timeouts.seconds(Timeout::Udp), Some(77));
    assert_eq!(settings.count, 0, "a fresh namespace holds nothing yet");
    // Global keys read the same everywhere.
    let host = Sysctl::new().settings().unwrap();
    assert_eq!((settings.max, settings.buckets), (host.max, host.buckets));
    // The host's own values did not move.
    assert_ne!(host.timeouts.seconds(Timeout::Udp), Some(77));
    assert_eq!(host_snapshot(), host_before);
}

#[test]
fn per_namespace_writes_take_effect_and_read_back() {
    require_root!();
    let host_before = host_snapshot();
    let ns = ScratchNs::new("syswr");
    let child = Sysctl::in_netns(ns.netns());

    child.set_acct(true).unwrap();
    child.set_timestamp(true).unwrap();
    child.set_events(EventsMode::On).unwrap();
    child.set_tcp_be_liberal(true).unwrap();
    child.set_tcp_loose(false).unwrap();
    let timeouts: Vec<(Key, u64)> = Timeout::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| (Key::Timeout(*t), 1000 + i as u64))
        .collect();
    child.write_keys(&timeouts).unwrap();

    assert!(child.acct().unwrap() && child.timestamp().unwrap());
    assert_eq!(child.events().unwrap(), EventsMode::On);
    assert!(child.tcp_be_liberal().unwrap() && !child.tcp_loose().unwrap());
    let read = child.timeouts().unwrap();
    for (key, value) in &timeouts {
        let Key::Timeout(timeout) = key else {
            unreachable!()
        };
        assert_eq!(read.seconds(*timeout).map(u64::from), Some(*value));
        assert_eq!(cat_in(&ns, *key), Some(*value), "the kernel holds {key}");
    }
    assert_eq!(cat_in(&ns, Key::Acct), Some(1));

    // The kernel applies them: a new UDP flow gets the namespace's udp_timeout.
    child
        .set_timeout(Timeout::Udp, Duration::from_secs(17))
        .unwrap();
    ns.run(|| {
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"x", "127.0.0.1:9")
            .unwrap();
    });
    let flows = all_flows(&ns);
    let udp = flows
        .iter()
        .find(|f| f.protocol() == proto::UDP && f.orig.dst_port() == Some(9))
        .expect("UDP flow to port 9");
    let remaining = udp.timeout.unwrap();
    assert!((10..=17).contains(&remaining), "remaining {remaining}");
    assert!(
        udp.counters_orig.is_some(),
        "acct=1 puts counters on new flows"
    );

    // The kernel's real errors, not sysctl(8)'s.
    let err = child.write(Key::Events, 3).unwrap_err();
    assert!(matches!(err, Error::Sysctl { .. }), "{err}");
    assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
    assert!(err.to_string().contains("out of range"), "{err}");
    assert_eq!(child.events().unwrap(), EventsMode::On, "unchanged");
    let err = child.write(Key::Count, 5).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EACCES), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");

    assert_eq!(host_snapshot(), host_before);
}

#[test]
fn global_keys_refuse_writes_from_a_child_namespace() {
    require_root!();
    let host = Sysctl::new();
    let host_before = host_snapshot();
    let ns = ScratchNs::new("sysglob");
    // Guard: before 6.3 a child namespace could write the global value. Refuse to
    // test on such a kernel rather than risk changing the host.
    let mode = ns.exec(&[
        "stat",
        "-c",
        "%a",
        "/proc/sys/net/netfilter/nf_conntrack_max",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&mode.stdout).trim(),
        "444",
        "this kernel lets child namespaces write nf_conntrack_max (< 6.3)"
    );
    let child = Sysctl::in_netns(ns.netns());
    assert_eq!(Key::Max.scope(), Scope::Global);

    // Same values as the host's: even if a write got through, nothing would change.
    let max = host.max().unwrap();
    let err = child.set_max(max).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SysctlGlobalOnly {
                key: "nf_conntrack_max",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), Some(libc::EACCES));
    assert!(
        err.to_string().starts_with(
            "nf_conntrack_max is global: writable only from the initial network namespace"
        ),
        "{err}"
    );
    assert!(err.to_string().contains("Permission denied"), "{err}");

    let buckets = host.buckets().unwrap();
    let err = child.set_buckets(buckets).unwrap_err();
    assert!(matches!(err, Error::SysctlGlobalOnly { .. }), "{err}");
    assert_eq!(err.errno(), Some(libc::EACCES));

    let err = child.set_hashsize(buckets).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SysctlGlobalOnly {
                key: "hashsize",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.errno(), Some(libc::EOPNOTSUPP));
    assert!(
        err.to_string()
            .starts_with("hashsize is global: writable only from the initial network namespace"),
        "{err}"
    );

    assert_eq!(host.max().unwrap(), max);
    assert_eq!(child.max().unwrap(), max);
    assert_eq!(host.buckets().unwrap(), buckets);
    assert_eq!(host_snapshot(), host_before);
}

#[test]
fn idle_time_of_a_real_flow_from_the_namespace_timeouts() {
    require_root!();
    let ns = ScratchNs::new("sysidle");
    let child = Sysctl::in_netns(ns.netns());
    child
        .set_timeout(Timeout::TcpEstablished, Duration::from_secs(5000))
        .unwrap();
    let (client, server, port) = ns.run(|| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server, port)
    });
    std::thread::sleep(Duration::from_millis(2100));
    let timeouts = child.timeouts().unwrap();
    let flows = all_flows(&ns);
    let tcp = flows
        .iter()
        .find(|f| f.protocol() == proto::TCP && f.orig.dst_port() == Some(port))
        .expect("TCP flow");
    assert_eq!(tcp.tcp_state(), Some(TcpState::Established));
    assert_eq!(timeouts.for_flow(tcp), Some(Duration::from_secs(5000)));
    let idle = timeouts
        .idle(tcp)
        .expect("remaining > 300 s: the state timeout is armed");
    assert!(
        (2..=4).contains(&idle.as_secs()),
        "idle {idle:?}, remaining {:?}",
        tcp.timeout
    );
    drop((client, server));
}

#[test]
fn capacity_from_the_real_slab() {
    require_root!();
    let slab = SlabInfo::read(&SysctlRoot::system()).unwrap();
    let slab_dir = Path::new("/sys/kernel/slab/nf_conntrack");
    if let Some(size) = read_file(&slab_dir.join("slab_size")) {
        assert_eq!(slab.entry_bytes(), size);
    }
    assert!(slab.entry_bytes() >= slab.object_size.unwrap_or(0));
    assert!(slab.objects.is_some());

    let ns = ScratchNs::new("syscap");
    let child = Sysctl::in_netns(ns.netns());
    let capacity = child.capacity().unwrap();
    let settings = child.settings().unwrap();
    assert_eq!(capacity.max, u64::from(settings.max));
    assert_eq!(capacity.buckets, u64::from(settings.buckets));
    assert_eq!(capacity.hash_table_bytes(), capacity.buckets * 8);
    assert_eq!(
        capacity.at_max_bytes(),
        capacity.max * capacity.model.per_entry_bytes() + capacity.buckets * 8
    );
    // events=2 and no acct/timestamp in a fresh namespace: no extension area assumed.
    assert_eq!(capacity.model, MemoryModel::from_slab(&slab, false));
    child.set_acct(true).unwrap();
    assert_eq!(child.capacity().unwrap().model.extension_bytes, 128);

    let recommendation = capacity.recommend(256 << 20, 4.0).unwrap();
    assert!(recommendation.pinned_bytes <= 256 << 20);
    assert!(recommendation.chain_depth <= 4.0);
    assert_eq!(recommendation.buckets % 512, 0);
}

#[test]
fn counter_deltas_see_invalid_packets() {
    require_root!();
    let ns = ScratchNs::new("sysdrop");
    let mut ct = ns.conntrack();
    let before = ct.kernel_stats().unwrap();
    // TCP segments with an impossible flag combination (SYN|FIN|RST) are INVALID.
    ns.send_invalid_tcp_segments(5);
    let after = ct.kernel_stats().unwrap();
    let delta = KernelStatsDelta::between(&before, &after);
    let invalid = delta.get(conntrack::sysctl::Counter::Invalid).unwrap();
    assert!(invalid >= 5, "invalid moved by {invalid}: {delta:?}");
    assert_eq!(
        invalid,
        after.total.invalid.unwrap() - before.total.invalid.unwrap(),
        "no wrap here: the wrap-aware delta equals the plain one"
    );
    assert_eq!(delta.get(conntrack::sysctl::Counter::Drop), Some(0));
    assert!(!delta.table_full());
    let readings = delta.readings();
    assert!(
        readings[0].starts_with(&format!("{invalid} packets conntrack could not track")),
        "{readings:?}"
    );
}
