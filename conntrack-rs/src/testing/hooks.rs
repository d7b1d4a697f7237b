// SPDX-License-Identifier: MIT OR Apache-2.0
//! Points inside the library where a test can act at an exact moment, to make
//! races deterministic. Each hook is per thread: it fires only inside calls
//! made on the thread that set it, so tests running in parallel do not see
//! each other's hooks.

use std::cell::RefCell;

use crate::flow::Tuple;

/// A hook: called with the tuples the library is about to act on.
pub type Hook = Box<dyn FnMut(&[Tuple])>;

thread_local! {
    static BEFORE_ORPHAN_RECHECK: RefCell<Option<Hook>> = const { RefCell::new(None) };
}

/// Sets (or with `None` clears) the hook that
/// [`Conntrack::delete_orphans`](crate::Conntrack::delete_orphans) calls on
/// this thread after it read the socket tables and before it re-checks and
/// deletes the confirmed orphans, with their original tuples: a test opens a
/// connection there to play "a socket created between the reads".
pub fn before_orphan_recheck(hook: Option<Hook>) {
    BEFORE_ORPHAN_RECHECK.with(|h| *h.borrow_mut() = hook);
}

/// Calls the hook of this thread, if one is set, with the tuples `tuples`
/// makes (only then: without a hook nothing is collected).
pub(crate) fn fire_before_orphan_recheck(tuples: impl FnOnce() -> Vec<Tuple>) {
    BEFORE_ORPHAN_RECHECK.with(|h| {
        if let Some(hook) = h.borrow_mut().as_mut() {
            hook(&tuples());
        }
    });
}
