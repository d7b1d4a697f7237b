// SPDX-License-Identifier: MIT OR Apache-2.0
//! The idle library handles of one namespace, shared by a `conntrack.Conntrack`
//! object ([`crate::handle`]) and the dumps and event streams it starts
//! ([`crate::dump`], [`crate::events`]), which take a handle of their own and
//! give it back when they end. Below all three, so they point one way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use conntrack::{Conntrack, Netns};

/// Idle handles a pool keeps: enough for a few threads taking turns; the
/// sockets of a burst of concurrent calls beyond that are closed when the
/// calls end.
const MAX_IDLE: usize = 4;

/// Idle library handles of one namespace.
pub(crate) struct Pool {
    netns: Netns,
    idle: Mutex<Vec<Conntrack>>,
    closed: AtomicBool,
}

impl Pool {
    /// A pool of `netns`'s handles holding `first`, idle.
    pub(crate) fn new(netns: Netns, first: Conntrack) -> Self {
        Pool {
            netns,
            idle: Mutex::new(vec![first]),
            closed: AtomicBool::new(false),
        }
    }

    /// An idle handle, or a new one if all are busy.
    pub(crate) fn take(&self) -> conntrack::Result<Conntrack> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match idle {
            Some(ct) => Ok(ct),
            None => Conntrack::open_in(&self.netns),
        }
    }

    /// Returns a handle (dropped instead once the pool is closed or holds
    /// [`MAX_IDLE`] idle ones already).
    pub(crate) fn put(&self, ct: Conntrack) {
        if !self.closed.load(Ordering::Acquire) {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(ct);
            }
        }
    }

    /// True after [`close`](Pool::close).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The namespace of the pool's handles.
    pub(crate) fn netns(&self) -> &Netns {
        &self.netns
    }

    /// Drops the idle handles and refuses returned ones from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
