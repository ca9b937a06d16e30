//! Convex's query journal: where the page a subscribed query returned ends, so that its
//! re-runs return the same page, grown or shrunk, never shifted (DESIGN.md section 5).
//!
//! The first run of a paginated query reads `numItems` documents and records where it
//! stopped; the sync layer keeps that end with the subscription (and hands it to the
//! client, which sends it back when it subscribes again after a reconnect) and gives it to
//! every re-run, which then reads up to it whatever `numItems` says. The end is a sealed
//! position, or the end of the range for the last page (which grows with new documents).

use std::sync::Mutex;

/// Where a page ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageEnd {
    /// At this position (a sealed cursor), included.
    At(String),
    /// At the end of the range: the last page.
    End,
}

/// The journal text of the last page, and the prefix of one that ends at a position.
const END: &str = "end";
const AT: &str = "at:";

impl PageEnd {
    /// The journal as the client carries it: opaque text.
    pub fn to_journal(&self) -> String {
        match self {
            PageEnd::At(cursor) => format!("{AT}{cursor}"),
            PageEnd::End => END.to_string(),
        }
    }

    /// A journal a client sent back. A position is checked (its seal) when it is used.
    pub fn from_journal(journal: &str) -> Result<Self, String> {
        if journal == END {
            return Ok(PageEnd::End);
        }
        journal
            .strip_prefix(AT)
            .filter(|cursor| !cursor.is_empty())
            .map(|cursor| PageEnd::At(cursor.to_string()))
            .ok_or_else(|| "invalid query journal".to_string())
    }
}

/// The journal of one subscribed query's run: the end its previous run fixed, and the end
/// this run records.
#[derive(Debug, Default)]
pub struct PageJournal {
    previous: Option<PageEnd>,
    recorded: Mutex<Option<PageEnd>>,
}

impl PageJournal {
    pub fn new(previous: Option<PageEnd>) -> Self {
        Self {
            previous,
            recorded: Mutex::new(None),
        }
    }

    pub fn previous(&self) -> Option<&PageEnd> {
        self.previous.as_ref()
    }

    pub(crate) fn record(&self, end: PageEnd) {
        *self.recorded.lock().expect("page journal poisoned") = Some(end);
    }

    /// The end this run recorded, if it paginated.
    pub fn recorded(&self) -> Option<PageEnd> {
        self.recorded.lock().expect("page journal poisoned").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journals_round_trip_and_garbage_is_refused() {
        for end in [PageEnd::End, PageEnd::At("abc".into())] {
            assert_eq!(PageEnd::from_journal(&end.to_journal()).unwrap(), end);
        }
        assert!(PageEnd::from_journal("at:").is_err());
        assert!(PageEnd::from_journal("nope").is_err());
    }
}
