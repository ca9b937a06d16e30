//! `kiln:platform/log`: log lines of the current invocation. Every kind may log; lines past
//! the per-invocation limits (`max_log_lines`, `max_output_bytes`) are dropped and counted.

use crate::runtime::bindings::kiln::platform::log::{Host, Level};
use crate::runtime::{InvocationState, LogLevel};

impl Host for InvocationState {
    async fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.log
            .lock()
            .expect("log buffer poisoned")
            .push(level, message);
    }

    async fn console_log(&mut self, message: String) {
        self.log
            .lock()
            .expect("log buffer poisoned")
            .push(LogLevel::Log, message);
    }
}
