// SPDX-License-Identifier: MIT OR Apache-2.0
//! Which kernel-side filters the running kernel gets right, found by experiment.
//!
//! [`KernelFeatures::probe`] never trusts the absence of an error (old
//! kernels silently ignore filters they do not know, docs/ctnetlink.md §12
//! trap 7): on a helper thread it enters a brand-new, empty network namespace
//! (`unshare(CLONE_NEWNET)`), creates a few flows there, and checks which
//! filtered dumps and filtered flushes return or delete exactly the expected
//! ones. Nothing outside that private namespace is touched; the namespace
//! disappears with the thread. The result is cached for the process and, in
//! `/run/conntrack-rs/kernel-features`, for the boot (believed only when no
//! one but root or this user can have written it). Without `CAP_SYS_ADMIN`
//! the probe cannot run and every feature is assumed absent except mark/mask
//! (which every supported kernel has), so filters are evaluated in userspace:
//! slower, never wrong.

#![allow(unsafe_code)] // unshare(2) for the private probe namespace, geteuid(2)

use std::net::IpAddr;
use std::path::Path;
use std::sync::OnceLock;

use crate::conntrack::Conntrack;
use crate::consts::*;
use crate::flow::{proto, TcpState, Tuple};
use crate::pushdown::{
    KernelFeatures, Pushdown, TupleFilter, CTA_FILTER_F_CTA_IP_SRC,
    CTA_FILTER_F_CTA_PROTO_DST_PORT, CTA_FILTER_F_CTA_PROTO_NUM,
};
use crate::request::FlowSpec;
use crate::status::Status;

static DUMP_FEATURES: OnceLock<KernelFeatures> = OnceLock::new();
static ALL_FEATURES: OnceLock<KernelFeatures> = OnceLock::new();

impl KernelFeatures {
    /// Probes the running kernel once per process (see the module docs) and
    /// returns the cached answer afterwards.
    pub fn probe() -> KernelFeatures {
        *ALL_FEATURES.get_or_init(|| run_probe(true))
    }

    /// Probes now, bypassing the process and per-boot caches (for tests).
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn probe_uncached() -> Option<KernelFeatures> {
        std::thread::spawn(|| probe_in_private_namespace(true))
            .join()
            .ok()
            .flatten()
    }

    /// Probes only the dump filters (cheaper: no flushes); the flush fields
    /// are those of [`KernelFeatures::conservative`] unless a full probe ran.
    pub fn probe_dump() -> KernelFeatures {
        if let Some(all) = ALL_FEATURES.get() {
            return *all;
        }
        *DUMP_FEATURES.get_or_init(|| run_probe(false))
    }
}

fn run_probe(flush: bool) -> KernelFeatures {
    probe_with_cache(Path::new(CACHE_PATH), flush)
}

/// The features of this kernel: from the per-boot cache at `cache` when it
/// is [`trusted`] and was written by this boot and kernel (with the flush
/// fields when `flush`), else probed now and written there. The library
/// always passes [`CACHE_PATH`]; tests pass a private one.
fn probe_with_cache(cache: &Path, flush: bool) -> KernelFeatures {
    let identity = boot_identity();
    if let Some(cached) = identity
        .as_deref()
        .and_then(|id| read_cache(cache, id, flush))
    {
        return cached;
    }
    let probed = std::thread::spawn(move || probe_in_private_namespace(flush))
        .join()
        .ok()
        .flatten();
    match probed {
        Some(features) => {
            if let Some(id) = identity {
                write_cache_at(cache, &cache_line(&id, flush, &features));
            }
            features
        }
        None => KernelFeatures::conservative(),
    }
}

/// Where probe results are kept for the rest of the boot (`/run` is emptied at
/// boot; the kernel cannot change without one). A probe walks the host's whole
/// table about a dozen times, too much to repeat in every short-lived process.
const CACHE_PATH: &str = "/run/conntrack-rs/kernel-features";

/// This boot and kernel: `boot_id` and `osrelease`.
fn boot_identity() -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    Some(format!("{} {}", boot.trim(), release.trim()))
}

fn flags_of(f: &KernelFeatures) -> [bool; 8] {
    [
        f.dump_mark,
        f.dump_status,
        f.dump_zone,
        f.dump_tuple,
        f.flush_mark,
        f.flush_status,
        f.flush_zone,
        f.flush_tuple,
    ]
}

/// Cache format, one line: `v1 <flush probed 0|1> <8 flags as 0|1> <identity>`.
fn read_cache(path: &Path, identity: &str, need_flush: bool) -> Option<KernelFeatures> {
    parse_cache(&read_trusted(path)?, identity, need_flush)
}

/// Whether a cache file or its directory can only have been written by root
/// or by the user running this process: owned by one of them, writable by
/// nobody else, and of the expected kind (no symbolic link).
///
/// The cache decides whether a filtered flush is exact, i.e. whether a
/// delete can widen: a file planted by a less privileged writer (a service or
/// a container sharing `/run`) must never be believed.
fn trusted(meta: &std::fs::Metadata, directory: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let kind = if directory {
        meta.file_type().is_dir()
    } else {
        meta.file_type().is_file()
    };
    kind && (meta.uid() == 0 || meta.uid() == me) && meta.mode() & 0o022 == 0
}

/// The cache's text, when the file and its directory are [`trusted`]. The
/// file's own metadata is read from the opened file (`O_NOFOLLOW`), so it
/// cannot be swapped between the check and the read.
fn read_trusted(path: &Path) -> Option<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let directory = path.parent()?;
    if !trusted(&std::fs::symlink_metadata(directory).ok()?, true) {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !trusted(&file.metadata().ok()?, false) {
        return None;
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).ok()?;
    Some(text)
}

fn parse_cache(text: &str, identity: &str, need_flush: bool) -> Option<KernelFeatures> {
    let mut fields = text.trim_end().splitn(4, ' ');
    if fields.next()? != "v1" {
        return None;
    }
    let has_flush = fields.next()? == "1";
    let bits: Vec<bool> = fields.next()?.chars().map(|c| c == '1').collect();
    if fields.next()? != identity || bits.len() != 8 || (need_flush && !has_flush) {
        return None;
    }
    Some(KernelFeatures {
        probed: true,
        dump_mark: bits[0],
        dump_status: bits[1],
        dump_zone: bits[2],
        dump_tuple: bits[3],
        flush_mark: bits[4],
        flush_status: bits[5],
        flush_zone: bits[6],
        flush_tuple: bits[7],
    })
}

/// The cache line of `features`, probed with flushes when `flush`.
fn cache_line(identity: &str, flush: bool, features: &KernelFeatures) -> String {
    let bits: String = flags_of(features)
        .iter()
        .map(|&b| if b { '1' } else { '0' })
        .collect();
    format!("v1 {} {bits} {identity}\n", u8::from(flush))
}

/// Writes `line` to `path`: the directory is created `0755` and the file
/// `0644`, so that only their owner can change them; into a directory that
/// is not [`trusted`] nothing is written (readers would ignore it anyway).
/// Best effort: a cache that cannot be written only costs a probe next time.
/// Written to a temporary file and renamed, so readers never see half of it.
fn write_cache_at(path: &Path, line: &str) {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let Some(dir) = path.parent() else { return };
    let _ = std::fs::DirBuilder::new().mode(0o755).create(dir);
    if !std::fs::symlink_metadata(dir).is_ok_and(|meta| trusted(&meta, true)) {
        return;
    }
    let temporary = dir.join(format!(".kernel-features.{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .and_then(|mut file| file.write_all(line.as_bytes()))
        .and_then(|()| std::fs::rename(&temporary, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
}

/// Runs on its own thread: the namespace it creates dies with the thread.
fn probe_in_private_namespace(flush: bool) -> Option<KernelFeatures> {
    // SAFETY: unshare only changes this helper thread's network namespace; the
    // thread ends after the probe, so no other code ever runs in it.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return None;
    }
    let mut ct = Conntrack::open().ok()?;
    let base = probe_flows();
    let ensure = |ct: &mut Conntrack| -> Option<()> {
        for spec in &base {
            match ct.create(spec) {
                Ok(()) => {}
                Err(e) if e.errno() == Some(libc::EEXIST) => {}
                Err(_) => return None,
            }
        }
        Some(())
    };
    ensure(&mut ct)?;
    let marks = |ct: &mut Conntrack, plan: &Pushdown| -> Option<Vec<u32>> {
        let mut marks = Vec::new();
        let mut dump = ct.dump_pushdown(plan).ok()?;
        while let Some(flow) = dump.next_flow() {
            marks.push(flow.ok()?.mark.unwrap_or(0));
        }
        marks.sort();
        Some(marks)
    };
    let mark_plan = Pushdown {
        mark: Some((1, u32::MAX)),
        ..Pushdown::default()
    };
    let status_plan = Pushdown {
        status: Some((Status::ASSURED.bits(), Status::ASSURED.bits())),
        ..Pushdown::default()
    };
    let zone_plan = Pushdown {
        zone: Some(5),
        ..Pushdown::default()
    };
    let tuple_plan = Pushdown {
        family: AF_INET,
        orig: TupleFilter {
            flags: CTA_FILTER_F_CTA_IP_SRC
                | CTA_FILTER_F_CTA_PROTO_NUM
                | CTA_FILTER_F_CTA_PROTO_DST_PORT,
            src: Some([10, 200, 0, 3].into()),
            protocol: Some(proto::UDP),
            dst_port: Some(53),
            ..TupleFilter::default()
        },
        ..Pushdown::default()
    };
    let mut features = KernelFeatures {
        probed: true,
        ..KernelFeatures::default()
    };
    // Base flows carry marks 1 (TCP, assured), 2 (UDP, zone 5), 3 (IPv6).
    features.dump_mark = marks(&mut ct, &mark_plan)? == [1];
    features.dump_status = marks(&mut ct, &status_plan)? == [1];
    features.dump_zone = marks(&mut ct, &zone_plan)? == [2];
    features.dump_tuple = marks(&mut ct, &tuple_plan)? == [2];
    if !flush {
        features.flush_mark = KernelFeatures::conservative().flush_mark;
        return Some(features);
    }
    let mut flush_deletes_exactly = |plan: &Pushdown, victim: u32| -> Option<bool> {
        let ok = ct.flush_pushdown(plan).is_ok()
            && marks(&mut ct, &Pushdown::default())?
                == [1, 2, 3]
                    .into_iter()
                    .filter(|&m| m != victim)
                    .collect::<Vec<_>>();
        ensure(&mut ct)?;
        Some(ok)
    };
    features.flush_mark = features.dump_mark && flush_deletes_exactly(&mark_plan, 1)?;
    features.flush_status = features.dump_status && flush_deletes_exactly(&status_plan, 1)?;
    features.flush_zone = features.dump_zone && flush_deletes_exactly(&zone_plan, 2)?;
    features.flush_tuple = features.dump_tuple && flush_deletes_exactly(&tuple_plan, 2)?;
    Some(features)
}

fn probe_flows() -> Vec<FlowSpec> {
    let v6 = |last: u16| IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last));
    vec![
        FlowSpec::new(Tuple::tcp(([10, 200, 0, 1], 1000), ([10, 200, 0, 2], 80)))
            .timeout(60)
            .tcp_state(TcpState::Established)
            .status(Status::SEEN_REPLY | Status::ASSURED)
            .mark(1),
        FlowSpec::new(Tuple::udp(([10, 200, 0, 3], 2000), ([10, 200, 0, 4], 53)))
            .timeout(60)
            .mark(2)
            .zone(5),
        FlowSpec::new(Tuple::tcp((v6(1), 1000), (v6(2), 80)))
            .timeout(60)
            .tcp_state(TcpState::SynSent)
            .mark(3),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pushdown::tests::all;

    #[test]
    fn the_per_boot_cache_round_trips_and_rejects_other_boots() {
        let mut f = all();
        f.flush_tuple = false;
        f.dump_zone = false;
        let line = cache_line("boot-a 6.18.1", true, &f);
        assert_eq!(parse_cache(&line, "boot-a 6.18.1", true), Some(f));
        assert_eq!(
            parse_cache(&line, "boot-b 6.18.1", false),
            None,
            "another boot"
        );
        let dump_only = cache_line("boot-a 6.18.1", false, &f);
        assert_eq!(
            parse_cache(&dump_only, "boot-a 6.18.1", true),
            None,
            "flush not probed"
        );
        assert!(parse_cache(&dump_only, "boot-a 6.18.1", false).is_some());
        assert_eq!(parse_cache("garbage", "boot-a 6.18.1", false), None);
    }

    /// A private directory under the system temporary directory, removed on drop.
    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::os::unix::fs::DirBuilderExt;
            let path = std::env::temp_dir().join(format!(
                "conntrack-rs-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(&path)
                .unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_cache_anyone_else_could_have_written_is_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let line = cache_line("boot-a 6.18.1", true, &all());
        let root = TempDir::new("cache");
        let dir = root.0.join("conntrack-rs");
        let path = dir.join("kernel-features");
        write_cache_at(&path, &line);
        let text = read_trusted(&path).expect("a cache this process wrote is trusted");
        assert_eq!(parse_cache(&text, "boot-a 6.18.1", true), Some(all()));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir) & 0o022, 0, "directory writable by others");
        assert_eq!(mode(&path) & 0o022, 0, "file writable by others");

        // A file anyone may write: ignored, and so is a directory anyone may write.
        let set_mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        set_mode(&path, 0o666);
        assert_eq!(read_trusted(&path), None, "world-writable file");
        set_mode(&path, 0o664);
        assert_eq!(read_trusted(&path), None, "group-writable file");
        set_mode(&path, 0o644);
        set_mode(&dir, 0o777);
        assert_eq!(read_trusted(&path), None, "world-writable directory");
        write_cache_at(&path, "v1 0 00000000 x\n");
        assert_eq!(
            read_trusted(&path).map(|t| t.contains("boot-a")),
            None,
            "nothing written into an untrusted directory"
        );
        set_mode(&dir, 0o755);
        assert!(read_trusted(&path).is_some());

        // A symbolic link to a trusted file is not followed.
        let link = dir.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(read_trusted(&link), None, "symbolic link");

        // Owned by another (unprivileged) user: ignored. Needs root to chown.
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped the ownership half: changing a file's owner needs root");
            return;
        }
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        assert_eq!(read_trusted(&path), None, "file owned by nobody");
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
        assert_eq!(read_trusted(&path), None, "directory owned by nobody");
        std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
        assert!(read_trusted(&path).is_some());
    }

    /// End to end, through the function the library gets its features with:
    /// a cache claiming the opposite of what this kernel does (a filtered
    /// flush exact where it widens, or broken where it is exact) is believed
    /// when trusted, and ignored for the probe's own answer when its file or
    /// directory is writable by others or owned by another user. Needs root
    /// (the probe's private namespace, `chown`); only a private temporary
    /// directory is written, never `/run/conntrack-rs`.
    #[test]
    fn a_lying_cache_anyone_else_could_have_written_does_not_decide_the_features() {
        use std::os::unix::fs::PermissionsExt;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: probing and changing a file's owner need root");
            return;
        }
        let identity = boot_identity().expect("/proc tells this boot and kernel");
        let probed = std::thread::spawn(|| probe_in_private_namespace(true))
            .join()
            .unwrap()
            .expect("the probe runs as root");
        let lie = KernelFeatures {
            probed: true,
            dump_mark: !probed.dump_mark,
            dump_status: !probed.dump_status,
            dump_zone: !probed.dump_zone,
            dump_tuple: !probed.dump_tuple,
            flush_mark: !probed.flush_mark,
            flush_status: !probed.flush_status,
            flush_zone: !probed.flush_zone,
            flush_tuple: !probed.flush_tuple,
        };
        let lying_line = cache_line(&identity, true, &lie);
        let root = TempDir::new("lying-cache");
        let dir = root.0.join("conntrack-rs");
        let path = dir.join("kernel-features");
        let set_mode = |p: &Path, m: u32| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
        };
        let chown = |p: &Path, uid: u32| std::os::unix::fs::chown(p, Some(uid), Some(uid)).unwrap();
        // The cache as a planter leaves it: the lie, with these modes and owners.
        let plant = |file_mode: u32, file_owner: u32, dir_mode: u32, dir_owner: u32| {
            let _ = std::fs::create_dir(&dir);
            set_mode(&dir, 0o755);
            chown(&dir, 0);
            std::fs::write(&path, &lying_line).unwrap();
            set_mode(&path, file_mode);
            chown(&path, file_owner);
            set_mode(&dir, dir_mode);
            chown(&dir, dir_owner);
        };

        // Trusted (root's, writable by root only): believed. This is what
        // makes the cases below able to fail.
        plant(0o644, 0, 0o755, 0);
        assert_eq!(
            probe_with_cache(&path, true),
            lie,
            "a trusted cache is believed"
        );
        assert_eq!(probe_with_cache(&path, false), lie, "also for dumps only");

        for (case, file_mode, file_owner, dir_mode, dir_owner) in [
            ("group-writable file", 0o664, 0, 0o755, 0),
            ("world-writable file", 0o666, 0, 0o755, 0),
            ("file owned by nobody", 0o644, 65534, 0o755, 0),
            ("group-writable directory", 0o644, 0, 0o775, 0),
            ("world-writable directory", 0o644, 0, 0o777, 0),
            ("directory owned by nobody", 0o644, 0, 0o755, 65534),
        ] {
            plant(file_mode, file_owner, dir_mode, dir_owner);
            assert_eq!(
                probe_with_cache(&path, true),
                probed,
                "{case}: the probe's answer, not the cache's"
            );
            let now = std::fs::read_to_string(&path).unwrap();
            if dir_mode & 0o022 == 0 && dir_owner == 0 {
                // A trusted directory: the lie is replaced by the truth.
                assert_eq!(now, cache_line(&identity, true, &probed), "{case}");
                assert_eq!(probe_with_cache(&path, true), probed, "{case}: rewritten");
            } else {
                // Nothing is written into a directory others control.
                assert_eq!(
                    now, lying_line,
                    "{case}: written into an untrusted directory"
                );
            }
        }
    }
}
