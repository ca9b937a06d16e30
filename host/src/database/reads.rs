//! The read set of a transaction: every index range it read, as byte ranges of index keys.
//!
//! Recording ranges rather than documents is what catches phantoms: a document inserted
//! into a range a mutation scanned conflicts with that mutation even though the mutation
//! never saw it. The same sets will drive reactive queries (DESIGN.md section 5).

use std::collections::BTreeSet;
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

/// The ranges a transaction read, the tables it found missing, and the tables it used.
#[derive(Clone, Debug, Default)]
pub struct ReadSet {
    /// In the order read until [`ReadSet::seal`]; then sorted by start and disjoint, so a
    /// key is checked with one binary search.
    ranges: Vec<KeyRange>,
    sealed: bool,
    /// Tables (by name or by number) that did not exist when the transaction looked for
    /// them. A missing table has no index keys to record a range over, so creating it is
    /// checked separately: if it exists at commit, a concurrent commit created it.
    missing_tables: BTreeSet<MissingTable>,
    /// Numbers of the tables the transaction read or wrote: a schema change to one of
    /// them after its snapshot is a conflict (its reads used the old indexes, its writes
    /// were checked against the old validator).
    tables: BTreeSet<u32>,
    /// Bytes of the recorded range bounds and missing table names: what the read set
    /// holds in memory until the commit is checked.
    bytes: usize,
}

/// A table a transaction looked for and did not find.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MissingTable {
    Name(String),
    Number(u32),
}

impl ReadSet {
    /// Records a range read. A range that continues the last one (the next page of the
    /// same scan) extends it instead of adding another.
    pub fn record(&mut self, range: KeyRange) {
        debug_assert!(!self.sealed, "a sealed read set takes no more ranges");
        if let Some(last) = self.ranges.last_mut()
            && let Some(merged) = union_if_touching(last, &range)
        {
            self.bytes = self.bytes - range_bytes(last) + range_bytes(&merged);
            *last = merged;
            return;
        }
        self.bytes += range_bytes(&range);
        self.ranges.push(range);
    }

    /// Bytes the read set holds (range bounds and missing table names).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn record_missing_table(&mut self, table: MissingTable) {
        let bytes = match &table {
            MissingTable::Name(name) => name.len(),
            MissingTable::Number(_) => 4,
        };
        if self.missing_tables.insert(table) {
            self.bytes += bytes;
        }
    }

    /// Records that the transaction read or wrote a document of this table.
    pub fn record_table(&mut self, number: u32) {
        self.tables.insert(number);
    }

    pub fn missing_tables(&self) -> &BTreeSet<MissingTable> {
        &self.missing_tables
    }

    pub fn tables(&self) -> &BTreeSet<u32> {
        &self.tables
    }

    /// Sorts the ranges and merges those that overlap, so [`ReadSet::contains`] is one
    /// binary search. Done by the finishing transaction, not the committer: the single
    /// committer then pays O(log ranges) per key written since the snapshot.
    pub fn seal(&mut self) {
        if self.sealed {
            return;
        }
        self.ranges.sort_by(|a, b| a.start.cmp(&b.start));
        let mut merged: Vec<KeyRange> = Vec::with_capacity(self.ranges.len());
        for range in self.ranges.drain(..) {
            match merged.last_mut() {
                Some(last) if union_if_touching(last, &range).is_some() => {
                    *last = union_if_touching(last, &range).expect("checked");
                }
                _ => merged.push(range),
            }
        }
        self.ranges = merged;
        self.sealed = true;
    }

    /// Whether `key` lies in a range this transaction read.
    pub fn contains(&self, key: &[u8]) -> bool {
        if !self.sealed {
            return self.ranges.iter().any(|range| range.contains(key));
        }
        // The last range starting at or before `key` is the only one that can hold it.
        let after = self
            .ranges
            .partition_point(|range| range.start.as_slice() <= key);
        after > 0 && self.ranges[after - 1].contains(key)
    }

    /// Whether any key a later commit touched falls in a range this transaction read.
    pub fn overlaps<'a>(&self, touched: impl IntoIterator<Item = &'a [u8]>) -> bool {
        touched.into_iter().any(|key| self.contains(key))
    }

    /// [`ReadSet::overlaps`] for keys sorted ascending, probing from the smaller side: each
    /// key against the ranges, or each range against the keys (the first key at or after
    /// its start is the only one to look at). So a mutation that read a few ranges costs
    /// the committer little however much was written since its snapshot, and the reverse.
    pub fn overlaps_sorted(&self, touched: &[Vec<u8>]) -> bool {
        debug_assert!(touched.is_sorted(), "the touched keys must be sorted");
        if !self.sealed || touched.len() <= self.ranges.len() {
            return self.overlaps(touched.iter().map(Vec::as_slice));
        }
        self.ranges.iter().any(|range| {
            let first = touched.partition_point(|key| key.as_slice() < range.start.as_slice());
            touched.get(first).is_some_and(|key| range.contains(key))
        })
    }

    /// How many ranges (after merging the adjacent ones) and missing tables are recorded:
    /// what `max_read_ranges` bounds.
    pub fn len(&self) -> usize {
        self.ranges.len() + self.missing_tables.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.missing_tables.is_empty()
    }
}

fn range_bytes(range: &KeyRange) -> usize {
    range.start.len() + range.end.as_ref().map_or(0, Vec::len)
}

/// The union of two ranges if they overlap or touch (one ends where the other starts).
fn union_if_touching(a: &KeyRange, b: &KeyRange) -> Option<KeyRange> {
    // `x` ends at or after `y` starts (an unbounded end reaches everything).
    let reaches = |x: &KeyRange, y: &KeyRange| x.end.as_ref().is_none_or(|end| *end >= y.start);
    if !(reaches(a, b) && reaches(b, a)) {
        return None;
    }
    let end = match (&a.end, &b.end) {
        (Some(x), Some(y)) => Some(x.max(y).clone()),
        _ => None,
    };
    Some(KeyRange {
        start: a.start.clone().min(b.start.clone()),
        end,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probing from either side answers as checking every key against every range.
    #[test]
    fn sorted_overlap_probes_from_the_smaller_side_and_agrees_with_brute_force() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let key = |rng: &mut rand::rngs::StdRng| -> Vec<u8> {
            (0..rng.next_u32() % 3 + 1)
                .map(|_| (rng.next_u32() % 8) as u8)
                .collect()
        };
        for round in 0..2_000 {
            let mut reads = ReadSet::default();
            let range_count = if round % 2 == 0 { 1 } else { 12 };
            let mut ranges = Vec::new();
            for _ in 0..range_count {
                let (a, b) = (key(&mut rng), key(&mut rng));
                let range = KeyRange {
                    start: a.clone().min(b.clone()),
                    end: (rng.next_u32() % 5 != 0).then(|| a.max(b)),
                };
                ranges.push(range.clone());
                reads.record(range);
            }
            reads.seal();
            let key_count = if round % 2 == 0 { 12 } else { 1 };
            let mut touched: Vec<Vec<u8>> = (0..key_count).map(|_| key(&mut rng)).collect();
            touched.sort();
            let expected = touched
                .iter()
                .any(|key| ranges.iter().any(|range| range.contains(key)));
            assert_eq!(
                reads.overlaps_sorted(&touched),
                expected,
                "{ranges:?} {touched:?}"
            );
        }
    }

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

    /// A model check: after sealing, `contains` answers as the linear check over the
    /// ranges as recorded, for overlapping, touching, nested and unbounded ranges.
    #[test]
    fn sealing_merges_ranges_without_changing_what_they_contain() {
        let ranges = [
            (b"d".to_vec(), Some(b"f".to_vec())),
            (b"a".to_vec(), Some(b"b".to_vec())),
            (b"b".to_vec(), Some(b"c".to_vec())),
            (b"e".to_vec(), Some(b"e\0".to_vec())),
            (b"m".to_vec(), None),
            (b"k".to_vec(), Some(b"l".to_vec())),
            (b"p".to_vec(), Some(b"q".to_vec())),
        ];
        let mut reads = ReadSet::default();
        for (start, end) in &ranges {
            reads.record(KeyRange {
                start: start.clone(),
                end: end.clone(),
            });
        }
        let linear = reads.clone();
        reads.seal();
        assert!(
            reads.len() < linear.len(),
            "touching and nested ranges merge"
        );
        for a in b'a'..=b'z' {
            for b in [None, Some(0u8), Some(b'a')] {
                let mut key = vec![a];
                key.extend(b);
                assert_eq!(reads.contains(&key), linear.contains(&key), "{key:?}");
            }
        }
    }

    #[test]
    fn the_next_page_of_a_scan_extends_its_range() {
        let mut reads = ReadSet::default();
        reads.record(KeyRange {
            start: b"a".to_vec(),
            end: Some(b"c".to_vec()),
        });
        reads.record(KeyRange {
            start: b"c".to_vec(),
            end: Some(b"f".to_vec()),
        });
        assert_eq!(reads.len(), 1);
        assert!(reads.contains(b"e") && !reads.contains(b"f"));
    }
}
