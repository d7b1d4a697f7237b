// SPDX-License-Identifier: MIT OR Apache-2.0
//! The borrowed dump path makes no heap allocation per flow, measured on a
//! real dump of 120 000 flows with a counting global allocator (its own test
//! binary, so the allocator counts nothing else; only the thread that runs the
//! dump is counted).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use common::ScratchNs;
use conntrack::testing::mix::create_mixed;
use conntrack::Prefetch;

/// Counts allocations (and reallocations) made by threads that asked for it.
struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // `const`-initialised and without a destructor: reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn note_allocation() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards every call to the system allocator unchanged; the
// bookkeeping only touches an atomic and a const thread-local.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Allocations made by `f` on this thread.
fn allocations_during<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let result = f();
    COUNTING.with(|c| c.set(false));
    (result, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

const FLOWS: u32 = 120_000;

#[test]
fn borrowed_dump_of_120k_flows_allocates_nothing_per_flow() {
    require_root!();
    let ns = ScratchNs::new("alloc");
    let mut ct = ns.conntrack();
    create_mixed(&mut ct, 0..FLOWS);
    assert_eq!(ct.count().unwrap(), FLOWS);
    // Leave nothing lazily initialised for the measured dump to set up.
    let mut dump = ct.dump().unwrap();
    while let Some(flow) = dump.next_flow() {
        flow.unwrap();
    }
    drop(dump);

    // Both ways of receiving: on this thread, and on a prefetch thread (whose
    // own allocations, the receive buffers, are not counted: the counter is
    // per thread; the handover to it is).
    for prefetch in [Prefetch::Never, Prefetch::Always] {
        ct.set_prefetch(prefetch);
        let ((flows, tcp, marked, summary), allocations) = allocations_during(|| {
            let (mut flows, mut tcp, mut marked) = (0u32, 0u32, 0u32);
            let mut dump = ct.dump().unwrap();
            while let Some(flow) = dump.next_flow() {
                let flow = black_box(flow.unwrap());
                flows += 1;
                tcp += u32::from(flow.tcp_state().is_some());
                marked += u32::from(flow.mark.unwrap_or(0) != 0);
            }
            (flows, tcp, marked, dump.summary())
        });
        eprintln!("{prefetch:?}: {flows} flows dumped with {allocations} heap allocations");
        assert_eq!(flows, FLOWS);
        assert_eq!(summary.prefetched, prefetch == Prefetch::Always);
        // fill --mix: flows 0..=10 of every 20 are TCP.
        assert_eq!(
            tcp,
            FLOWS / 20 * 11,
            "every TCP flow decoded with its state"
        );
        assert!(marked > 0, "marks decoded");
        // The count must not grow with the table: a few allocations at most
        // for the request itself and the thread's start (none per flow or
        // per datagram: 120k flows are about 900 datagrams).
        assert!(
            allocations <= 16,
            "{allocations} heap allocations for a dump of {flows} flows ({prefetch:?})"
        );
    }

    // The counter is live: the owned path allocates for every Vec it grows.
    let (owned, allocations) = allocations_during(|| {
        ct.flows()
            .unwrap()
            .collect::<conntrack::Result<Vec<_>>>()
            .unwrap()
    });
    assert_eq!(owned.len(), FLOWS as usize);
    assert!(allocations > 0, "the counting allocator counts");
}
