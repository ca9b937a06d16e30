//! The log lines of one invocation: from the `log` import and from the guest's stdout and
//! stderr, in the order they happened, within the per-invocation limits.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::invocation::{LogLevel, LogLine};

/// A line longer than this is cut into several, so a guest that never writes a newline
/// cannot hold an unbounded partial line.
const MAX_LINE_BYTES: usize = 64 << 10;

/// Collects the lines of one invocation. Shared (behind a mutex) by the `log` capability
/// and the guest's stdout and stderr streams.
#[derive(Debug)]
pub(crate) struct LogBuffer {
    lines: Vec<LogLine>,
    dropped: usize,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
    partial_stdout: Vec<u8>,
    partial_stderr: Vec<u8>,
}

impl LogBuffer {
    pub(crate) fn new(max_lines: usize, max_bytes: usize) -> Self {
        Self {
            lines: Vec::new(),
            dropped: 0,
            bytes: 0,
            max_lines,
            max_bytes,
            partial_stdout: Vec::new(),
            partial_stderr: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, level: LogLevel, message: String) {
        if self.lines.len() >= self.max_lines || self.bytes + message.len() > self.max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine { level, message });
    }

    fn write_output(&mut self, level: LogLevel, bytes: &[u8]) {
        let mut partial = std::mem::take(self.partial(level));
        for &byte in bytes {
            if byte == b'\n' || partial.len() >= MAX_LINE_BYTES {
                self.push(level, String::from_utf8_lossy(&partial).into_owned());
                partial.clear();
                if byte == b'\n' {
                    continue;
                }
            }
            partial.push(byte);
        }
        *self.partial(level) = partial;
    }

    fn partial(&mut self, level: LogLevel) -> &mut Vec<u8> {
        if level == LogLevel::Error {
            &mut self.partial_stderr
        } else {
            &mut self.partial_stdout
        }
    }

    /// The lines, with any unterminated output line and a note of what was dropped.
    pub(crate) fn finish(&mut self) -> Vec<LogLine> {
        for level in [LogLevel::Log, LogLevel::Error] {
            let partial = std::mem::take(self.partial(level));
            if !partial.is_empty() {
                self.push(level, String::from_utf8_lossy(&partial).into_owned());
            }
        }
        let mut lines = std::mem::take(&mut self.lines);
        if self.dropped > 0 {
            lines.push(LogLine {
                level: LogLevel::Warn,
                message: format!(
                    "{} log lines dropped: over the limit of {} lines or {} bytes per call",
                    self.dropped, self.max_lines, self.max_bytes
                ),
            });
        }
        lines
    }
}

/// The guest's stdout (as `Log` lines) or stderr (as `Error` lines). Writes never fail:
/// output past the limits is dropped and counted, because a failing stdout would make a
/// chatty guest panic inside `println!`.
#[derive(Clone)]
pub(crate) struct OutputCapture {
    buffer: Arc<Mutex<LogBuffer>>,
    level: LogLevel,
}

impl OutputCapture {
    pub(crate) fn new(buffer: Arc<Mutex<LogBuffer>>, level: LogLevel) -> Self {
        Self { buffer, level }
    }

    fn write_bytes(&self, bytes: &[u8]) {
        self.buffer
            .lock()
            .expect("log buffer poisoned")
            .write_output(self.level, bytes);
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

/// How much the guest may write at once; writes are consumed immediately.
const WRITE_BUDGET: usize = 1 << 20;

impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.write_bytes(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_BUDGET)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.write_bytes(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_split_into_lines_in_order() {
        let buffer = Arc::new(Mutex::new(LogBuffer::new(10, 1000)));
        let stdout = OutputCapture::new(buffer.clone(), LogLevel::Log);
        stdout.write_bytes(b"one\ntw");
        buffer
            .lock()
            .unwrap()
            .push(LogLevel::Info, "between".into());
        stdout.write_bytes(b"o\nthree");
        let lines = buffer.lock().unwrap().finish();
        let messages: Vec<&str> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(messages, ["one", "between", "two", "three"]);
    }

    #[test]
    fn lines_past_the_limit_are_dropped_and_counted() {
        let mut buffer = LogBuffer::new(2, 1000);
        for i in 0..5 {
            buffer.push(LogLevel::Info, format!("line {i}"));
        }
        let lines = buffer.finish();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1].message, "line 1");
        assert!(
            lines[2].message.starts_with("3 log lines dropped"),
            "{:?}",
            lines[2]
        );
    }
}
