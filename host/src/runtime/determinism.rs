//! What makes queries and mutations deterministic (DESIGN.md section 1): the clock they see
//! is frozen and their randomness is seeded, so running one again with the same arguments
//! over the same data computes the same thing. That is what lets Kiln re-run a mutation
//! after a conflict (and, later, a subscribed query after a write) as if it were the first
//! run. Actions keep the real clock and the operating system's randomness.
//!
//! Like Convex, which fixes one timestamp and one ChaCha12 seed when a query or mutation
//! begins (`UdfPhase::begin_execution`) and serves `Date.now()` and `Math.random()` from
//! them: the WASI wall clock reads the time the call began, every time; the WASI random
//! interfaces draw from ChaCha12 seeded per call.
//!
//! The inputs are made once per *logical* call (`FrozenInputs::now`, in `Runtime::invoke`
//! before its retry loop) and handed to every run of it, so a re-run after a conflict sees
//! exactly what the first run saw. Two calls get different seeds: the seed comes from the
//! operating system, per call.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

/// The clock reading and random seed one query or mutation call runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrozenInputs {
    /// When the call began, since the Unix epoch.
    pub(crate) now: Duration,
    /// Seeds every random source the call sees.
    pub(crate) seed: [u8; 32],
}

impl FrozenInputs {
    /// Inputs for a call beginning now: the wall clock's time and a fresh random seed.
    pub(crate) fn now() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        // The thread's CSPRNG (seeded from the OS, and reseeded): no system call per call.
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        Self { now, seed }
    }

    /// Inputs that carry nothing of when or where they are used: the Unix epoch and a zero
    /// seed. What a JavaScript app's modules see while they load at deploy, so a snapshot
    /// holds no deploy-time clock reading or randomness, and the same sources give the same
    /// snapshot.
    pub(crate) fn fixed() -> Self {
        Self {
            now: Duration::ZERO,
            seed: [0; 32],
        }
    }

    /// The inputs of the `n`th query or mutation this one calls (run-query, run-mutation):
    /// the same clock, and a seed of its own, derived from this one so that a re-run of
    /// the caller gives each callee the same seed again.
    pub(crate) fn nested(&self, n: u64) -> Self {
        let mut seed = self.seed;
        for (byte, tweak) in seed.iter_mut().zip((n + 1).to_le_bytes()) {
            *byte ^= tweak;
        }
        // Mixed through the generator, so that no two (seed, n) pairs collide.
        let mut derived = [0u8; 32];
        StdRng::from_seed(seed).fill_bytes(&mut derived);
        Self {
            now: self.now,
            seed: derived,
        }
    }

    /// Sets the clocks and random sources of `builder` from these inputs.
    pub(crate) fn apply(&self, builder: &mut WasiCtxBuilder) {
        // Each interface gets its own ChaCha12 stream, keyed by the seed with a different
        // last byte: independent streams without generating any output up front.
        let keyed = |tweak: u8| {
            let mut key = self.seed;
            key[31] ^= tweak;
            key
        };
        let secure = StdRng::from_seed(keyed(1));
        let insecure = StdRng::from_seed(keyed(2));
        let insecure_seed = u128::from_le_bytes(keyed(3)[16..].try_into().expect("16 bytes"));
        builder
            .wall_clock(FrozenWallClock(self.now))
            .monotonic_clock(FrozenMonotonicClock(duration_nanos(self.now)))
            .secure_random(secure)
            .insecure_random(insecure)
            .insecure_random_seed(insecure_seed);
    }
}

fn duration_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `wasi:clocks/wall-clock` that always reads the time the call began.
struct FrozenWallClock(Duration);

impl HostWallClock for FrozenWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        self.0
    }
}

/// `wasi:clocks/monotonic-clock`, frozen too: Convex gives queries and mutations one time
/// and nothing that advances, and an advancing monotonic clock would let a function's
/// result depend on how fast it ran. It reads the call's start in nanoseconds since the
/// epoch rather than zero, so that guest code subtracting a duration from `Instant::now()`
/// does not underflow. Sleeping (`subscribe-duration`) still waits in real time, within the
/// call's time limit.
struct FrozenMonotonicClock(u64);

impl HostMonotonicClock for FrozenMonotonicClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use kiln_values::Value;

    use super::*;
    use crate::config::Limits;
    use crate::runtime::test_support::probe_runtime;
    use crate::runtime::{CallContext, FunctionKind};

    #[test]
    fn frozen_clocks_do_not_move() {
        let inputs = FrozenInputs::now();
        let wall = FrozenWallClock(inputs.now);
        let monotonic = FrozenMonotonicClock(duration_nanos(inputs.now));
        let (first_wall, first_monotonic) = (wall.now(), monotonic.now());
        std::hint::black_box((0..100_000u64).sum::<u64>());
        assert_eq!((wall.now(), monotonic.now()), (first_wall, first_monotonic));
        assert_eq!(first_wall, inputs.now);
    }

    #[test]
    fn each_call_gets_its_own_seed() {
        assert_ne!(FrozenInputs::now().seed, FrozenInputs::now().seed);
    }

    fn busy_args() -> Value {
        Value::from_convex_json_str(r#"{"iterations": 100000}"#).unwrap()
    }

    /// `Runtime::invoke` takes the inputs once and gives them to every run of the call (a
    /// mutation's re-runs after conflicts): given the same inputs, a run sees the same
    /// clock and the same random numbers; given other inputs, other random numbers.
    #[tokio::test(flavor = "multi_thread")]
    async fn every_run_with_the_same_inputs_sees_the_same_clock_and_randomness() {
        let (_data, runtime, module) = probe_runtime(Limits::default()).await;
        let frozen = FrozenInputs::now();
        for (kind, function) in [
            (FunctionKind::Query, "in_query"),
            (FunctionKind::Mutation, "in_mutation"),
        ] {
            let run = |frozen| {
                let (runtime, module, args) = (&runtime, &module, busy_args());
                async move {
                    runtime
                        .invoke_deterministic(
                            &CallContext::isolated(),
                            module,
                            function,
                            kind,
                            &args,
                            frozen,
                        )
                        .await
                        .outcome
                        .unwrap_or_else(|failure| panic!("{function} failed: {failure}"))
                        .value()
                        .to_convex_json()
                }
            };
            let first = run(frozen).await;
            let again = run(frozen).await;
            assert_eq!(first, again, "{function}");
            let expected_ns = frozen.now.as_nanos().to_string();
            assert_eq!(
                first["wall_ns"],
                serde_json::json!([expected_ns, expected_ns])
            );
            assert_eq!(first["monotonic_elapsed_ns"], "0", "{first}");

            let other = run(FrozenInputs::now()).await;
            assert_ne!(first["random"], other["random"], "{function}");
            assert_ne!(first["hash"], other["hash"], "{function}");
        }
    }
}
