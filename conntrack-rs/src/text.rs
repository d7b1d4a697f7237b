// SPDX-License-Identifier: MIT OR Apache-2.0
//! Text output of flows in the format of `conntrack -L` (conntrack-tools).
//!
//! [`write_flow`] writes one flow as one line (without the newline) exactly as
//! `conntrack -L` prints it with conntrack-tools 1.4.7 and libnetfilter_conntrack
//! 1.0.9 (`snprintf_default.c`): `-o extended` adds the leading layer-3 column
//! ([`TextOptions::extended`]), `-o id` the trailing `id=` field
//! ([`TextOptions::id`]).
//!
//! ```text
//! ipv4     2 tcp      6 3599 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1111 dport=80 src=10.0.0.2 dst=10.0.0.1 sport=80 dport=1111 [ASSURED] mark=7 use=1 id=4033868321
//! ```
//!
//! Fields, in order, each printed only when the flow carries it:
//!
//! | field | printed when |
//! |-------|--------------|
//! | `ipv4     2 ` / `ipv6     10 ` (`%-8s %u`) | [`TextOptions::extended`] |
//! | protocol name and number (`%-8s %u`; `unknown` for generic protocols) | always |
//! | remaining timeout in seconds | [`Flow::timeout`] is set |
//! | TCP / SCTP / DCCP state name (`NONE` for values the tool does not know) | protoinfo carries a state |
//! | original tuple: `src= dst=`, then `sport= dport=` (TCP, UDP, UDPLite, SCTP, DCCP), `srckey=0x dstkey=0x` (GRE) or `type= code= id=` (ICMP, ICMPv6) | always |
//! | `zone-orig=` | directional zone on the original tuple |
//! | `packets= bytes=` (original) | [`Flow::counters_orig`] is set |
//! | `[UNREPLIED]` | `SEEN_REPLY` is not set |
//! | reply tuple, `zone-reply=`, reply `packets= bytes=` | as above |
//! | `[HW_OFFLOAD]`, else `[OFFLOAD]`, else `[ASSURED]` | the status bit is set |
//! | `mark=` | [`Flow::mark`] is set (every dump entry) |
//! | `secctx=` | [`Flow::secctx`] is set |
//! | `zone=` | [`Flow::zone`] is set |
//! | `delta-time=` (seconds since the flow started, up to now or its stop time) | [`Timestamp::start`] is set |
//! | `helper=` | [`Flow::helper`] is set |
//! | `use=` | [`Flow::use_count`] is set |
//! | `id=` | [`TextOptions::id`] and [`Flow::id`] are set |
//! | `labels=` (see below) | [`FlowText::labels`] with a map that names at least one bit, and [`Flow::labels`] is set |
//!
//! # Labels
//!
//! `conntrack -L -o labels` (libnetfilter_conntrack's `__snprintf_clabels`)
//! ends the line with `labels=` and the *names* of the set bits that
//! `/etc/xtables/connlabel.conf` names, lowest bit first, separated by `,`
//! (`labels=blocked,audited`). A set bit without a name is left out; when no
//! set bit has a name the field is the bare word `labels` (conntrack writes
//! `labels=`, then overwrites the `=` with the space that ends the field).
//! Without the file, or with a file that names nothing, conntrack prints no
//! label field at all: so does [`FlowText::labels`] with a [`LabelMap`] that
//! names nothing ([`LabelMap::default`]).
//!
//! ```
//! use conntrack::{text::{display, TextOptions}, Flow, LabelMap, Labels};
//! let map = LabelMap::parse("0 blocked\n5 audited\n", "example")?;
//! let mut flow = Flow::<String>::default();
//! flow.labels = Some(Labels::default().with(0).with(5).with(9));
//! let line = display(&flow, TextOptions::EXTENDED).labels(&map).to_string();
//! assert!(line.ends_with(" labels=blocked,audited"));
//! flow.labels = Some(Labels::default().with(9));
//! let line = display(&flow, TextOptions::EXTENDED).labels(&map).to_string();
//! assert!(line.ends_with(" labels"));
//! # Ok::<(), conntrack::Error>(())
//! ```
//!
//! Where names are not wanted or not known, [`FlowText::label_bits`] prints
//! every set bit as its number (`labels=0,5,9`): not a conntrack output, but
//! the same field, which [`crate::restore::parse_text`] reads back without a
//! map. Bit names themselves: conntrack-tools ignores a `connlabel.conf`
//! line whose name has characters other than letters, digits, `-` and space,
//! which [`LabelMap`] accepts (nftables reads the same file); with such a
//! name the two print different lines.
//!
//! # Not printed
//!
//! As `conntrack -L -o extended,id,labels` does not print them either: the
//! wall-clock `[start=…]`/`[stop=…]` of `-o ktimestamp` (local-time `ctime(3)` strings),
//! sequence adjustment, SYN proxy and master tuple. Addresses are formatted like
//! glibc's `inet_ntop` (`::1.2.3.4` for IPv4-compatible IPv6 addresses, where
//! Rust's `Display` would print `::102:304`).
//!
//! Writing a flow allocates nothing; `delta-time` reads the clock
//! ([`write_flow_at`] and [`FlowText::at`] take the time instead).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::consts::{AF_INET, AF_INET6};
use crate::expect::{ExpectFlags, Expectation};
use crate::flow::{proto, Flow, Labels, ProtoInfo, Timestamp, Tuple, L4};
use crate::labelmap::LabelMap;
use crate::status::Status;

/// Which optional columns to print, like `conntrack -o`.
///
/// `TextOptions::default()` is plain `conntrack -L`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TextOptions {
    /// `-o extended`: start with the layer-3 protocol name and number
    /// (`ipv4     2 ` / `ipv6     10 `).
    pub extended: bool,
    /// `-o id`: end with the kernel's flow id (`id=N`).
    pub id: bool,
}

impl TextOptions {
    /// `conntrack -L` (no optional column).
    pub const PLAIN: TextOptions = TextOptions {
        extended: false,
        id: false,
    };
    /// `conntrack -L -o extended`.
    pub const EXTENDED: TextOptions = TextOptions {
        extended: true,
        id: false,
    };
    /// `conntrack -L -o extended,id`.
    pub const EXTENDED_ID: TextOptions = TextOptions {
        extended: true,
        id: true,
    };
}

/// The layer-3 protocol name conntrack prints for an address family
/// (`"ipv4"`, `"ipv6"`, `"unknown"` otherwise).
pub fn family_name(family: u8) -> &'static str {
    match family {
        AF_INET => "ipv4",
        AF_INET6 => "ipv6",
        _ => "unknown",
    }
}

/// Writes `flow` as one `conntrack -L` line (no trailing newline).
///
/// `delta-time` (flows with a start timestamp) is computed against the
/// current time, as conntrack does; use [`write_flow_at`] for a fixed time.
/// The only errors are those of `out`.
pub fn write_flow<S: AsRef<str>>(
    out: &mut impl fmt::Write,
    flow: &Flow<S>,
    options: TextOptions,
) -> fmt::Result {
    write_line(out, &display(flow, options))
}

/// Like [`write_flow`], with `now` as the current time for `delta-time`.
pub fn write_flow_at<S: AsRef<str>>(
    out: &mut impl fmt::Write,
    flow: &Flow<S>,
    options: TextOptions,
    now: SystemTime,
) -> fmt::Result {
    write_line(out, &display(flow, options).at(now))
}

/// A flow with [`TextOptions`], displayed as one `conntrack -L` line
/// (see [`display`]); its builder methods add what `TextOptions` does not
/// say: labels ([`labels`](Self::labels), [`label_bits`](Self::label_bits))
/// and a fixed time ([`at`](Self::at)).
#[derive(Debug, Clone, Copy)]
pub struct FlowText<'a, S> {
    flow: &'a Flow<S>,
    options: TextOptions,
    labels: LabelText<'a>,
    now: Option<SystemTime>,
}

/// How the `labels=` field is written.
#[derive(Debug, Clone, Copy)]
enum LabelText<'a> {
    /// Not at all (conntrack without `-o labels`).
    Off,
    /// `-o labels`: the names of this map.
    Names(&'a LabelMap),
    /// Every set bit as its number.
    Bits,
}

impl<'a, S> FlowText<'a, S> {
    /// Ends the line with the flow's labels by name, as
    /// `conntrack -L -o labels` prints them with `names` as its
    /// `connlabel.conf` (see [the module docs](self#labels)): set bits
    /// without a name are left out, and a map that names nothing prints no
    /// label field, as conntrack without the file.
    pub fn labels(mut self, names: &'a LabelMap) -> Self {
        self.labels = LabelText::Names(names);
        self
    }

    /// Ends the line with every set label bit as its number
    /// (`labels=0,5,127`): the field of `-o labels` without names, which
    /// [`crate::restore::parse_text`] reads back without a map.
    pub fn label_bits(mut self) -> Self {
        self.labels = LabelText::Bits;
        self
    }

    /// Computes `delta-time` against `now` instead of the current time.
    pub fn at(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }
}

/// Wraps `flow` so that `{}` formats it as one `conntrack -L` line, e.g. to
/// `writeln!` it to an `io::Write` without building a `String`.
///
/// ```
/// use conntrack::text::{display, TextOptions};
/// let flow = conntrack::Flow::<String>::default();
/// let line = display(&flow, TextOptions::EXTENDED).to_string();
/// assert!(line.starts_with("ipv4     2 unknown  0 src=0.0.0.0 dst=0.0.0.0"));
/// ```
pub fn display<S: AsRef<str>>(flow: &Flow<S>, options: TextOptions) -> FlowText<'_, S> {
    FlowText {
        flow,
        options,
        labels: LabelText::Off,
        now: None,
    }
}

impl<S: AsRef<str>> fmt::Display for FlowText<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_line(f, self)
    }
}

/// Writes space-separated fields: the first as is, every later one after a
/// space (conntrack writes `"field "` and drops the last space).
struct Fields<'w, W: fmt::Write + ?Sized> {
    out: &'w mut W,
    first: bool,
}

impl<W: fmt::Write + ?Sized> Fields<'_, W> {
    fn field(&mut self, args: fmt::Arguments<'_>) -> fmt::Result {
        if !self.first {
            self.out.write_char(' ')?;
        }
        self.first = false;
        self.out.write_fmt(args)
    }

    fn str(&mut self, s: &str) -> fmt::Result {
        self.field(format_args!("{s}"))
    }
}

fn write_line<W: fmt::Write + ?Sized, S: AsRef<str>>(
    out: &mut W,
    text: &FlowText<'_, S>,
) -> fmt::Result {
    let FlowText {
        flow,
        options,
        labels,
        now,
    } = *text;
    let mut w = Fields { out, first: true };
    if options.extended {
        let family = flow.family();
        w.field(format_args!("{:<8} {}", family_name(family), family))?;
    }
    let protocol = flow.protocol();
    w.field(format_args!("{:<8} {}", proto::name(protocol), protocol))?;
    if let Some(timeout) = flow.timeout {
        w.field(format_args!("{timeout}"))?;
    }
    if let Some(state) = state_name(flow.protoinfo) {
        w.str(state)?;
    }

    write_tuple(&mut w, &flow.orig)?;
    if let Some(zone) = flow.orig.zone {
        w.field(format_args!("zone-orig={zone}"))?;
    }
    if let Some(c) = flow.counters_orig {
        w.field(format_args!("packets={} bytes={}", c.packets, c.bytes))?;
    }
    if !flow.status.contains(Status::SEEN_REPLY) {
        w.str("[UNREPLIED]")?;
    }

    write_tuple(&mut w, &flow.reply)?;
    if let Some(zone) = flow.reply.zone {
        w.field(format_args!("zone-reply={zone}"))?;
    }
    if let Some(c) = flow.counters_reply {
        w.field(format_args!("packets={} bytes={}", c.packets, c.bytes))?;
    }

    if flow.status.contains(Status::HW_OFFLOAD) {
        w.str("[HW_OFFLOAD]")?;
    } else if flow.status.contains(Status::OFFLOAD) {
        w.str("[OFFLOAD]")?;
    } else if flow.status.contains(Status::ASSURED) {
        w.str("[ASSURED]")?;
    }
    if let Some(mark) = flow.mark {
        w.field(format_args!("mark={mark}"))?;
    }
    if let Some(secctx) = &flow.secctx {
        w.field(format_args!("secctx={}", secctx.as_ref()))?;
    }
    if let Some(zone) = flow.zone {
        w.field(format_args!("zone={zone}"))?;
    }
    if let Some(delta) = flow.timestamp.and_then(|ts| delta_time(ts, now)) {
        w.field(format_args!("delta-time={delta}"))?;
    }
    if let Some(helper) = &flow.helper {
        w.field(format_args!("helper={}", helper.as_ref()))?;
    }
    if let Some(use_count) = flow.use_count {
        w.field(format_args!("use={use_count}"))?;
    }
    if options.id {
        if let Some(id) = flow.id {
            w.field(format_args!("id={}", id.value()))?;
        }
    }
    if let Some(set) = flow.labels {
        write_labels(&mut w, set, labels)?;
    }
    Ok(())
}

/// The `labels=` field (see the module docs): `labels=` and the items
/// separated by `,`, or the bare word `labels` when there is no item.
fn write_labels<W: fmt::Write + ?Sized>(
    w: &mut Fields<'_, W>,
    set: Labels,
    how: LabelText<'_>,
) -> fmt::Result {
    let mut separator = '=';
    let mut item = |w: &mut Fields<'_, W>, args: fmt::Arguments<'_>| {
        w.out.write_char(separator)?;
        separator = ',';
        w.out.write_fmt(args)
    };
    match how {
        LabelText::Off => return Ok(()),
        // conntrack has no map then (`nfct_labelmap_new` fails on a file
        // that names nothing) and prints no field.
        LabelText::Names(map) if map.iter().next().is_none() => return Ok(()),
        LabelText::Names(map) => {
            w.str("labels")?;
            for name in set.iter().filter_map(|bit| map.name(bit)) {
                item(w, format_args!("{name}"))?;
            }
        }
        LabelText::Bits => {
            w.str("labels")?;
            for bit in set.iter() {
                item(w, format_args!("{bit}"))?;
            }
        }
    }
    Ok(())
}

/// Writes `expectation` as one `conntrack -L expect` line (no trailing
/// newline), as libnetfilter_conntrack 1.0.9 prints it
/// (`__snprintf_expect_default`); `conntrack -E expect` prints the same after
/// the event type right-aligned in nine columns (`    [NEW] `).
///
/// ```text
/// 297 proto=6 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=51210 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=127.0.0.1 master-dst=127.0.0.1 sport=40000 dport=21 class=0 helper=ftp
/// ```
///
/// Fields, each only when the expectation carries it: the remaining
/// timeout, `proto=`, the expected tuple, the mask (`mask-src= mask-dst=`
/// and its ports), the master's original tuple (`master-src= master-dst=`),
/// `zone=`, the flags (`PERMANENT,INACTIVE,USERSPACE`), `class=`, `helper=`.
/// NAT and the helper function are not printed, as conntrack does not.
pub fn write_expectation<S: AsRef<str>>(
    out: &mut impl fmt::Write,
    expectation: &Expectation<S>,
) -> fmt::Result {
    let mut w = Fields { out, first: true };
    if let Some(timeout) = expectation.timeout {
        w.field(format_args!("{timeout}"))?;
    }
    w.field(format_args!("proto={}", expectation.tuple.protocol))?;
    write_tuple_named(&mut w, &expectation.tuple, "src", "dst")?;
    write_tuple_named(&mut w, &expectation.mask, "mask-src", "mask-dst")?;
    write_tuple_named(&mut w, &expectation.master, "master-src", "master-dst")?;
    if let Some(zone) = expectation.zone {
        w.field(format_args!("zone={zone}"))?;
    }
    let flags = expectation.flags;
    if !flags.is_empty() {
        let names: Vec<&str> = [
            (ExpectFlags::PERMANENT, "PERMANENT"),
            (ExpectFlags::INACTIVE, "INACTIVE"),
            (ExpectFlags::USERSPACE, "USERSPACE"),
        ]
        .into_iter()
        .filter(|(flag, _)| flags.contains(*flag))
        .map(|(_, name)| name)
        .collect();
        // conntrack writes the names, then a space, even with no known name.
        w.field(format_args!("{}", names.join(",")))?;
    }
    if let Some(class) = expectation.class {
        w.field(format_args!("class={class}"))?;
    }
    if let Some(helper) = &expectation.helper {
        w.field(format_args!("helper={}", helper.as_ref()))?;
    }
    Ok(())
}

/// An expectation displayed as one `conntrack -L expect` line (see
/// [`write_expectation`]).
#[derive(Debug, Clone, Copy)]
pub struct ExpectationText<'a, S>(&'a Expectation<S>);

/// Wraps `expectation` so that `{}` formats it as one `conntrack -L expect`
/// line.
pub fn display_expectation<S: AsRef<str>>(expectation: &Expectation<S>) -> ExpectationText<'_, S> {
    ExpectationText(expectation)
}

impl<S: AsRef<str>> fmt::Display for ExpectationText<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_expectation(f, self.0)
    }
}

/// The state name conntrack prints; values beyond its tables print as `NONE`.
fn state_name(protoinfo: Option<ProtoInfo>) -> Option<&'static str> {
    // Each table of libnetfilter_conntrack has ten entries (`*_CONNTRACK_MAX`).
    const KNOWN: u8 = 10;
    let (raw, name) = match protoinfo? {
        ProtoInfo::Tcp(info) => info.state.map(|s| (s.raw(), s.name()))?,
        ProtoInfo::Sctp(info) => info.state.map(|s| (s.raw(), s.name()))?,
        ProtoInfo::Dccp(info) => info.state.map(|s| (s.raw(), s.name()))?,
        #[allow(unreachable_patterns)] // ProtoInfo is non-exhaustive
        _ => return None,
    };
    Some(if raw < KNOWN { name } else { "NONE" })
}

/// `delta-time`: whole seconds from start to stop (or to now while running),
/// with the wrap-around of conntrack's `%llu` of a `time_t` difference.
fn delta_time(ts: Timestamp, now: Option<SystemTime>) -> Option<u64> {
    const NSEC_PER_SEC: u64 = 1_000_000_000;
    let start = ts.start?;
    let end = match ts.stop {
        Some(stop) if stop != 0 => (stop / NSEC_PER_SEC) as i64,
        _ => unix_seconds(now.unwrap_or_else(SystemTime::now)),
    };
    Some(end.wrapping_sub((start / NSEC_PER_SEC) as i64) as u64)
}

/// `time(2)` for a `SystemTime`: whole seconds since the epoch, floored.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 {
                -secs
            } else {
                -secs - 1
            }
        }
    }
}

fn write_tuple<W: fmt::Write + ?Sized>(w: &mut Fields<'_, W>, tuple: &Tuple) -> fmt::Result {
    write_tuple_named(w, tuple, "src", "dst")
}

/// A tuple with its address fields named `src_name=` and `dst_name=`
/// (libnetfilter_conntrack's `__snprintf_address` + `__snprintf_proto`).
fn write_tuple_named<W: fmt::Write + ?Sized>(
    w: &mut Fields<'_, W>,
    tuple: &Tuple,
    src_name: &str,
    dst_name: &str,
) -> fmt::Result {
    w.field(format_args!("{src_name}={}", Addr(tuple.src)))?;
    w.field(format_args!("{dst_name}={}", Addr(tuple.dst)))?;
    // The fields follow the protocol; values the tuple lacks print as 0,
    // like the zeroed fields of libnetfilter_conntrack's object.
    let (src, dst) = match tuple.l4 {
        L4::Ports { src, dst } => (src, dst),
        _ => (0, 0),
    };
    match tuple.protocol {
        proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP | proto::DCCP => {
            w.field(format_args!("sport={src} dport={dst}"))
        }
        proto::GRE => w.field(format_args!("srckey={src:#x} dstkey={dst:#x}")),
        proto::ICMP | proto::ICMPV6 => {
            let (icmp_type, code, id) = tuple.icmp_fields().unwrap_or_default();
            w.field(format_args!("type={icmp_type} code={code} id={id}"))
        }
        _ => Ok(()),
    }
}

/// An address formatted like glibc's `inet_ntoa` / `inet_ntop`.
struct Addr(IpAddr);

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write_ipv6(f, &v6),
        }
    }
}

/// RFC 5952-style text as glibc's `inet_ntop(AF_INET6)` writes it: the first
/// longest run of two or more zero groups becomes `::`; `::a.b.c.d` and
/// `::ffff:a.b.c.d` end in dotted IPv4.
fn write_ipv6(f: &mut impl fmt::Write, addr: &Ipv6Addr) -> fmt::Result {
    let words = addr.segments();
    let (mut best_base, mut best_len) = (usize::MAX, 0usize);
    let (mut cur_base, mut cur_len) = (usize::MAX, 0usize);
    for (i, &word) in words.iter().enumerate() {
        if word == 0 {
            if cur_len == 0 {
                cur_base = i;
            }
            cur_len += 1;
            if cur_len > best_len {
                best_base = cur_base;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    if best_len < 2 {
        best_len = 0;
        best_base = usize::MAX;
    }
    let in_run = |i: usize| best_len > 0 && i >= best_base && i < best_base + best_len;
    for (i, &word) in words.iter().enumerate() {
        if in_run(i) {
            if i == best_base {
                f.write_char(':')?;
            }
            continue;
        }
        if i != 0 {
            f.write_char(':')?;
        }
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)) {
            let o = addr.octets();
            return write!(f, "{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
        }
        write!(f, "{word:x}")?;
    }
    if best_len > 0 && best_base + best_len == 8 {
        f.write_char(':')?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{
        Counters, DccpInfo, DccpState, FlowId, SctpInfo, SctpState, TcpInfo, TcpState,
    };
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, d))
    }

    fn line<S: AsRef<str>>(flow: &Flow<S>, options: TextOptions) -> String {
        let mut s = String::new();
        write_flow_at(
            &mut s,
            flow,
            options,
            UNIX_EPOCH + Duration::from_secs(1000),
        )
        .unwrap();
        s
    }

    fn base(orig: Tuple) -> Flow<&'static str> {
        Flow {
            orig,
            reply: orig.reversed(),
            status: Status::CONFIRMED,
            timeout: Some(3599),
            mark: Some(0),
            use_count: Some(1),
            id: Some(FlowId(2_703_245u32.to_be_bytes())),
            ..Flow::default()
        }
    }

    fn tcp_state(state: TcpState) -> Option<ProtoInfo> {
        Some(ProtoInfo::Tcp(TcpInfo {
            state: Some(state),
            ..TcpInfo::default()
        }))
    }

    #[test]
    fn tcp_assured_matches_conntrack() {
        let mut flow = base(Tuple::tcp((v4(1), 1111), (v4(2), 80)));
        flow.status |= Status::SEEN_REPLY | Status::ASSURED;
        flow.mark = Some(7);
        flow.protoinfo = tcp_state(TcpState::Established);
        flow.id = Some(FlowId(4_033_868_321u32.to_be_bytes()));
        assert_eq!(
            line(&flow, TextOptions::EXTENDED_ID),
            "ipv4     2 tcp      6 3599 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1111 dport=80 \
             src=10.0.0.2 dst=10.0.0.1 sport=80 dport=1111 [ASSURED] mark=7 use=1 id=4033868321"
        );
        assert_eq!(
            line(&flow, TextOptions::PLAIN),
            "tcp      6 3599 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1111 dport=80 \
             src=10.0.0.2 dst=10.0.0.1 sport=80 dport=1111 [ASSURED] mark=7 use=1"
        );
    }

    #[test]
    fn protocols_and_counters_match_conntrack() {
        let counters = Some(Counters {
            packets: 0,
            bytes: 0,
        });
        let ts = Some(Timestamp {
            start: Some(1000 * 1_000_000_000 + 5),
            stop: None,
        });
        let cases: Vec<(Tuple, &str)> = vec![
            (
                Tuple::icmp(v4(1), v4(2), 77, 8, 0),
                "ipv4     2 icmp     1 3599 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=77 packets=0 bytes=0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=77 packets=0 bytes=0 mark=0 delta-time=0 use=1 id=2703245",
            ),
            (
                Tuple::ports(proto::GRE, v4(1), 0x10, v4(2), 0x20),
                "ipv4     2 gre      47 3599 src=10.0.0.1 dst=10.0.0.2 srckey=0x10 dstkey=0x20 packets=0 bytes=0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 srckey=0x20 dstkey=0x10 packets=0 bytes=0 mark=0 delta-time=0 use=1 id=2703245",
            ),
            (
                Tuple::ports(proto::UDPLITE, v4(1), 1, v4(2), 2),
                "ipv4     2 udplite  136 3599 src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 packets=0 bytes=0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 packets=0 bytes=0 mark=0 delta-time=0 use=1 id=2703245",
            ),
            (
                Tuple::icmp("::1".parse().unwrap(), "::ffff:1.2.3.4".parse().unwrap(), 5, 128, 0),
                "ipv6     10 icmpv6   58 3599 src=::1 dst=::ffff:1.2.3.4 type=128 code=0 id=5 packets=0 bytes=0 [UNREPLIED] src=::ffff:1.2.3.4 dst=::1 type=129 code=0 id=5 packets=0 bytes=0 mark=0 delta-time=0 use=1 id=2703245",
            ),
            (
                Tuple::generic(253, v4(1), v4(2)),
                "ipv4     2 unknown  253 3599 src=10.0.0.1 dst=10.0.0.2 packets=0 bytes=0 [UNREPLIED] src=10.0.0.2 dst=10.0.0.1 packets=0 bytes=0 mark=0 delta-time=0 use=1 id=2703245",
            ),
        ];
        for (tuple, want) in cases {
            let mut flow = base(tuple);
            flow.counters_orig = counters;
            flow.counters_reply = counters;
            flow.timestamp = ts;
            assert_eq!(line(&flow, TextOptions::EXTENDED_ID), want);
        }
    }

    #[test]
    fn zones_states_and_strings() {
        let mut flow = base(Tuple::tcp(
            ("::1.2.3.4".parse::<IpAddr>().unwrap(), 1),
            ("fe80::1".parse::<IpAddr>().unwrap(), 2),
        ));
        flow.protoinfo = tcp_state(TcpState::SynSent);
        flow.zone = Some(5);
        assert_eq!(
            line(&flow, TextOptions::EXTENDED),
            "ipv6     10 tcp      6 3599 SYN_SENT src=::1.2.3.4 dst=fe80::1 sport=1 dport=2 [UNREPLIED] \
             src=fe80::1 dst=::1.2.3.4 sport=2 dport=1 mark=0 zone=5 use=1"
        );

        let mut flow = base(Tuple::udp((v4(1), 53), (v4(2), 53)));
        flow.zone = None;
        flow.orig.zone = Some(1);
        flow.reply.zone = Some(2);
        flow.helper = Some("ftp");
        flow.secctx = Some("system_u:object_r:unlabeled_t:s0");
        flow.status |= Status::SEEN_REPLY | Status::ASSURED | Status::OFFLOAD;
        flow.timeout = None;
        assert_eq!(
            line(&flow, TextOptions::PLAIN),
            "udp      17 src=10.0.0.1 dst=10.0.0.2 sport=53 dport=53 zone-orig=1 \
             src=10.0.0.2 dst=10.0.0.1 sport=53 dport=53 zone-reply=2 [OFFLOAD] mark=0 \
             secctx=system_u:object_r:unlabeled_t:s0 helper=ftp use=1"
        );
        flow.status |= Status::HW_OFFLOAD;
        assert!(line(&flow, TextOptions::PLAIN).contains(" [HW_OFFLOAD] mark=0 "));

        let mut sctp = base(Tuple::ports(proto::SCTP, v4(1), 1, v4(2), 2));
        for (raw, name) in [(4, "ESTABLISHED"), (8, "HEARTBEAT_SENT"), (10, "NONE")] {
            sctp.protoinfo = Some(ProtoInfo::Sctp(SctpInfo {
                state: Some(SctpState::from_raw(raw)),
                vtag_orig: Some(5),
                vtag_reply: None,
            }));
            assert!(line(&sctp, TextOptions::PLAIN)
                .starts_with(&format!("sctp     132 3599 {name} src=10.0.0.1")));
        }
        let mut tcp = base(Tuple::tcp((v4(1), 1), (v4(2), 2)));
        tcp.protoinfo = tcp_state(TcpState::from_raw(42));
        assert!(line(&tcp, TextOptions::PLAIN).starts_with("tcp      6 3599 NONE src="));
        tcp.protoinfo = Some(ProtoInfo::Tcp(TcpInfo::default()));
        assert!(line(&tcp, TextOptions::PLAIN).starts_with("tcp      6 3599 src="));
        let mut dccp = base(Tuple::ports(proto::DCCP, v4(1), 1, v4(2), 2));
        dccp.protoinfo = Some(ProtoInfo::Dccp(DccpInfo {
            state: Some(DccpState::PartOpen),
            ..DccpInfo::default()
        }));
        assert!(line(&dccp, TextOptions::PLAIN).starts_with("dccp     33 3599 PARTOPEN src="));
    }

    #[test]
    fn delta_time_uses_stop_or_now_and_wraps() {
        let mut flow = base(Tuple::generic(253, v4(1), v4(2)));
        flow.timestamp = Some(Timestamp {
            start: Some(990 * 1_000_000_000 + 999_999_999),
            stop: None,
        });
        assert!(line(&flow, TextOptions::PLAIN).contains(" delta-time=10 "));
        flow.timestamp = Some(Timestamp {
            start: Some(990 * 1_000_000_000),
            stop: Some(995 * 1_000_000_000),
        });
        assert!(line(&flow, TextOptions::PLAIN).contains(" delta-time=5 "));
        flow.timestamp = Some(Timestamp {
            start: Some(2000 * 1_000_000_000),
            stop: None,
        });
        assert!(line(&flow, TextOptions::PLAIN).contains(" delta-time=18446744073709550616 "));
        flow.timestamp = Some(Timestamp {
            start: None,
            stop: Some(1),
        });
        assert!(!line(&flow, TextOptions::PLAIN).contains("delta-time"));
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_millis(1500)), -2);
    }

    #[test]
    fn ipv6_text_matches_inet_ntop() {
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::0.1.0.0", "::0.1.0.0"),
            ("::0.0.1.2", "::102"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::ffff:0:0", "::ffff:0.0.0.0"),
            ("0:0:0:0:1:ffff:1.2.3.4", "::1:ffff:102:304"),
            ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
            ("fe80::1:2", "fe80::1:2"),
            (
                "2001:db8:abcd:12:ffff:ffff:ffff:ffff",
                "2001:db8:abcd:12:ffff:ffff:ffff:ffff",
            ),
            ("64:ff9b::1.2.3.4", "64:ff9b::102:304"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("::2:0:0", "::2:0:0"),
        ];
        for (input, want) in cases {
            let addr: Ipv6Addr = input.parse().unwrap();
            let mut s = String::new();
            write_ipv6(&mut s, &addr).unwrap();
            assert_eq!(s, want, "{input}");
        }
    }

    #[test]
    fn labels_match_conntrack_o_labels() {
        // Captured from conntrack-tools 1.4.7 (`conntrack -L -o
        // extended,id,labels`) with connlabel.conf "0 blocked\n5 audited\n70 far\n"
        // and bits 0, 5, 70 and 127 set (127 has no name).
        let map = LabelMap::parse("0 blocked\n5 audited\n70 far\n", "test").unwrap();
        let mut flow = base(Tuple::tcp((v4(1), 1), (v4(2), 2)));
        flow.status |= Status::SEEN_REPLY | Status::ASSURED;
        flow.protoinfo = tcp_state(TcpState::Established);
        flow.timeout = Some(99);
        flow.id = Some(FlowId(1_870_812_063u32.to_be_bytes()));
        flow.labels = Some(Labels::default().with(0).with(5).with(70).with(127));
        let at = UNIX_EPOCH + Duration::from_secs(1000);
        let show = |flow: &Flow<&str>, map: &LabelMap, options| {
            display(flow, options).labels(map).at(at).to_string()
        };
        assert_eq!(
            show(&flow, &map, TextOptions::EXTENDED_ID),
            "ipv4     2 tcp      6 99 ESTABLISHED src=10.0.0.1 dst=10.0.0.2 sport=1 dport=2 \
             src=10.0.0.2 dst=10.0.0.1 sport=2 dport=1 [ASSURED] mark=0 use=1 id=1870812063 \
             labels=blocked,audited,far"
        );
        assert!(
            show(&flow, &map, TextOptions::PLAIN).ends_with(" use=1 labels=blocked,audited,far")
        );
        // No set bit has a name: conntrack prints the bare word.
        flow.labels = Some(Labels::default().with(127).with(9));
        assert!(show(&flow, &map, TextOptions::EXTENDED).ends_with(" mark=0 use=1 labels"));
        // No names at all (no connlabel.conf): no field, as conntrack.
        let none = LabelMap::default();
        assert!(show(&flow, &none, TextOptions::EXTENDED).ends_with(" mark=0 use=1"));
        // No labels on the flow (the kernel sends none when all are clear).
        flow.labels = None;
        assert!(show(&flow, &map, TextOptions::EXTENDED).ends_with(" use=1"));
        assert!(display(&flow, TextOptions::EXTENDED)
            .label_bits()
            .to_string()
            .ends_with(" use=1"));
        // Bit numbers: every set bit.
        flow.labels = Some(Labels::default().with(0).with(127).with(64));
        assert!(display(&flow, TextOptions::EXTENDED_ID)
            .label_bits()
            .to_string()
            .ends_with(" id=1870812063 labels=0,64,127"));
        flow.labels = Some(Labels::default());
        assert!(display(&flow, TextOptions::PLAIN)
            .label_bits()
            .to_string()
            .ends_with(" use=1 labels"));
        // Without a label mode, nothing, as conntrack without -o labels.
        assert!(line(&flow, TextOptions::EXTENDED_ID).ends_with(" id=1870812063"));
    }

    #[test]
    fn display_and_owned_flows_agree() {
        let mut flow = base(Tuple::udp((v4(1), 53), (v4(2), 53))).to_owned_flow();
        flow.helper = Some("tftp".to_string());
        let mut direct = String::new();
        write_flow(&mut direct, &flow, TextOptions::EXTENDED_ID).unwrap();
        assert_eq!(display(&flow, TextOptions::EXTENDED_ID).to_string(), direct);
        assert!(direct.ends_with("helper=tftp use=1 id=2703245"));
        assert_eq!(family_name(AF_INET6), "ipv6");
        assert_eq!(family_name(7), "unknown");
    }
}
