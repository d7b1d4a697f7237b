// SPDX-License-Identifier: MIT OR Apache-2.0
//! Label names: the `connlabel.conf` file conntrack-tools, iptables'
//! `connlabel` match and nftables' `ct label` read, so that filters, creates,
//! updates and outputs can say `--label blocked` instead of bit 3.
//!
//! The format (libnetfilter_conntrack's `nfct_labelmap_new`): one `BIT NAME`
//! per line, `BIT` 0-127, `NAME` one word; `#` starts a comment; blank lines
//! are ignored. conntrack-tools reads `/etc/xtables/connlabel.conf`, nftables
//! `/etc/connlabel.conf`; [`LabelMap::system`] reads the first that exists.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::flow::Labels;

/// Where the tools that name labels look for them, in the order
/// [`LabelMap::system`] tries them.
pub const LABEL_FILES: [&str; 2] = ["/etc/xtables/connlabel.conf", "/etc/connlabel.conf"];

/// Names of label bits, from a `connlabel.conf`.
///
/// ```
/// use conntrack::{LabelMap, Labels};
/// let map = LabelMap::parse("0 blocked\n1 audited # comment\n", "example")?;
/// assert_eq!(map.bit("audited"), Some(1));
/// let labels = map.labels("blocked,audited")?;
/// assert_eq!(labels, Labels::default().with(0).with(1));
/// assert_eq!(map.describe(labels.with(5)), ["blocked", "audited", "5"]);
/// # Ok::<(), conntrack::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMap {
    /// `(bit, name)` in file order.
    names: Vec<(u32, String)>,
    /// The file they came from (`None`: no file, or parsed from text).
    source: Option<PathBuf>,
}

impl LabelMap {
    /// The system's label names: the first of [`LABEL_FILES`] that exists,
    /// or no names at all when none does (bit numbers still work).
    pub fn system() -> Result<LabelMap> {
        for path in LABEL_FILES {
            match std::fs::read(path) {
                Ok(bytes) => return Self::from_bytes(&bytes, Path::new(path)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::InvalidInput(format!(
                        "cannot read the label names in {path}: {e}"
                    )))
                }
            }
        }
        Ok(LabelMap::default())
    }

    /// The label names of the file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<LabelMap> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            Error::InvalidInput(format!(
                "cannot read the label names in {}: {e}",
                path.display()
            ))
        })?;
        Self::from_bytes(&bytes, path)
    }

    fn from_bytes(bytes: &[u8], path: &Path) -> Result<LabelMap> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            Error::InvalidInput(format!(
                "{}: not UTF-8 text (byte {})",
                path.display(),
                e.valid_up_to()
            ))
        })?;
        let mut map = Self::parse(text, &path.display().to_string())?;
        map.source = Some(path.to_owned());
        Ok(map)
    }

    /// Parses `connlabel.conf` text; `origin` names it in error messages.
    /// A bit beyond 127, a line without a name or with more than one word,
    /// and a name or bit given twice are refused with the line number.
    pub fn parse(text: &str, origin: &str) -> Result<LabelMap> {
        let mut names: Vec<(u32, String)> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: String| {
                Error::InvalidInput(format!("{origin} line {}: {why}: {line:?}", index + 1))
            };
            let mut words = line.split_whitespace();
            let (Some(bit), Some(name), None) = (words.next(), words.next(), words.next()) else {
                return Err(bad("expected `BIT NAME`".into()));
            };
            let bit: u32 = bit
                .parse()
                .ok()
                .filter(|&b| b < Labels::BITS)
                .ok_or_else(|| bad(format!("{bit:?} is not a label bit (0-127)")))?;
            if let Some((other, _)) = names.iter().find(|(_, n)| n == name) {
                return Err(bad(format!("{name:?} already names bit {other}")));
            }
            if let Some((_, other)) = names.iter().find(|(b, _)| *b == bit) {
                return Err(bad(format!("bit {bit} is already named {other:?}")));
            }
            names.push((bit, name.to_owned()));
        }
        Ok(LabelMap {
            names,
            source: None,
        })
    }

    /// The file the names came from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The name of `bit`.
    pub fn name(&self, bit: u32) -> Option<&str> {
        self.names
            .iter()
            .find(|(b, _)| *b == bit)
            .map(|(_, n)| n.as_str())
    }

    /// The bit named `name` (exact, as conntrack-tools matches it).
    pub fn bit(&self, name: &str) -> Option<u32> {
        self.names.iter().find(|(_, n)| n == name).map(|(b, _)| *b)
    }

    /// Every `(bit, name)`, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &str)> {
        self.names.iter().map(|(b, n)| (*b, n.as_str()))
    }

    /// Labels from a comma-separated list of names or bit numbers
    /// (`"blocked,3"`, as `conntrack -l` takes them). An unknown name is an
    /// error listing the known ones.
    pub fn labels(&self, list: &str) -> Result<Labels> {
        let mut labels = Labels::default();
        for item in list.split(',').map(str::trim) {
            labels = labels.with(self.resolve(item)?);
        }
        Ok(labels)
    }

    /// The bit of one name or number.
    pub fn resolve(&self, item: &str) -> Result<u32> {
        if let Some(bit) = self.bit(item) {
            return Ok(bit);
        }
        if let Ok(bit) = item.parse::<u32>() {
            if bit < Labels::BITS {
                return Ok(bit);
            }
        }
        let known: Vec<&str> = self.names.iter().map(|(_, n)| n.as_str()).collect();
        let from = self
            .source
            .as_ref()
            .map_or("no connlabel.conf".to_owned(), |p| p.display().to_string());
        Err(Error::InvalidInput(format!(
            "unknown label {item:?}: a bit number 0-127 or a name of {from} ({})",
            if known.is_empty() {
                "none defined".to_owned()
            } else {
                known.join(", ")
            }
        )))
    }

    /// The names of the bits set in `labels` (the bit number for a bit
    /// without a name), lowest bit first: what outputs print.
    pub fn describe(&self, labels: Labels) -> Vec<String> {
        labels
            .iter()
            .map(|bit| self.name(bit).map_or(bit.to_string(), str::to_owned))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connlabel_conf_and_refuses_what_tools_would_misread() {
        let map = LabelMap::parse(
            "# names\n0\tblocked\n\n1 audited   # trailing comment\n127 last\n",
            "t",
        )
        .unwrap();
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            [(0, "blocked"), (1, "audited"), (127, "last")]
        );
        assert_eq!(
            map.labels("blocked, 5").unwrap(),
            Labels::default().with(0).with(5)
        );
        let err = map.labels("blokced").unwrap_err().to_string();
        assert!(
            err.contains("blokced") && err.contains("blocked, audited, last"),
            "{err}"
        );
        assert!(map.resolve("128").is_err());
        for (bad, needle) in [
            ("128 x\n", "0-127"),
            ("1\n", "BIT NAME"),
            ("1 a b\n", "BIT NAME"),
            ("1 a\n2 a\n", "already names bit 1"),
            ("1 a\n1 b\n", "already named \"a\""),
            ("x a\n", "not a label bit"),
        ] {
            let err = LabelMap::parse(bad, "f").unwrap_err().to_string();
            assert!(
                err.contains(needle) && err.contains("f line"),
                "{bad:?}: {err}"
            );
        }
        let dir = std::env::temp_dir().join(format!("conntrack-rs-labels-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("connlabel.conf");
        std::fs::write(&file, b"3 \xff\n").unwrap();
        assert!(LabelMap::load(&file)
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
        std::fs::write(&file, "3 three\n").unwrap();
        let map = LabelMap::load(&file).unwrap();
        assert_eq!(
            (map.bit("three"), map.source()),
            (Some(3), Some(file.as_path()))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
