// SPDX-License-Identifier: MIT OR Apache-2.0
//! Every per-protocol timeout of one namespace, and the timeout the kernel arms for a flow.

use std::fmt;
use std::time::Duration;

use super::Timeout;
use crate::flow::{proto, Flow, ProtoInfo, SctpState, TcpState};
use crate::status::Status;

/// `SYN_SENT2` (simultaneous open) has no sysctl: `tcp_timeouts[]` keeps 2 minutes.
const TCP_SYN_SENT2: Duration = Duration::from_secs(120);

/// The per-protocol timeouts of one network namespace, read in one call
/// ([`Sysctl::timeouts`](super::Sysctl::timeouts)).
///
/// Answers "what timeout does the kernel arm for a flow of this protocol in this
/// state" ([`configured`](Timeouts::configured), [`for_flow`](Timeouts::for_flow)),
/// which orphan detection needs: a flow's idle time is that configured timeout minus
/// the remaining `CTA_TIMEOUT` ([`idle`](Timeouts::idle)). A timeout is `None` when
/// this kernel has no such sysctl.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeouts {
    seconds: [Option<u32>; Timeout::COUNT],
}

impl Default for Timeouts {
    /// The kernel defaults ([`Timeouts::kernel_defaults`]).
    fn default() -> Self {
        Timeouts::kernel_defaults()
    }
}

impl Timeouts {
    /// The kernel's defaults (6.18), as a new namespace starts with.
    pub fn kernel_defaults() -> Self {
        let mut timeouts = Timeouts::none();
        for timeout in Timeout::ALL {
            timeouts.set(*timeout, timeout.default_value());
        }
        timeouts
    }

    /// No timeout known.
    pub fn none() -> Self {
        Timeouts {
            seconds: [None; Timeout::COUNT],
        }
    }

    /// One timeout (`None` if the kernel has no such sysctl).
    pub fn get(&self, timeout: Timeout) -> Option<Duration> {
        self.seconds[timeout.index()].map(|s| Duration::from_secs(u64::from(s)))
    }

    /// One timeout in whole seconds.
    pub fn seconds(&self, timeout: Timeout) -> Option<u32> {
        self.seconds[timeout.index()]
    }

    /// Sets one timeout (whole seconds, saturating at `u32::MAX`).
    pub fn set(&mut self, timeout: Timeout, value: Duration) {
        self.seconds[timeout.index()] = Some(u32::try_from(value.as_secs()).unwrap_or(u32::MAX));
    }

    pub(crate) fn set_seconds(&mut self, timeout: Timeout, seconds: Option<u32>) {
        self.seconds[timeout.index()] = seconds;
    }

    /// Every timeout with its value, in [`Timeout::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Timeout, Option<Duration>)> + '_ {
        Timeout::ALL.iter().map(move |t| (*t, self.get(*t)))
    }

    /// The timeout of a TCP state (`tcp_timeouts[state]`); `None` for `NONE` and unknown states.
    pub fn tcp(&self, state: TcpState) -> Option<Duration> {
        let timeout = match state {
            TcpState::SynSent => Timeout::TcpSynSent,
            TcpState::SynRecv => Timeout::TcpSynRecv,
            TcpState::Established => Timeout::TcpEstablished,
            TcpState::FinWait => Timeout::TcpFinWait,
            TcpState::CloseWait => Timeout::TcpCloseWait,
            TcpState::LastAck => Timeout::TcpLastAck,
            TcpState::TimeWait => Timeout::TcpTimeWait,
            TcpState::Close => Timeout::TcpClose,
            TcpState::SynSent2 => return Some(TCP_SYN_SENT2),
            _ => return None,
        };
        self.get(timeout)
    }

    /// The timeout of an SCTP state; `None` for `NONE`, the unused `HEARTBEAT_ACKED`
    /// (folded into `ESTABLISHED` since 6.2) and unknown states.
    pub fn sctp(&self, state: SctpState) -> Option<Duration> {
        let timeout = match state {
            SctpState::Closed => Timeout::SctpClosed,
            SctpState::CookieWait => Timeout::SctpCookieWait,
            SctpState::CookieEchoed => Timeout::SctpCookieEchoed,
            SctpState::Established => Timeout::SctpEstablished,
            SctpState::ShutdownSent => Timeout::SctpShutdownSent,
            SctpState::ShutdownRecd => Timeout::SctpShutdownRecd,
            SctpState::ShutdownAckSent => Timeout::SctpShutdownAckSent,
            SctpState::HeartbeatSent => Timeout::SctpHeartbeatSent,
            _ => return None,
        };
        self.get(timeout)
    }

    /// The timeout the kernel arms on each accepted packet of a flow with this
    /// protocol, protocol state and status:
    ///
    /// | protocol | timeout |
    /// |---|---|
    /// | TCP | the state's; `ESTABLISHED` without `SEEN_REPLY` is capped at `unacknowledged` (`tcp_packet`) |
    /// | SCTP | the state's |
    /// | UDP, UDP-Lite | `udp_timeout_stream` once `ASSURED`, else `udp_timeout` |
    /// | GRE | `gre_timeout_stream` once `SEEN_REPLY`, else `gre_timeout` |
    /// | ICMP / ICMPv6 | `icmp_timeout` / `icmpv6_timeout` |
    /// | DCCP | `None` (no sysctl read here; the tracker is gone from recent kernels) |
    /// | anything else | `generic_timeout` |
    ///
    /// `None` for TCP/SCTP without a known state. The TCP tracker arms the shorter
    /// `unacknowledged`/`max_retrans` timeouts instead while data is unacknowledged,
    /// after retransmits or on a zero window; [`idle`](Timeouts::idle) accounts for that.
    pub fn configured(
        &self,
        protocol: u8,
        protoinfo: Option<&ProtoInfo>,
        status: Status,
    ) -> Option<Duration> {
        match protocol {
            proto::TCP => {
                let state = match protoinfo {
                    Some(ProtoInfo::Tcp(info)) => info.state?,
                    _ => return None,
                };
                let timeout = self.tcp(state)?;
                if state == TcpState::Established && !status.seen_reply() {
                    if let Some(unack) = self.get(Timeout::TcpUnacknowledged) {
                        return Some(timeout.min(unack));
                    }
                }
                Some(timeout)
            }
            proto::SCTP => match protoinfo {
                Some(ProtoInfo::Sctp(info)) => self.sctp(info.state?),
                _ => None,
            },
            proto::UDP | proto::UDPLITE => self.get(if status.assured() {
                Timeout::UdpStream
            } else {
                Timeout::Udp
            }),
            proto::GRE => self.get(if status.seen_reply() {
                Timeout::GreStream
            } else {
                Timeout::Gre
            }),
            proto::ICMP => self.get(Timeout::Icmp),
            proto::ICMPV6 => self.get(Timeout::Icmpv6),
            proto::DCCP => None,
            _ => self.get(Timeout::Generic),
        }
    }

    /// [`configured`](Timeouts::configured) for a flow; `None` where a configured
    /// timeout says nothing about the flow: `FIXED_TIMEOUT` (packets do not refresh
    /// it) and offloaded flows (the flowtable owns them).
    ///
    /// Per-flow timeout policies (`nft ct timeout`, the CT target) override the
    /// sysctls and are not visible in a dump; pass such flows through your own logic.
    pub fn for_flow<S>(&self, flow: &Flow<S>) -> Option<Duration> {
        if flow.status.fixed_timeout() || flow.status.offload() {
            return None;
        }
        self.configured(flow.protocol(), flow.protoinfo.as_ref(), flow.status)
    }

    /// Estimated time since the flow's last accepted packet: configured timeout minus
    /// the remaining one (`CTA_TIMEOUT`, whole seconds, so the estimate may be up to
    /// one second high). Zero when the remaining time exceeds the configured one (the
    /// sysctl was lowered after the last packet).
    ///
    /// `None` when it cannot be told: no configured timeout ([`for_flow`](Timeouts::for_flow)),
    /// no remaining timeout, or a TCP flow whose remaining time is within the shorter
    /// `unacknowledged`/`max_retrans` timeouts that the kernel may have armed instead
    /// of the state's (unacknowledged data, retransmits, zero window): a 5-day
    /// `ESTABLISHED` flow with 200 s left may be idle for 5 days or busy with unacked data.
    pub fn idle<S>(&self, flow: &Flow<S>) -> Option<Duration> {
        let configured = self.for_flow(flow)?;
        let remaining = Duration::from_secs(u64::from(flow.timeout?));
        if flow.protocol() == proto::TCP {
            let shorter = [Timeout::TcpUnacknowledged, Timeout::TcpMaxRetrans]
                .iter()
                .filter_map(|t| self.get(*t))
                .filter(|t| *t < configured)
                .max();
            if let Some(shorter) = shorter {
                if remaining <= shorter {
                    return None;
                }
            }
        }
        Some(configured.saturating_sub(remaining))
    }
}

impl fmt::Display for Timeouts {
    /// One `name = seconds` line per timeout (`absent` when the kernel has none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (timeout, value) in self.iter() {
            match value {
                Some(value) => writeln!(f, "{} = {}", timeout.name(), value.as_secs())?,
                None => writeln!(f, "{} = absent", timeout.name())?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{SctpInfo, TcpInfo, Tuple};
    use std::net::Ipv4Addr;

    fn tcp_flow(state: TcpState, status: Status, remaining: u32) -> Flow {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let orig = Tuple::tcp((a, 1000), (b, 80));
        Flow {
            orig,
            reply: orig.reversed(),
            status,
            timeout: Some(remaining),
            protoinfo: Some(ProtoInfo::Tcp(TcpInfo {
                state: Some(state),
                ..TcpInfo::default()
            })),
            ..Flow::default()
        }
    }

    #[test]
    fn kernel_defaults() {
        let t = Timeouts::kernel_defaults();
        assert_eq!(
            t.tcp(TcpState::Established),
            Some(Duration::from_secs(432_000))
        );
        assert_eq!(t.tcp(TcpState::SynSent2), Some(Duration::from_secs(120)));
        assert_eq!(t.tcp(TcpState::None), None);
        assert_eq!(
            t.sctp(SctpState::Established),
            Some(Duration::from_secs(210))
        );
        assert_eq!(t.sctp(SctpState::HeartbeatAcked), None);
        assert_eq!(t.get(Timeout::GreStream), Some(Duration::from_secs(180)));
        assert!(t.iter().all(|(_, v)| v.is_some()));
    }

    #[test]
    fn configured_follows_the_trackers() {
        let t = Timeouts::kernel_defaults();
        let replied = Status::SEEN_REPLY | Status::CONFIRMED;
        let assured = replied | Status::ASSURED;
        let secs = |d: Option<Duration>| d.map(|d| d.as_secs());
        let tcp = |s| {
            ProtoInfo::Tcp(TcpInfo {
                state: Some(s),
                ..TcpInfo::default()
            })
        };
        assert_eq!(
            secs(t.configured(proto::TCP, Some(&tcp(TcpState::Established)), assured)),
            Some(432_000)
        );
        // Picked up mid-stream, no reply yet: capped at `unacknowledged`.
        assert_eq!(
            secs(t.configured(
                proto::TCP,
                Some(&tcp(TcpState::Established)),
                Status::CONFIRMED
            )),
            Some(300)
        );
        assert_eq!(secs(t.configured(proto::TCP, None, assured)), None);
        assert_eq!(
            secs(t.configured(proto::UDP, None, Status::CONFIRMED)),
            Some(30)
        );
        assert_eq!(secs(t.configured(proto::UDP, None, replied)), Some(30));
        assert_eq!(secs(t.configured(proto::UDP, None, assured)), Some(120));
        assert_eq!(secs(t.configured(proto::UDPLITE, None, assured)), Some(120));
        assert_eq!(
            secs(t.configured(proto::GRE, None, Status::CONFIRMED)),
            Some(30)
        );
        assert_eq!(secs(t.configured(proto::GRE, None, replied)), Some(180));
        assert_eq!(secs(t.configured(proto::ICMP, None, replied)), Some(30));
        assert_eq!(secs(t.configured(proto::ICMPV6, None, replied)), Some(30));
        assert_eq!(secs(t.configured(proto::DCCP, None, replied)), None);
        assert_eq!(secs(t.configured(112, None, replied)), Some(600));
        let sctp = ProtoInfo::Sctp(SctpInfo {
            state: Some(SctpState::CookieWait),
            ..SctpInfo::default()
        });
        assert_eq!(
            secs(t.configured(proto::SCTP, Some(&sctp), replied)),
            Some(3)
        );
    }

    #[test]
    fn idle_estimate_and_its_limits() {
        let mut t = Timeouts::kernel_defaults();
        let assured = Status::SEEN_REPLY | Status::CONFIRMED | Status::ASSURED;
        let flow = tcp_flow(TcpState::Established, assured, 431_995);
        assert_eq!(t.idle(&flow), Some(Duration::from_secs(5)));
        // Within the UNACK/RETRANS window: cannot tell which timeout was armed.
        let flow = tcp_flow(TcpState::Established, assured, 200);
        assert_eq!(t.idle(&flow), None);
        // TIME_WAIT (120 s) is shorter than UNACK: the state's timeout is certain.
        let flow = tcp_flow(TcpState::TimeWait, assured, 100);
        assert_eq!(t.idle(&flow), Some(Duration::from_secs(20)));
        // Fixed timeouts say nothing about activity.
        let flow = tcp_flow(
            TcpState::Established,
            assured | Status::FIXED_TIMEOUT,
            431_000,
        );
        assert_eq!(t.idle(&flow), None);
        // Sysctl lowered after the last packet: clamp at zero.
        t.set(Timeout::TcpEstablished, Duration::from_secs(400_000));
        let flow = tcp_flow(TcpState::Established, assured, 431_000);
        assert_eq!(t.idle(&flow), Some(Duration::ZERO));
    }
}
