//! `Math.random`: a generator seeded on first use in each call from the call's random
//! source (WASI random, which the host seeds per call for queries and mutations, so they
//! stay deterministic; actions get the operating system's randomness). Never state from the
//! snapshot: `reset` runs when a call begins.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<Option<u64>> = const { Cell::new(None) };
}

unsafe extern "C" {
    /// wasi-libc's, over `wasi:random/random`.
    fn getentropy(buffer: *mut u8, length: usize) -> i32;
}

pub(crate) fn reset() {
    STATE.with(|state| state.set(None));
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    // SAFETY: the buffer is valid for 8 bytes (getentropy takes at most 256).
    let status = unsafe { getentropy(bytes.as_mut_ptr(), bytes.len()) };
    assert_eq!(status, 0, "the random source failed");
    u64::from_le_bytes(bytes)
}

/// splitmix64: small, fast and well distributed (not for secrets; nor is Math.random).
fn next_u64() -> u64 {
    STATE.with(|state| {
        let current = state
            .get()
            .unwrap_or_else(seed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(Some(current));
        let mut z = current;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

/// A number in [0, 1) with 53 random bits.
pub(crate) fn next_f64() -> f64 {
    (next_u64() >> 11) as f64 / (1u64 << 53) as f64
}
