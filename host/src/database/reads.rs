//! The read set of a transaction: every index range it read, as byte ranges of index keys.
//!
//! Recording ranges rather than documents is what catches phantoms: a document inserted
//! into a range a mutation scanned conflicts with that mutation even though the mutation
//! never saw it. The same sets will drive reactive queries (DESIGN.md section 5).

use std::ops::Bound;

/// A range of index keys: `[start, end)`, `end = None` meaning unbounded above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Option<Vec<u8>>,
}

impl KeyRange {
    /// The range holding exactly `key`.
    pub fn point(key: Vec<u8>) -> Self {
        let mut end = key.clone();
        // The smallest key greater than `key` is `key` followed by a zero byte.
        end.push(0);
        Self {
            start: key,
            end: Some(end),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && self.end.as_deref().is_none_or(|end| key < end)
    }

    /// The bounds redb's `range` takes.
    pub fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        (
            Bound::Included(self.start.as_slice()),
            self.end
                .as_deref()
                .map_or(Bound::Unbounded, Bound::Excluded),
        )
    }
}

/// The ranges a transaction read, and the tables it found missing.
#[derive(Clone, Debug, Default)]
pub struct ReadSet {
    ranges: Vec<KeyRange>,
    /// Tables (by name or by number) that did not exist when the transaction looked for
    /// them. A missing table has no index keys to record a range over, so creating it is
    /// checked separately: if it exists at commit, a concurrent commit created it.
    missing_tables: Vec<MissingTable>,
}

/// A table a transaction looked for and did not find.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MissingTable {
    Name(String),
    Number(u32),
}

impl ReadSet {
    pub fn record(&mut self, range: KeyRange) {
        self.ranges.push(range);
    }

    pub fn record_missing_table(&mut self, table: MissingTable) {
        if !self.missing_tables.contains(&table) {
            self.missing_tables.push(table);
        }
    }

    pub fn missing_tables(&self) -> &[MissingTable] {
        &self.missing_tables
    }

    /// Whether any key a later commit touched falls in a range this transaction read.
    pub fn overlaps<'a>(&self, touched: impl IntoIterator<Item = &'a [u8]>) -> bool {
        touched
            .into_iter()
            .any(|key| self.ranges.iter().any(|range| range.contains(key)))
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.missing_tables.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_contain_their_keys_and_nothing_else() {
        let point = KeyRange::point(b"ab".to_vec());
        assert!(point.contains(b"ab"));
        assert!(!point.contains(b"ab\0"));
        assert!(!point.contains(b"aa"));
        let open = KeyRange {
            start: b"b".to_vec(),
            end: None,
        };
        assert!(open.contains(b"zzz") && !open.contains(b"a"));
    }

    #[test]
    fn a_write_into_a_scanned_range_overlaps_even_if_the_key_was_never_read() {
        let mut reads = ReadSet::default();
        reads.record(KeyRange {
            start: b"k1".to_vec(),
            end: Some(b"k5".to_vec()),
        });
        assert!(reads.overlaps([&b"k3"[..]]));
        assert!(!reads.overlaps([&b"k5"[..], &b"k0"[..]]));
    }
}
