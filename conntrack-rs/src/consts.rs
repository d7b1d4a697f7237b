// SPDX-License-Identifier: MIT OR Apache-2.0
//! Kernel constants, named once with their C names and the header they come from.
//!
//! Everything here mirrors the Linux UAPI (6.18) so that code elsewhere can be
//! read side by side with `net/netfilter/nf_conntrack_netlink.c`.

#![allow(missing_docs)] // each constant is its C name; the header is documented per block

// include/uapi/linux/netlink.h
pub const NETLINK_NETFILTER: isize = 12;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const NLMSG_OVERRUN: u16 = 4;
pub const NLMSG_HDRLEN: usize = 16;
pub const NLA_HDRLEN: usize = 4;
pub const NLA_TYPE_MASK: u16 = 0x3fff;
pub const NLA_F_NESTED: u16 = 0x8000;
pub const NLMSGERR_ATTR_MSG: u16 = 1;
pub const NLMSGERR_ATTR_OFFS: u16 = 2;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP_INTR: u16 = 0x10;
pub const NLM_F_DUMP_FILTERED: u16 = 0x20;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
/// In an NLMSG_ERROR reply: extended-ack TLVs follow the echoed request.
pub const NLM_F_ACK_TLVS: u16 = 0x200;
/// In an NLMSG_ERROR reply: the echoed request was capped to its header.
pub const NLM_F_CAPPED: u16 = 0x100;

// include/uapi/linux/netfilter/nfnetlink.h
pub const NFNL_SUBSYS_CTNETLINK: u16 = 1;
/// `NFNL_SUBSYS_CTNETLINK_EXP`: the expectation table.
pub const NFNL_SUBSYS_CTNETLINK_EXP: u16 = 2;
pub const NFNETLINK_V0: u8 = 0;
pub const NFGENMSG_LEN: usize = 4;

// include/uapi/linux/socket.h / linux/netfilter.h
pub const AF_UNSPEC: u8 = 0;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;

// include/uapi/linux/netfilter/nfnetlink_conntrack.h: enum cntl_msg_types
pub const IPCTNL_MSG_CT_NEW: u8 = 0;
pub const IPCTNL_MSG_CT_GET: u8 = 1;
pub const IPCTNL_MSG_CT_DELETE: u8 = 2;
pub const IPCTNL_MSG_CT_GET_CTRZERO: u8 = 3;
pub const IPCTNL_MSG_CT_GET_STATS_CPU: u8 = 4;
pub const IPCTNL_MSG_CT_GET_STATS: u8 = 5;
/// `IPCTNL_MSG_CT_GET_DYING`: dump the dying list (flows whose destroy event is pending).
pub const IPCTNL_MSG_CT_GET_DYING: u8 = 6;
/// `IPCTNL_MSG_CT_GET_UNCONFIRMED`: dump the unconfirmed list.
pub const IPCTNL_MSG_CT_GET_UNCONFIRMED: u8 = 7;

// enum ctattr_type
pub const CTA_TUPLE_ORIG: u16 = 1;
pub const CTA_TUPLE_REPLY: u16 = 2;
pub const CTA_STATUS: u16 = 3;
pub const CTA_PROTOINFO: u16 = 4;
pub const CTA_HELP: u16 = 5;
pub const CTA_NAT_SRC: u16 = 6;
pub const CTA_TIMEOUT: u16 = 7;
pub const CTA_MARK: u16 = 8;
pub const CTA_COUNTERS_ORIG: u16 = 9;
pub const CTA_COUNTERS_REPLY: u16 = 10;
pub const CTA_USE: u16 = 11;
pub const CTA_ID: u16 = 12;
pub const CTA_NAT_DST: u16 = 13;
pub const CTA_TUPLE_MASTER: u16 = 14;
pub const CTA_SEQ_ADJ_ORIG: u16 = 15;
pub const CTA_SEQ_ADJ_REPLY: u16 = 16;
pub const CTA_SECMARK: u16 = 17;
pub const CTA_ZONE: u16 = 18;
pub const CTA_SECCTX: u16 = 19;
pub const CTA_TIMESTAMP: u16 = 20;
pub const CTA_MARK_MASK: u16 = 21;
pub const CTA_LABELS: u16 = 22;
pub const CTA_LABELS_MASK: u16 = 23;
pub const CTA_SYNPROXY: u16 = 24;
pub const CTA_FILTER: u16 = 25;
pub const CTA_STATUS_MASK: u16 = 26;
pub const CTA_TIMESTAMP_EVENT: u16 = 27;
/// One past the highest `ctattr_type` this library knows.
pub const CTA_MAX_KNOWN: usize = 28;

// enum ctattr_tuple
pub const CTA_TUPLE_IP: u16 = 1;
pub const CTA_TUPLE_PROTO: u16 = 2;
pub const CTA_TUPLE_ZONE: u16 = 3;

// enum ctattr_nat (nested in CTA_NAT_SRC / CTA_NAT_DST)
pub const CTA_NAT_V4_MINIP: u16 = 1;
pub const CTA_NAT_V4_MAXIP: u16 = 2;
pub const CTA_NAT_PROTO: u16 = 3;
pub const CTA_NAT_V6_MINIP: u16 = 4;
pub const CTA_NAT_V6_MAXIP: u16 = 5;

// enum ctattr_protonat (nested in CTA_NAT_PROTO)
pub const CTA_PROTONAT_PORT_MIN: u16 = 1;
pub const CTA_PROTONAT_PORT_MAX: u16 = 2;

// enum ctattr_ip
pub const CTA_IP_V4_SRC: u16 = 1;
pub const CTA_IP_V4_DST: u16 = 2;
pub const CTA_IP_V6_SRC: u16 = 3;
pub const CTA_IP_V6_DST: u16 = 4;

// enum ctattr_l4proto
pub const CTA_PROTO_NUM: u16 = 1;
pub const CTA_PROTO_SRC_PORT: u16 = 2;
pub const CTA_PROTO_DST_PORT: u16 = 3;
pub const CTA_PROTO_ICMP_ID: u16 = 4;
pub const CTA_PROTO_ICMP_TYPE: u16 = 5;
pub const CTA_PROTO_ICMP_CODE: u16 = 6;
pub const CTA_PROTO_ICMPV6_ID: u16 = 7;
pub const CTA_PROTO_ICMPV6_TYPE: u16 = 8;
pub const CTA_PROTO_ICMPV6_CODE: u16 = 9;

// enum ctattr_protoinfo
pub const CTA_PROTOINFO_TCP: u16 = 1;
pub const CTA_PROTOINFO_DCCP: u16 = 2;
pub const CTA_PROTOINFO_SCTP: u16 = 3;

// enum ctattr_protoinfo_tcp
pub const CTA_PROTOINFO_TCP_STATE: u16 = 1;
pub const CTA_PROTOINFO_TCP_WSCALE_ORIGINAL: u16 = 2;
pub const CTA_PROTOINFO_TCP_WSCALE_REPLY: u16 = 3;
pub const CTA_PROTOINFO_TCP_FLAGS_ORIGINAL: u16 = 4;
pub const CTA_PROTOINFO_TCP_FLAGS_REPLY: u16 = 5;

// enum ctattr_protoinfo_dccp
pub const CTA_PROTOINFO_DCCP_STATE: u16 = 1;
pub const CTA_PROTOINFO_DCCP_ROLE: u16 = 2;
pub const CTA_PROTOINFO_DCCP_HANDSHAKE_SEQ: u16 = 3;

// enum ctattr_protoinfo_sctp
pub const CTA_PROTOINFO_SCTP_STATE: u16 = 1;
pub const CTA_PROTOINFO_SCTP_VTAG_ORIGINAL: u16 = 2;
pub const CTA_PROTOINFO_SCTP_VTAG_REPLY: u16 = 3;

// enum ctattr_counters
pub const CTA_COUNTERS_PACKETS: u16 = 1;
pub const CTA_COUNTERS_BYTES: u16 = 2;
pub const CTA_COUNTERS32_PACKETS: u16 = 3;
pub const CTA_COUNTERS32_BYTES: u16 = 4;

// enum ctattr_tstamp
pub const CTA_TIMESTAMP_START: u16 = 1;
pub const CTA_TIMESTAMP_STOP: u16 = 2;

// enum ctattr_seqadj
pub const CTA_SEQADJ_CORRECTION_POS: u16 = 1;
pub const CTA_SEQADJ_OFFSET_BEFORE: u16 = 2;
pub const CTA_SEQADJ_OFFSET_AFTER: u16 = 3;

// enum ctattr_help
pub const CTA_HELP_NAME: u16 = 1;
pub const CTA_HELP_INFO: u16 = 2;

// enum ctattr_secctx
pub const CTA_SECCTX_NAME: u16 = 1;

// enum ctattr_synproxy
pub const CTA_SYNPROXY_ISN: u16 = 1;
pub const CTA_SYNPROXY_ITS: u16 = 2;
pub const CTA_SYNPROXY_TSOFF: u16 = 3;

// enum ctattr_stats_global
pub const CTA_STATS_GLOBAL_ENTRIES: u16 = 1;
pub const CTA_STATS_GLOBAL_MAX_ENTRIES: u16 = 2;

// enum ctattr_stats_cpu
pub const CTA_STATS_SEARCHED: u16 = 1;
pub const CTA_STATS_FOUND: u16 = 2;
pub const CTA_STATS_NEW: u16 = 3;
pub const CTA_STATS_INVALID: u16 = 4;
pub const CTA_STATS_IGNORE: u16 = 5;
pub const CTA_STATS_DELETE: u16 = 6;
pub const CTA_STATS_DELETE_LIST: u16 = 7;
pub const CTA_STATS_INSERT: u16 = 8;
pub const CTA_STATS_INSERT_FAILED: u16 = 9;
pub const CTA_STATS_DROP: u16 = 10;
pub const CTA_STATS_EARLY_DROP: u16 = 11;
pub const CTA_STATS_ERROR: u16 = 12;
pub const CTA_STATS_SEARCH_RESTART: u16 = 13;
pub const CTA_STATS_CLASH_RESOLVE: u16 = 14;
pub const CTA_STATS_CHAIN_TOOLONG: u16 = 15;

// include/uapi/linux/in.h
pub const IPPROTO_ICMP: u8 = 1;
pub const IPPROTO_TCP: u8 = 6;
pub const IPPROTO_UDP: u8 = 17;
pub const IPPROTO_DCCP: u8 = 33;
pub const IPPROTO_GRE: u8 = 47;
pub const IPPROTO_ICMPV6: u8 = 58;
pub const IPPROTO_SCTP: u8 = 132;
pub const IPPROTO_UDPLITE: u8 = 136;

// enum cntl_msg_exp_types
/// `IPCTNL_MSG_EXP_NEW`: create an expectation (dump replies carry this type too).
pub const IPCTNL_MSG_EXP_NEW: u8 = 0;
/// `IPCTNL_MSG_EXP_GET`: get one expectation, or dump them.
pub const IPCTNL_MSG_EXP_GET: u8 = 1;
/// `IPCTNL_MSG_EXP_DELETE`: delete one expectation, those of a helper, or all.
pub const IPCTNL_MSG_EXP_DELETE: u8 = 2;
/// `IPCTNL_MSG_EXP_GET_STATS_CPU`: per-CPU expectation counters.
pub const IPCTNL_MSG_EXP_GET_STATS_CPU: u8 = 3;

// enum ctattr_expect
pub const CTA_EXPECT_MASTER: u16 = 1;
pub const CTA_EXPECT_TUPLE: u16 = 2;
pub const CTA_EXPECT_MASK: u16 = 3;
pub const CTA_EXPECT_TIMEOUT: u16 = 4;
pub const CTA_EXPECT_ID: u16 = 5;
pub const CTA_EXPECT_HELP_NAME: u16 = 6;
pub const CTA_EXPECT_ZONE: u16 = 7;
pub const CTA_EXPECT_FLAGS: u16 = 8;
pub const CTA_EXPECT_CLASS: u16 = 9;
pub const CTA_EXPECT_NAT: u16 = 10;
pub const CTA_EXPECT_FN: u16 = 11;
// enum ctattr_expect_nat
pub const CTA_EXPECT_NAT_DIR: u16 = 1;
pub const CTA_EXPECT_NAT_TUPLE: u16 = 2;
// enum ctattr_expect_stats
pub const CTA_STATS_EXP_NEW: u16 = 1;
pub const CTA_STATS_EXP_CREATE: u16 = 2;
pub const CTA_STATS_EXP_DELETE: u16 = 3;

/// Message type of a ctnetlink message: `(NFNL_SUBSYS_CTNETLINK << 8) | msg`.
pub const fn ct_msg_type(msg: u8) -> u16 {
    (NFNL_SUBSYS_CTNETLINK << 8) | msg as u16
}

/// Message type of an expectation message: `(NFNL_SUBSYS_CTNETLINK_EXP << 8) | msg`.
pub const fn exp_msg_type(msg: u8) -> u16 {
    (NFNL_SUBSYS_CTNETLINK_EXP << 8) | msg as u16
}
