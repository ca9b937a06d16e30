//! Faults that the end-to-end tests inject into a debug build of the server, for failures
//! they cannot provoke from outside: a store write that fails inside one member of a group
//! commit. A fault is armed by an environment variable, `KILN_FAILPOINT_<NAME>=<subject>`,
//! and fires only for that subject, so the rest of the test runs normally. Release builds
//! compile every failpoint to `false`.

/// Whether the failpoint `name` is armed for `subject`.
#[cfg(debug_assertions)]
pub fn armed(name: &str, subject: &str) -> bool {
    std::env::var(format!("KILN_FAILPOINT_{name}")).is_ok_and(|armed_for| armed_for == subject)
}

/// Whether the failpoint `name` is armed for `subject`: never, in a release build.
#[cfg(not(debug_assertions))]
pub fn armed(_name: &str, _subject: &str) -> bool {
    false
}
