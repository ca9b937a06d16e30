//! Log lines for the current call. They are returned beside the result (`logLines`) and
//! written to the server's log. `println!` and `eprintln!` work too.

use crate::bindings::kiln::platform::log::{Level, log};

pub fn debug(message: impl AsRef<str>) {
    log(Level::Debug, message.as_ref());
}

pub fn info(message: impl AsRef<str>) {
    log(Level::Info, message.as_ref());
}

pub fn warn(message: impl AsRef<str>) {
    log(Level::Warn, message.as_ref());
}

pub fn error(message: impl AsRef<str>) {
    log(Level::Error, message.as_ref());
}
