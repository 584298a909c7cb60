//! The benchmark's global allocator: the system's, or mimalloc (`--features mimalloc`), and with
//! `--features count-allocations` a count of every allocation, which the emit, raw-loop and
//! sidecar parts report (`allocations` in their JSON; per delivery in the sidecar's rows): a
//! figure that, unlike CPU time, does not move with the machine's noise. Counting costs an atomic
//! add per allocation, so timed runs leave it off.

use std::alloc::{GlobalAlloc, Layout};
#[cfg(feature = "count-allocations")]
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "mimalloc")]
type Inner = mimalloc::MiMalloc;
#[cfg(not(feature = "mimalloc"))]
type Inner = std::alloc::System;

/// Every part's allocator.
pub struct Allocator(Inner);

#[global_allocator]
static ALLOCATOR: Allocator = Allocator(Inner {});

#[cfg(feature = "count-allocations")]
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

#[inline]
fn counted() {
    #[cfg(feature = "count-allocations")]
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
}

/// Allocations (and reallocations) so far, when counted.
pub fn allocations() -> Option<u64> {
    #[cfg(feature = "count-allocations")]
    return Some(ALLOCATIONS.load(Ordering::Relaxed));
    #[cfg(not(feature = "count-allocations"))]
    None
}

// SAFETY: every call is forwarded unchanged to the inner allocator, which upholds the contract.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}
