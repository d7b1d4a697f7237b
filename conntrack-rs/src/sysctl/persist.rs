// SPDX-License-Identifier: MIT OR Apache-2.0
//! Persisting settings across reboots, safely.
//!
//! # Files (under the injectable `<etc>`)
//! - `sysctl.d/90-conntrack-rs.conf` ([`DROP_IN_NAME`]): the `net.netfilter` keys. One
//!   drop-in, owned by this library and rewritten as a whole; keys it already holds are
//!   kept when a plan sets others. `/etc/sysctl.conf` is never touched.
//! - `modules-load.d/conntrack-rs.conf` ([`MODULES_LOAD_NAME`]): `nf_conntrack`, so
//!   the module is loaded (by `systemd-modules-load`, which runs before
//!   `systemd-sysctl`) and the `net.netfilter` keys exist when the drop-in is applied
//!   at boot. Without it, a key whose module loads later is silently skipped.
//! - `modprobe.d/conntrack-rs.conf` ([`MODPROBE_NAME`]): `options nf_conntrack
//!   hashsize=N`, so the hash table has its size from the moment the module loads
//!   (no resize, no rehash). Written only when a plan sets [`Key::Hashsize`].
//!
//! # Guarantees
//! - **Atomic**: each file is written to a hidden temporary in the same directory
//!   (`.NAME.tmp-PID-N`, which no `*.conf` reader picks up), fsynced, renamed over the
//!   target, and the directory is fsynced: a reader or a crash sees the old file or
//!   the new one, never a part. Temporaries left by a crashed run are removed.
//! - **Idempotent**: a file whose content is already right is not rewritten
//!   ([`FileOutcome::Unchanged`]); a second run changes nothing.
//! - **Overrides reported**: `systemd-sysctl` and `sysctl --system` read every
//!   `*.conf` of `/etc/sysctl.d`, `/run/sysctl.d`, `/usr/local/lib/sysctl.d`,
//!   `/usr/lib/sysctl.d`, `/lib/sysctl.d` (a name in an earlier directory masks the
//!   same name in later ones), apply them sorted by file name, then `/etc/sysctl.conf`
//!   (procps reads it last; systemd reads it through the `99-sysctl.conf` link). A
//!   later assignment wins, so lines in files that sort after ours, or in
//!   `sysctl.conf`, override the drop-in: they are reported with file and line
//!   ([`OverridingLine`]). The same for `options nf_conntrack hashsize=` in
//!   `modprobe.d` files that sort after ours.
//!
//! Values in `sysctl.d` apply to the initial namespace only: namespaces created later
//! start from the kernel defaults for per-namespace keys.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{Key, SysctlRoot, Timeout};
use crate::error::{Error, Result};

/// The sysctl drop-in's file name, under `<etc>/sysctl.d/`.
pub const DROP_IN_NAME: &str = "90-conntrack-rs.conf";

/// The module-load list's file name, under `<etc>/modules-load.d/`.
pub const MODULES_LOAD_NAME: &str = "conntrack-rs.conf";

/// The module-options file's name, under `<etc>/modprobe.d/`.
pub const MODPROBE_NAME: &str = "conntrack-rs.conf";

const DROP_IN_HEADER: &str = "\
# Conntrack settings, written by conntrack-rs (rewritten as a whole: edit with care).
# modules-load.d/conntrack-rs.conf loads nf_conntrack first, so these keys exist
# when systemd-sysctl (or `sysctl --system`) applies this file at boot.
";

const MODULES_LOAD_CONTENT: &str = "\
# Written by conntrack-rs: load conntrack before sysctl.d is applied at boot,
# so the net.netfilter keys exist.
nf_conntrack
";

const MODPROBE_HEADER: &str = "\
# Written by conntrack-rs: conntrack hash table size (nf_conntrack_buckets),
# applied when the nf_conntrack module loads.
";

/// What to persist: sysctl values and, optionally, the hash size.
///
/// ```no_run
/// use conntrack::sysctl::{Key, PersistPlan, SysctlRoot};
/// # fn main() -> conntrack::Result<()> {
/// let report = PersistPlan::new()
///     .set(Key::Max, 1_048_576)
///     .set(Key::Hashsize, 262_144)
///     .persist(&SysctlRoot::system())?;
/// print!("{report}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PersistPlan {
    sysctls: BTreeMap<Key, u64>,
    hashsize: Option<u64>,
}

impl PersistPlan {
    /// An empty plan (persisting it only ensures the `modules-load.d` entry).
    pub fn new() -> Self {
        PersistPlan::default()
    }

    /// Sets a value; [`Key::Hashsize`] goes to `modprobe.d`, every other key to the
    /// sysctl drop-in. Read-only keys ([`Key::Count`]) are refused when persisting.
    pub fn set(mut self, key: Key, value: u64) -> Self {
        if key == Key::Hashsize {
            self.hashsize = Some(value);
        } else {
            self.sysctls.insert(key, value);
        }
        self
    }

    /// Sets a timeout (whole seconds).
    pub fn set_timeout(self, timeout: Timeout, value: Duration) -> Self {
        self.set(Key::Timeout(timeout), value.as_secs())
    }

    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        self.sysctls.is_empty() && self.hashsize.is_none()
    }

    /// Every value, `hashsize` first, then the sysctls in [`Key`] order.
    pub fn values(&self) -> Vec<(Key, u64)> {
        self.hashsize
            .map(|v| (Key::Hashsize, v))
            .into_iter()
            .chain(self.sysctls.iter().map(|(k, v)| (*k, *v)))
            .collect()
    }

    fn validate(&self) -> Result<()> {
        match self.sysctls.keys().find(|key| !key.is_writable()) {
            Some(key) => Err(Error::InvalidInput(format!(
                "{key} is read-only: it cannot be persisted"
            ))),
            None => Ok(()),
        }
    }

    /// What [`persist`](PersistPlan::persist) would do, without writing anything
    /// ([`PersistReport::dry_run`] is true). The report holds the exact contents.
    pub fn preview(&self, root: &SysctlRoot) -> Result<PersistReport> {
        self.run(root, true)
    }

    /// Writes the files (atomically, only those whose content changes) and reports
    /// what happened and which lines elsewhere override the drop-in.
    pub fn persist(&self, root: &SysctlRoot) -> Result<PersistReport> {
        self.run(root, false)
    }

    fn run(&self, root: &SysctlRoot, dry_run: bool) -> Result<PersistReport> {
        self.validate()?;
        let drop_in_path = root.etc.join("sysctl.d").join(DROP_IN_NAME);
        let modules_path = root.etc.join("modules-load.d").join(MODULES_LOAD_NAME);
        let modprobe_path = root.etc.join("modprobe.d").join(MODPROBE_NAME);

        let existing = read_optional(&drop_in_path)?;
        let mut entries = existing
            .as_deref()
            .map(parse_assignments)
            .unwrap_or_default()
            .into_iter()
            .map(|line| (line.key, line.value))
            .collect::<BTreeMap<String, String>>();
        for (key, value) in &self.sysctls {
            if let Some(name) = key.sysctl_name() {
                entries.insert(name.to_owned(), value.to_string());
            }
        }
        let mut drop_in = String::from(DROP_IN_HEADER);
        for (key, value) in &entries {
            drop_in.push_str(&format!("{key} = {value}\n"));
        }

        let mut wanted = vec![
            (drop_in_path, drop_in),
            (modules_path, MODULES_LOAD_CONTENT.to_owned()),
        ];
        if let Some(hashsize) = self.hashsize {
            wanted.push((
                modprobe_path,
                format!("{MODPROBE_HEADER}options nf_conntrack hashsize={hashsize}\n"),
            ));
        }

        let mut report = PersistReport {
            dry_run,
            ..PersistReport::default()
        };
        for (path, content) in wanted {
            let outcome = match read_optional(&path)? {
                Some(current) if current == content => FileOutcome::Unchanged,
                Some(_) => FileOutcome::Updated,
                None => FileOutcome::Created,
            };
            if !dry_run {
                report
                    .removed_temporary_files
                    .extend(remove_stale_temporaries(&path)?);
                if outcome != FileOutcome::Unchanged {
                    write_atomically(&path, &content)?;
                }
            }
            report.files.push(PersistedFile {
                path,
                outcome,
                content,
            });
        }

        let ours: Vec<(String, String)> = entries.into_iter().collect();
        report.overrides = find_sysctl_overrides(root, &ours)?;
        if let Some(hashsize) = self.hashsize {
            report
                .overrides
                .extend(find_modprobe_overrides(root, &hashsize.to_string())?);
        }
        Ok(report)
    }
}

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileOutcome {
    /// It did not exist and was written (or would be, in a preview).
    Created,
    /// It existed with other content and was replaced (or would be).
    Updated,
    /// It already had exactly this content; it was not touched.
    Unchanged,
}

impl FileOutcome {
    /// `"created"`, `"updated"`, `"unchanged"`.
    pub fn name(self) -> &'static str {
        match self {
            FileOutcome::Created => "created",
            FileOutcome::Updated => "updated",
            FileOutcome::Unchanged => "unchanged",
        }
    }
}

impl fmt::Display for FileOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One managed file and its (new) content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersistedFile {
    /// Where it is.
    pub path: PathBuf,
    /// What happened to it.
    pub outcome: FileOutcome,
    /// Its complete content after the run.
    pub content: String,
}

/// A line in another configuration file that sets one of the persisted keys and is
/// applied after the drop-in, so it wins at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverridingLine {
    /// The file (as found; `sysctl.conf` rather than the `99-sysctl.conf` link to it).
    pub path: PathBuf,
    /// Line number, from 1.
    pub line: usize,
    /// The key it overrides (`"net.netfilter.nf_conntrack_max"`, or `"hashsize"`).
    pub key: String,
    /// The value it sets.
    pub value: String,
    /// The value the drop-in sets.
    pub ours: String,
    /// The line as written (trimmed).
    pub text: String,
}

impl OverridingLine {
    /// True when it sets the same value as the drop-in (harmless today, but it will
    /// win over any later change to the drop-in).
    pub fn same_value(&self) -> bool {
        self.value == self.ours
    }
}

impl fmt::Display for OverridingLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: `{}` overrides {} = {}",
            self.path.display(),
            self.line,
            self.text,
            self.key,
            self.ours
        )?;
        if self.same_value() {
            f.write_str(" (same value today; remove it so later changes take effect)")
        } else {
            f.write_str(" (remove or change it)")
        }
    }
}

/// The result of [`PersistPlan::persist`] or [`PersistPlan::preview`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PersistReport {
    /// True for a preview: nothing was written.
    pub dry_run: bool,
    /// The managed files, drop-in first.
    pub files: Vec<PersistedFile>,
    /// Lines elsewhere that override the drop-in at boot, in the order they apply.
    pub overrides: Vec<OverridingLine>,
    /// Temporary files of an interrupted earlier run that were removed.
    pub removed_temporary_files: Vec<PathBuf>,
}

impl PersistReport {
    /// True when some file was (or, in a preview, would be) created or changed.
    pub fn changed(&self) -> bool {
        self.files
            .iter()
            .any(|f| f.outcome != FileOutcome::Unchanged)
    }

    /// The sysctl drop-in.
    pub fn drop_in(&self) -> Option<&PersistedFile> {
        self.files
            .iter()
            .find(|f| f.path.file_name().is_some_and(|n| n == DROP_IN_NAME))
    }
}

impl fmt::Display for PersistReport {
    /// `created|updated|unchanged PATH` per file (prefixed `would be` in a preview),
    /// then one `warning:` line per overriding line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            match (self.dry_run, file.outcome) {
                (true, FileOutcome::Unchanged) => writeln!(f, "unchanged {}", file.path.display())?,
                (true, outcome) => writeln!(f, "would be {outcome} {}", file.path.display())?,
                (false, outcome) => writeln!(f, "{outcome} {}", file.path.display())?,
            }
        }
        for path in &self.removed_temporary_files {
            writeln!(f, "removed leftover {}", path.display())?;
        }
        for line in &self.overrides {
            writeln!(f, "warning: {line}")?;
        }
        Ok(())
    }
}

fn persist_error(operation: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Persist {
        operation,
        path: path.to_path_buf(),
        source,
    }
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(persist_error("read", path, e)),
    }
}

fn temporary_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Removes temporaries a crashed run left next to `path`.
fn remove_stale_temporaries(path: &Path) -> Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let prefix = temporary_prefix(name);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(persist_error("read directory", dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| persist_error("read directory", dir, e))?;
        let stale = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&prefix));
        if stale {
            let stale_path = entry.path();
            match fs::remove_file(&stale_path) {
                Ok(()) => removed.push(stale_path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(persist_error("remove leftover", &stale_path, e)),
            }
        }
    }
    Ok(removed)
}

static TEMPORARY_SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Temporary file in the same directory, write, fsync, rename, fsync the directory.
fn write_atomically(path: &Path, content: &str) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| persist_error("find directory of", path, io::ErrorKind::NotFound.into()))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| persist_error("name", path, io::ErrorKind::InvalidInput.into()))?;
    fs::create_dir_all(dir).map_err(|e| persist_error("create directory", dir, e))?;
    let temporary = dir.join(format!(
        "{}{}-{}",
        temporary_prefix(name),
        std::process::id(),
        TEMPORARY_SEQUENCE.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| -> Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&temporary)
            .map_err(|e| persist_error("create", &temporary, e))?;
        // The umask may have cleared bits: configuration files are world-readable.
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| persist_error("chmod", &temporary, e))?;
        file.write_all(content.as_bytes())
            .map_err(|e| persist_error("write", &temporary, e))?;
        file.sync_all()
            .map_err(|e| persist_error("fsync", &temporary, e))?;
        fs::rename(&temporary, path).map_err(|e| persist_error("rename into place", path, e))
    })();
    if let Err(err) = written {
        let _ = fs::remove_file(&temporary);
        return Err(err);
    }
    // Make the rename itself durable.
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| persist_error("fsync directory", dir, e))
}

/// One `key = value` line of a sysctl configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Assignment {
    line: usize,
    key: String,
    value: String,
    text: String,
}

/// Parses `sysctl.d(5)` syntax: `#`/`;` comments, `key = value`, an optional `-`
/// before the key (ignore errors), `/` or `.` as separators (when the first separator
/// is `/`, slashes and dots swap). Lines without `=` are skipped.
fn parse_assignments(text: &str) -> Vec<Assignment> {
    text.lines()
        .enumerate()
        .filter_map(|(index, raw)| {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            let key = key.trim().trim_start_matches('-').trim();
            if key.is_empty() {
                return None;
            }
            Some(Assignment {
                line: index + 1,
                key: normalize_key(key),
                value: value.trim().to_owned(),
                text: line.to_owned(),
            })
        })
        .collect()
}

fn normalize_key(key: &str) -> String {
    match key.find(['.', '/']) {
        Some(i) if key.as_bytes()[i] == b'/' => key
            .chars()
            .map(|c| match c {
                '/' => '.',
                '.' => '/',
                other => other,
            })
            .collect(),
        _ => key.to_owned(),
    }
}

/// `fnmatch(pattern, name, 0)` for `*` and `?` (systemd-sysctl accepts globs in keys).
fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n) = (pattern.as_bytes(), name.as_bytes());
    let (mut pi, mut ni) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            backtrack = Some((pi, ni));
            pi += 1;
        } else if let Some((star, matched)) = backtrack {
            pi = star + 1;
            ni = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// `*.conf` files of `dirs`, a name in an earlier directory masking later ones,
/// sorted by name.
fn collect_conf_files(dirs: &[PathBuf]) -> Result<BTreeMap<String, PathBuf>> {
    let mut files = BTreeMap::new();
    for dir in dirs {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(persist_error("read directory", dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| persist_error("read directory", dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.ends_with(".conf") && !name.starts_with('.') {
                files.entry(name).or_insert_with(|| entry.path());
            }
        }
    }
    Ok(files)
}

fn find_sysctl_overrides(
    root: &SysctlRoot,
    ours: &[(String, String)],
) -> Result<Vec<OverridingLine>> {
    if ours.is_empty() {
        return Ok(Vec::new());
    }
    let sysctl_conf = root.etc.join("sysctl.conf");
    let sysctl_conf_real = fs::canonicalize(&sysctl_conf).ok();
    let mut later: Vec<PathBuf> = collect_conf_files(&root.sysctl_dirs())?
        .into_iter()
        .filter(|(name, _)| name.as_str() > DROP_IN_NAME)
        .map(|(_, path)| path)
        // `99-sysctl.conf -> ../sysctl.conf`: reported once, as sysctl.conf.
        .filter(|path| {
            sysctl_conf_real.is_none() || fs::canonicalize(path).ok() != sysctl_conf_real
        })
        .collect();
    later.push(sysctl_conf);

    let mut overrides = Vec::new();
    for path in later {
        let Some(text) = read_optional(&path)? else {
            continue;
        };
        for assignment in parse_assignments(&text) {
            let pattern = assignment.key.contains(['*', '?']);
            for (key, value) in ours {
                let hit = if pattern {
                    glob_match(&assignment.key, key)
                } else {
                    assignment.key == *key
                };
                if hit {
                    overrides.push(OverridingLine {
                        path: path.clone(),
                        line: assignment.line,
                        key: key.clone(),
                        value: assignment.value.clone(),
                        ours: value.clone(),
                        text: assignment.text.clone(),
                    });
                }
            }
        }
    }
    Ok(overrides)
}

/// `options nf_conntrack ... hashsize=N` in `modprobe.d` files that sort after ours
/// (kmod reads them in name order; the last value of a parameter wins).
fn find_modprobe_overrides(root: &SysctlRoot, ours: &str) -> Result<Vec<OverridingLine>> {
    let dirs = [
        root.etc.join("modprobe.d"),
        root.run.join("modprobe.d"),
        root.usr.join("local/lib/modprobe.d"),
        root.usr.join("lib/modprobe.d"),
        root.lib.join("modprobe.d"),
    ];
    let mut overrides = Vec::new();
    for (name, path) in collect_conf_files(&dirs)? {
        if name.as_str() <= MODPROBE_NAME {
            continue;
        }
        let Some(text) = read_optional(&path)? else {
            continue;
        };
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            let mut words = line.split_whitespace();
            if words.next() != Some("options") || words.next() != Some("nf_conntrack") {
                continue;
            }
            for word in words {
                if let Some(value) = word.strip_prefix("hashsize=") {
                    overrides.push(OverridingLine {
                        path: path.clone(),
                        line: index + 1,
                        key: "hashsize".to_owned(),
                        value: value.to_owned(),
                        ours: ours.to_owned(),
                        text: line.to_owned(),
                    });
                }
            }
        }
    }
    Ok(overrides)
}

#[cfg(test)]
mod tests {
    use super::super::test_tree::TempTree;
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    const EXPECTED_DROP_IN: &str = "\
# Conntrack settings, written by conntrack-rs (rewritten as a whole: edit with care).
# modules-load.d/conntrack-rs.conf loads nf_conntrack first, so these keys exist
# when systemd-sysctl (or `sysctl --system`) applies this file at boot.
net.netfilter.nf_conntrack_buckets = 262144
net.netfilter.nf_conntrack_max = 1048576
net.netfilter.nf_conntrack_tcp_timeout_established = 86400
";

    fn plan() -> PersistPlan {
        PersistPlan::new()
            .set(Key::Max, 1_048_576)
            .set(Key::Buckets, 262_144)
            .set(Key::Hashsize, 262_144)
            .set_timeout(Timeout::TcpEstablished, Duration::from_secs(86_400))
    }

    #[test]
    fn writes_exact_content_and_second_run_changes_nothing() {
        let tree = TempTree::new("persist");
        let root = tree.root();
        let report = plan().persist(&root).unwrap();
        assert!(!report.dry_run && report.changed());
        let outcomes: Vec<_> = report.files.iter().map(|f| f.outcome).collect();
        assert_eq!(outcomes, vec![FileOutcome::Created; 3]);
        assert_eq!(
            tree.read("etc/sysctl.d/90-conntrack-rs.conf"),
            EXPECTED_DROP_IN
        );
        assert_eq!(
            tree.read("etc/modules-load.d/conntrack-rs.conf"),
            "# Written by conntrack-rs: load conntrack before sysctl.d is applied at boot,\n\
             # so the net.netfilter keys exist.\n\
             nf_conntrack\n"
        );
        assert_eq!(
            tree.read("etc/modprobe.d/conntrack-rs.conf"),
            "# Written by conntrack-rs: conntrack hash table size (nf_conntrack_buckets),\n\
             # applied when the nf_conntrack module loads.\n\
             options nf_conntrack hashsize=262144\n"
        );
        assert_eq!(report.drop_in().unwrap().content, EXPECTED_DROP_IN);
        assert!(report.overrides.is_empty());
        assert!(!tree.path.join("etc/sysctl.conf").exists(), "never touched");
        let mode = fs::metadata(tree.path.join("etc/sysctl.d/90-conntrack-rs.conf"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o644);

        let stamp = |p: &str| {
            let m = fs::metadata(tree.path.join(p)).unwrap();
            (m.ino(), m.mtime(), m.mtime_nsec())
        };
        let before = stamp("etc/sysctl.d/90-conntrack-rs.conf");
        let again = plan().persist(&root).unwrap();
        assert!(!again.changed());
        assert!(again
            .files
            .iter()
            .all(|f| f.outcome == FileOutcome::Unchanged));
        assert_eq!(stamp("etc/sysctl.d/90-conntrack-rs.conf"), before);
        assert!(again.to_string().starts_with("unchanged "), "{again}");
        let listing = |dir: &str| {
            let mut names: Vec<_> = fs::read_dir(tree.path.join(dir))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        assert_eq!(listing("etc/sysctl.d"), vec![DROP_IN_NAME]);
    }

    #[test]
    fn merges_with_what_the_drop_in_holds() {
        let tree = TempTree::new("merge");
        let root = tree.root();
        plan().persist(&root).unwrap();
        let report = PersistPlan::new()
            .set(Key::Max, 2_097_152)
            .set(Key::Acct, 1)
            .persist(&root)
            .unwrap();
        assert_eq!(report.files[0].outcome, FileOutcome::Updated);
        assert_eq!(report.files[1].outcome, FileOutcome::Unchanged);
        assert_eq!(
            report.files.len(),
            2,
            "no hashsize in this plan: modprobe.d left alone"
        );
        assert_eq!(
            tree.read("etc/sysctl.d/90-conntrack-rs.conf"),
            EXPECTED_DROP_IN.replace("1048576", "2097152").replace(
                "net.netfilter.nf_conntrack_buckets",
                "net.netfilter.nf_conntrack_acct = 1\nnet.netfilter.nf_conntrack_buckets"
            )
        );
        assert!(tree
            .read("etc/modprobe.d/conntrack-rs.conf")
            .contains("hashsize=262144"));
    }

    #[test]
    fn preview_writes_nothing() {
        let tree = TempTree::new("preview");
        let report = plan().preview(&tree.root()).unwrap();
        assert!(report.dry_run && report.changed());
        assert_eq!(report.drop_in().unwrap().content, EXPECTED_DROP_IN);
        assert!(!tree.path.join("etc").exists());
        assert!(
            report.to_string().starts_with("would be created "),
            "{report}"
        );
        assert!(PersistPlan::new()
            .set(Key::Count, 1)
            .preview(&tree.root())
            .is_err());
    }

    #[test]
    fn leftover_temporaries_are_ignored_and_removed() {
        let tree = TempTree::new("leftover");
        let root = tree.root();
        // A crash between create and rename leaves a partial hidden temporary.
        let stale = tree.write(
            "etc/sysctl.d/.90-conntrack-rs.conf.tmp-999999-0",
            "net.netfilter.nf_conntrack_max = 1",
        );
        // Not a *.conf file: sysctl readers (and our override scan) ignore it.
        let report = plan().preview(&root).unwrap();
        assert!(report.overrides.is_empty());
        assert!(stale.exists(), "a preview removes nothing");
        let report = plan().persist(&root).unwrap();
        assert_eq!(report.removed_temporary_files, vec![stale.clone()]);
        assert!(!stale.exists());
        assert_eq!(
            tree.read("etc/sysctl.d/90-conntrack-rs.conf"),
            EXPECTED_DROP_IN
        );
        assert!(report.to_string().contains("removed leftover"), "{report}");
    }

    #[test]
    fn readers_only_ever_see_complete_files() {
        let tree = TempTree::new("atomic");
        let root = tree.root();
        // Two plans with the same keys, so the drop-in is always exactly one of two texts.
        let plan_with = |max: u64, base: u64| {
            (0..Timeout::COUNT).fold(PersistPlan::new().set(Key::Max, max), |p, i| {
                p.set_timeout(Timeout::ALL[i], Duration::from_secs(base + i as u64))
            })
        };
        let (small, big) = (plan_with(1, 10), plan_with(2_000_000, 100_000));
        let small_content = small.preview(&root).unwrap().files[0].content.clone();
        let big_content = big.preview(&root).unwrap().files[0].content.clone();
        small.persist(&root).unwrap();
        let dir = tree.path.join("etc/sysctl.d");
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let done = Arc::clone(&done);
            let dir = dir.clone();
            std::thread::spawn(move || {
                let mut reads = 0u32;
                while !done.load(Ordering::Relaxed) {
                    for entry in fs::read_dir(&dir).unwrap() {
                        let entry = entry.unwrap();
                        let name = entry.file_name().into_string().unwrap();
                        if !name.ends_with(".conf") {
                            assert!(name.starts_with(".90-conntrack-rs.conf.tmp-"), "{name}");
                            continue;
                        }
                        assert_eq!(name, DROP_IN_NAME);
                        match fs::read_to_string(entry.path()) {
                            Ok(text) => {
                                assert!(
                                    text == small_content || text == big_content,
                                    "partial file seen: {text:?}"
                                );
                                reads += 1;
                            }
                            // Replaced between listing and opening: fine.
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                reads
            })
        };
        for i in 0..200 {
            let plan = if i % 2 == 0 { &big } else { &small };
            plan.persist(&root).unwrap();
        }
        done.store(true, Ordering::Relaxed);
        let reads = reader.join().unwrap();
        assert!(reads > 0);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![DROP_IN_NAME], "no temporary left behind");
    }

    #[test]
    fn reports_lines_that_override_the_drop_in() {
        let tree = TempTree::new("override");
        let root = tree.root();
        tree.write(
            "etc/sysctl.conf",
            "# local settings\nnet.ipv4.ip_forward = 1\nnet.netfilter.nf_conntrack_max=65536\n",
        );
        // systemd's link to sysctl.conf: reported once, as sysctl.conf.
        fs::create_dir_all(tree.path.join("etc/sysctl.d")).unwrap();
        std::os::unix::fs::symlink(
            "../sysctl.conf",
            tree.path.join("etc/sysctl.d/99-sysctl.conf"),
        )
        .unwrap();
        // Sorts before ours: overridden by us, not reported.
        tree.write(
            "etc/sysctl.d/10-early.conf",
            "net.netfilter.nf_conntrack_max = 1\n",
        );
        // Sorts after ours, slash syntax, ignore-errors prefix.
        tree.write(
            "usr/lib/sysctl.d/95-vendor.conf",
            "; vendor\n-net/netfilter/nf_conntrack_buckets = 16384\n",
        );
        // Masked by the /run file of the same name (earlier directory wins).
        tree.write(
            "usr/lib/sysctl.d/96-masked.conf",
            "net.netfilter.nf_conntrack_max = 7\n",
        );
        tree.write("run/sysctl.d/96-masked.conf", "# masks the vendor file\n");
        // Glob matching our key, same value as ours.
        tree.write(
            "etc/sysctl.d/97-glob.conf",
            "net.netfilter.nf_conntrack_tcp_timeout_*= 86400\n",
        );
        // Not a .conf file: ignored.
        tree.write(
            "etc/sysctl.d/98-disabled.conf.bak",
            "net.netfilter.nf_conntrack_max = 3\n",
        );
        // A later modprobe.d file setting hashsize.
        tree.write(
            "etc/modprobe.d/local.conf",
            "options nf_conntrack expect_hashsize=1024 hashsize=8192\n",
        );
        tree.write(
            "lib/modprobe.d/aaa.conf",
            "options nf_conntrack hashsize=4096\n",
        );

        let report = plan().persist(&root).unwrap();
        let found: Vec<(String, usize, &str, &str, bool)> = report
            .overrides
            .iter()
            .map(|o| {
                (
                    o.path
                        .strip_prefix(&tree.path)
                        .unwrap()
                        .display()
                        .to_string(),
                    o.line,
                    o.key.as_str(),
                    o.value.as_str(),
                    o.same_value(),
                )
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    "usr/lib/sysctl.d/95-vendor.conf".to_owned(),
                    2,
                    "net.netfilter.nf_conntrack_buckets",
                    "16384",
                    false
                ),
                (
                    "etc/sysctl.d/97-glob.conf".to_owned(),
                    1,
                    "net.netfilter.nf_conntrack_tcp_timeout_established",
                    "86400",
                    true
                ),
                (
                    "etc/sysctl.conf".to_owned(),
                    3,
                    "net.netfilter.nf_conntrack_max",
                    "65536",
                    false
                ),
                (
                    "etc/modprobe.d/local.conf".to_owned(),
                    1,
                    "hashsize",
                    "8192",
                    false
                ),
            ]
        );
        let text = report.to_string();
        assert!(
            text.contains(
                "sysctl.conf:3: `net.netfilter.nf_conntrack_max=65536` overrides \
                 net.netfilter.nf_conntrack_max = 1048576"
            ),
            "{text}"
        );
        assert_eq!(
            tree.read("etc/sysctl.conf").lines().count(),
            3,
            "sysctl.conf is never modified"
        );
    }

    #[test]
    fn sysctl_syntax_helpers() {
        assert_eq!(
            normalize_key("net/netfilter/nf_conntrack_max"),
            "net.netfilter.nf_conntrack_max"
        );
        assert_eq!(
            normalize_key("net.ipv4.conf.eth0/1.rp_filter"),
            "net.ipv4.conf.eth0/1.rp_filter"
        );
        assert_eq!(
            normalize_key("net/ipv4/conf/eth0.1/rp_filter"),
            "net.ipv4.conf.eth0/1.rp_filter"
        );
        assert!(glob_match(
            "net.netfilter.*",
            "net.netfilter.nf_conntrack_max"
        ));
        assert!(glob_match(
            "net.*.nf_conntrack_?ax",
            "net.netfilter.nf_conntrack_max"
        ));
        assert!(!glob_match(
            "net.netfilter.*_timeout",
            "net.netfilter.nf_conntrack_max"
        ));
        assert!(glob_match("*", ""));
        let parsed = parse_assignments("# c\n; c\n\n-a.b = 1 \nnovalue\n x/y=2\n");
        assert_eq!(
            parsed
                .iter()
                .map(|a| (a.line, a.key.as_str(), a.value.as_str()))
                .collect::<Vec<_>>(),
            vec![(4, "a.b", "1"), (6, "x.y", "2")]
        );
    }
}
