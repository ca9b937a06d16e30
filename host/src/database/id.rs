//! Document ids in Convex's format, so that ids made by Kiln look like, and validate like,
//! the ids a Convex client already knows.
//!
//! An id is the base32 text of a short binary string:
//!
//! ```text
//! varint(table number) ‖ internal id (16 bytes) ‖ footer (2 bytes)
//! footer = fletcher16(varint ‖ internal id) XOR version, stored little-endian; version = 0
//! ```
//!
//! The internal id is opaque to clients. Kiln makes it the creation's Unix time in
//! milliseconds (48 bits, big-endian) and then 80 random bits ([`DocumentId::generate`]),
//! as UUIDv7 and ULID do: a table's documents are stored by id, so ids that grow with time
//! put a batch of inserts into the last pages of the B-tree instead of one random page
//! each. With random ids a commit of 11 inserts rewrote about 11 leaves of the documents
//! tree: `cargo xtask bench commit` measured 150 KiB written for it, now 73 KiB, barely
//! more than a commit of one insert (68 KiB). An id thus tells when it was made, as
//! `_creationTime` does.
//!
//! The varint is LEB128 (seven bits at a time, least significant group first, high bit set
//! on every byte but the last), so it takes one to five bytes and an id is 19 to 23 bytes,
//! which base32 writes as 31, 32, 34, 36 or 37 characters (user tables, numbered from
//! 10001 in Convex, get 32). Base32 uses the alphabet `0123456789abcdefghjkmnpqrstvwxyz`,
//! most significant bit first, without padding; the unused low bits of the last character
//! are zero.
//!
//! Decoding accepts exactly the strings that encoding produces (one string per id), as
//! Convex does: a wrong length, a character outside the alphabet, a bad table number, a
//! checksum mismatch or a non-canonical spelling is an [`IdError`], never a panic.
//!
//! Details checked against Convex's `crates/value/src/id_v6.rs` and `base32.rs`
//! (get-convex/convex-backend) and its npm `id-encoding` package. This module owns only the
//! format; which table a number names is the database's business.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

/// Base32 digits in value order (Crockford's alphabet in lower case, no `i l o u`).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Length of the internal part of an id.
pub const INTERNAL_ID_LEN: usize = 16;

/// Bytes of the internal part that hold the creation time (milliseconds since the Unix
/// epoch, big-endian: enough until the year 10889); the rest are random.
const TIME_PREFIX_LEN: usize = 6;

/// The footer's checksum is XOR'd with this, so a future format can be told apart.
const VERSION: u16 = 0;

const FOOTER_LEN: usize = 2;
const MAX_VARINT_LEN: usize = 5;
const MAX_BINARY_LEN: usize = MAX_VARINT_LEN + INTERNAL_ID_LEN + FOOTER_LEN;

/// The shortest id text (a one-byte table number).
pub const MIN_ENCODED_LEN: usize = base32_len(1 + INTERNAL_ID_LEN + FOOTER_LEN);
/// The longest id text (a five-byte table number).
pub const MAX_ENCODED_LEN: usize = base32_len(MAX_BINARY_LEN);

/// Id texts longer than this are cut short when an error quotes them.
const QUOTED_ID_MAX_CHARS: usize = 48;

/// A document id: the number of the table the document lives in and 16 bytes that are
/// unique within it.
///
/// Ordered by table number, then by the internal bytes (for generated ids, by creation
/// time to the millisecond). Table number 0 is not a valid table
/// (Convex numbers tables from 1), so an id of table 0 encodes but does not decode.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DocumentId {
    /// The table's number (Convex gives user tables numbers from 10001).
    pub table_number: u32,
    /// The document's internal part, unique within the table.
    pub internal: [u8; INTERNAL_ID_LEN],
}

/// Why a string is not a valid id. Each variant quotes the offending text (shortened if
/// very long), so the message can be shown to the user as is.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum IdError {
    /// The text has a length no id can have.
    #[error(
        "invalid id {id:?}: wrong length {len} (an id has {MIN_ENCODED_LEN} to {MAX_ENCODED_LEN} characters)"
    )]
    WrongLength {
        /// The text, perhaps shortened.
        id: String,
        /// The text's length in bytes.
        len: usize,
    },
    /// A character outside the base32 alphabet.
    #[error("invalid id {id:?}: not base32 ({character:?} at position {position})")]
    NotBase32 {
        /// The text.
        id: String,
        /// The first offending character.
        character: char,
        /// Its byte offset.
        position: usize,
    },
    /// The table number is zero, does not fit in 32 bits, or runs past the text.
    #[error("invalid id {id:?}: bad table number")]
    BadTableNumber {
        /// The text.
        id: String,
    },
    /// The footer does not match the rest: a mistyped or altered id.
    #[error("invalid id {id:?}: checksum mismatch")]
    ChecksumMismatch {
        /// The text.
        id: String,
    },
    /// The text decodes, but is not the one spelling encoding produces (nonzero padding
    /// bits, or a table number with redundant varint bytes).
    #[error("invalid id {id:?}: not in canonical form")]
    NotCanonical {
        /// The text.
        id: String,
    },
}

impl DocumentId {
    /// The id of `internal` in table `table_number`.
    pub fn new(table_number: u32, internal: [u8; INTERNAL_ID_LEN]) -> Self {
        DocumentId {
            table_number,
            internal,
        }
    }

    /// A fresh id in table `table_number`: the wall clock's milliseconds, then 80 random
    /// bits from the thread's CSPRNG (seeded from the operating system and reseeded, as
    /// the calls' seeds are: no system call per insert). Collisions within a millisecond
    /// are not a practical concern, and a clock that steps back costs only locality.
    pub fn generate(table_number: u32) -> Self {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        Self::generate_at(table_number, unix_ms as u64)
    }

    /// [`DocumentId::generate`] at `unix_ms` milliseconds since the Unix epoch.
    fn generate_at(table_number: u32, unix_ms: u64) -> Self {
        use rand::Rng as _;
        let mut internal = [0; INTERNAL_ID_LEN];
        internal[..TIME_PREFIX_LEN].copy_from_slice(&unix_ms.to_be_bytes()[8 - TIME_PREFIX_LEN..]);
        rand::rng().fill_bytes(&mut internal[TIME_PREFIX_LEN..]);
        DocumentId::new(table_number, internal)
    }

    /// The id's text, 31 to 37 characters of base32.
    pub fn encode(&self) -> String {
        let (binary, len) = self.to_binary();
        base32_encode(&binary[..len])
    }

    /// Parses an id's text, accepting exactly what [`DocumentId::encode`] produces.
    pub fn decode(s: &str) -> Result<Self, IdError> {
        let quoted = || quote(s);
        // Length first: it is the cheapest check, and bounds the work for huge inputs.
        let valid_length = (1..=MAX_VARINT_LEN)
            .any(|varint_len| base32_len(varint_len + INTERNAL_ID_LEN + FOOTER_LEN) == s.len());
        if !valid_length {
            return Err(IdError::WrongLength {
                id: quoted(),
                len: s.len(),
            });
        }

        let (binary, binary_len) = base32_decode(s).map_err(|failure| match failure {
            Base32Failure::Character(position) => IdError::NotBase32 {
                id: quoted(),
                character: s[position..].chars().next().unwrap_or_default(),
                position,
            },
            Base32Failure::PaddingBits => IdError::NotCanonical { id: quoted() },
        })?;
        let binary = &binary[..binary_len];

        let (table_number, varint_len) =
            varint_decode(binary).map_err(|failure| match failure {
                VarintFailure::Invalid => IdError::BadTableNumber { id: quoted() },
                VarintFailure::Redundant => IdError::NotCanonical { id: quoted() },
            })?;
        if table_number == 0 {
            return Err(IdError::BadTableNumber { id: quoted() });
        }
        // The text's length fixes the binary length, and the varint's the length it should
        // have: a string whose table number is spelled for another length is malformed.
        if binary_len != varint_len + INTERNAL_ID_LEN + FOOTER_LEN {
            return Err(IdError::WrongLength {
                id: quoted(),
                len: s.len(),
            });
        }

        let body_len = varint_len + INTERNAL_ID_LEN;
        let footer = u16::from_le_bytes([binary[body_len], binary[body_len + 1]]);
        if footer != fletcher16(&binary[..body_len]) ^ VERSION {
            return Err(IdError::ChecksumMismatch { id: quoted() });
        }

        let mut internal = [0; INTERNAL_ID_LEN];
        internal.copy_from_slice(&binary[varint_len..body_len]);
        Ok(DocumentId::new(table_number, internal))
    }

    /// The binary form in a fixed buffer, with its length.
    fn to_binary(self) -> ([u8; MAX_BINARY_LEN], usize) {
        let mut binary = [0; MAX_BINARY_LEN];
        let mut len = varint_encode(self.table_number, &mut binary);
        binary[len..len + INTERNAL_ID_LEN].copy_from_slice(&self.internal);
        len += INTERNAL_ID_LEN;
        let footer = fletcher16(&binary[..len]) ^ VERSION;
        binary[len..len + FOOTER_LEN].copy_from_slice(&footer.to_le_bytes());
        (binary, len + FOOTER_LEN)
    }
}

impl fmt::Display for DocumentId {
    /// The encoded text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

impl FromStr for DocumentId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DocumentId::decode(s)
    }
}

/// The text to quote in an error: all of it, unless it is absurdly long.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTED_ID_MAX_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

/// Writes `n` as a LEB128 varint at the start of `out`, returning its length.
fn varint_encode(mut n: u32, out: &mut [u8]) -> usize {
    let mut len = 0;
    while n >= 0x80 {
        out[len] = (n as u8 & 0x7f) | 0x80;
        n >>= 7;
        len += 1;
    }
    out[len] = n as u8;
    len + 1
}

enum VarintFailure {
    /// Runs past the input, or does not fit in a `u32`.
    Invalid,
    /// A longer spelling than needed (a final zero group), which encoding never writes.
    Redundant,
}

/// Reads a LEB128 `u32` from the start of `input`: the number and the bytes it took.
fn varint_decode(input: &[u8]) -> Result<(u32, usize), VarintFailure> {
    let mut n: u64 = 0;
    for (i, &byte) in input.iter().take(MAX_VARINT_LEN).enumerate() {
        n |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if i > 0 && byte == 0 {
                return Err(VarintFailure::Redundant);
            }
            let n = u32::try_from(n).map_err(|_| VarintFailure::Invalid)?;
            return Ok((n, i + 1));
        }
    }
    Err(VarintFailure::Invalid)
}

/// Fletcher-16 with both sums taken modulo 256 (as Convex does, not the textbook 255):
/// the running sum in the low byte, the sum of running sums in the high byte.
fn fletcher16(bytes: &[u8]) -> u16 {
    let (mut sum, mut sum_of_sums) = (0u8, 0u8);
    for &byte in bytes {
        sum = sum.wrapping_add(byte);
        sum_of_sums = sum_of_sums.wrapping_add(sum);
    }
    u16::from(sum_of_sums) << 8 | u16::from(sum)
}

/// The number of base32 characters for `len` bytes, without padding.
const fn base32_len(len: usize) -> usize {
    (len * 8).div_ceil(5)
}

/// Base32 with the id alphabet, most significant bit first, no padding.
fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(base32_len(bytes.len()));
    // A bit buffer: `bits` holds `pending` not yet written bits in its low end.
    let (mut bits, mut pending) = (0u32, 0u32);
    for &byte in bytes {
        bits = bits << 8 | u32::from(byte);
        pending += 8;
        while pending >= 5 {
            pending -= 5;
            out.push(char::from(ALPHABET[(bits >> pending & 0x1f) as usize]));
        }
    }
    if pending > 0 {
        // The last character carries the leftover bits at its top, zeros below.
        out.push(char::from(
            ALPHABET[(bits << (5 - pending) & 0x1f) as usize],
        ));
    }
    out
}

enum Base32Failure {
    /// The byte offset of a character outside the alphabet.
    Character(usize),
    /// The last character has bits set below the data, so another text encodes the same.
    PaddingBits,
}

/// Decodes base32 text of at most [`MAX_ENCODED_LEN`] characters into a fixed buffer,
/// returning the bytes and their number. The caller has checked the length.
fn base32_decode(s: &str) -> Result<([u8; MAX_BINARY_LEN], usize), Base32Failure> {
    let mut out = [0; MAX_BINARY_LEN];
    let mut len = 0;
    let (mut bits, mut pending) = (0u32, 0u32);
    for (position, &c) in s.as_bytes().iter().enumerate() {
        let digit = digit_value(c).ok_or(Base32Failure::Character(position))?;
        bits = bits << 5 | u32::from(digit);
        pending += 5;
        if pending >= 8 {
            pending -= 8;
            out[len] = (bits >> pending) as u8;
            len += 1;
        }
    }
    // Fewer than eight bits are left over; they are padding and must be zero.
    if bits & ((1 << pending) - 1) != 0 {
        return Err(Base32Failure::PaddingBits);
    }
    Ok((out, len))
}

/// The value of one base32 digit. Strictly the encoding alphabet: no upper case and no
/// Crockford look-alikes (`o` for `0`, ...), because Convex rejects them too.
fn digit_value(c: u8) -> Option<u8> {
    ALPHABET.iter().position(|&a| a == c).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn ids_quoted_in_convex_decode() {
        // Real ids found in get-convex/convex-backend's npm packages; the table numbers
        // of the first three are stated in comments beside them.
        let known = [
            // npm-packages/dashboard/src/elements/CommandPalette/CommandPalette.stories.tsx
            ("m57068j1c1zsxfewzcd3jp3qjttx99vg", 10017),
            ("k570e9j5cj1t5gf0zwf3tq3vkawxhqr0", 10009),
            ("nx70paj9d23tdhf40ch42r3zktyxrddc", 10031),
            // npm-packages/system-udfs/convex/_system/frontend/latestExport.ts (`_storage`)
            ("kg27rxfv99gzp01wmph0gvt92d6hnvy6", 540),
            // npm-packages/dashboard/src/docs/pages/project/deployment/FileStorage.stories.tsx
            ("kg204m40v9m1bmkthp86n486mh85s0rc", 540),
        ];
        for (text, table_number) in known {
            let id = DocumentId::decode(text).unwrap();
            assert_eq!(id.table_number, table_number, "{text}");
            assert_eq!(id.encode(), text);
        }
    }

    #[test]
    fn table_number_sets_the_length() {
        let id = |table_number| DocumentId::new(table_number, [0xab; 16]).encode().len();
        assert_eq!(id(1), 31);
        assert_eq!(id(127), 31);
        assert_eq!(id(128), 32);
        assert_eq!(id(10001), 32);
        assert_eq!(id(16383), 32);
        assert_eq!(id(16384), 34);
        assert_eq!(id((1 << 21) - 1), 34);
        assert_eq!(id(1 << 21), 36);
        assert_eq!(id((1 << 28) - 1), 36);
        assert_eq!(id(1 << 28), 37);
        assert_eq!(id(u32::MAX), 37);
    }

    #[test]
    fn a_hand_built_id_decodes() {
        // Table 10001 = 0x2711 → varint 0x91 0x4e; internal id 0x00..=0x0f. The footer is
        // worked out by hand: sum = 0x91 + 0x4e + (0 + 1 + … + 15) = 0x157 → 0x57, and
        // sum of sums = 0x91 + 0xdf + Σ_{k=0..15} (0xdf + k(k+1)/2) = 4616 → 0x08.
        let mut binary = vec![0x91, 0x4e];
        binary.extend(0..16u8);
        assert_eq!(fletcher16(&binary), 0x0857);
        binary.extend([0x57, 0x08]);
        let text = base32_encode(&binary);
        let internal: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(
            DocumentId::decode(&text),
            Ok(DocumentId::new(10001, internal))
        );
        assert_eq!(DocumentId::new(10001, internal).encode(), text);
    }

    #[test]
    fn base32_is_most_significant_bit_first() {
        assert_eq!(base32_encode(&[0xff]), "zw");
        assert_eq!(base32_encode(&[0x00, 0x44, 0x32, 0x14, 0xc7]), "01234567");
        assert_eq!(base32_encode(&[]), "");
    }

    #[test]
    fn rejects_the_empty_string() {
        assert!(matches!(
            DocumentId::decode(""),
            Err(IdError::WrongLength { len: 0, .. })
        ));
    }

    #[test]
    fn rejects_wrong_lengths() {
        let text = DocumentId::generate(10001).encode();
        for len in [1, 30, 31, 33, 35] {
            let mut wrong = text.clone();
            wrong.truncate(len.min(32));
            while wrong.len() < len {
                wrong.push('0');
            }
            assert!(DocumentId::decode(&wrong).is_err(), "{wrong}");
        }
        let long = "0".repeat(10_000);
        let error = DocumentId::decode(&long).unwrap_err();
        assert!(matches!(error, IdError::WrongLength { len: 10_000, .. }));
        // The message quotes a bounded amount of the input.
        assert!(error.to_string().len() < 200, "{error}");
    }

    #[test]
    fn rejects_characters_outside_the_alphabet() {
        let text = DocumentId::generate(10001).encode();
        for bad in ['i', 'l', 'o', 'u', 'A', 'Z', '-', '=', ' '] {
            let wrong = format!("{bad}{}", &text[1..]);
            let error = DocumentId::decode(&wrong).unwrap_err();
            assert_eq!(
                error,
                IdError::NotBase32 {
                    id: wrong.clone(),
                    character: bad,
                    position: 0
                }
            );
            assert!(error.to_string().contains("not base32"), "{error}");
        }
        // A multi-byte character keeps the byte length of a valid id.
        let wrong = format!("é{}", &text[2..]);
        assert!(matches!(
            DocumentId::decode(&wrong),
            Err(IdError::NotBase32 {
                character: 'é', ..
            })
        ));
    }

    #[test]
    fn every_single_character_change_is_caught() {
        let id = DocumentId::generate(10001);
        let text = id.encode();
        for position in 0..text.len() {
            for &replacement in ALPHABET {
                let mut wrong = text.clone().into_bytes();
                if wrong[position] == replacement {
                    continue;
                }
                wrong[position] = replacement;
                let wrong = String::from_utf8(wrong).unwrap();
                let result = DocumentId::decode(&wrong);
                // Past the varint (the first four characters cover the two varint bytes),
                // a change only touches the internal id and footer: the checksum catches it.
                if position >= 4 {
                    assert_eq!(result, Err(IdError::ChecksumMismatch { id: wrong }));
                } else {
                    assert!(result.is_err(), "{wrong} decoded");
                }
            }
        }
    }

    #[test]
    fn rejects_nonzero_padding_bits() {
        // 31 characters carry 155 bits for 152 bits of data: the last three must be zero.
        let text = DocumentId::new(1, [7; 16]).encode();
        let last = digit_value(*text.as_bytes().last().unwrap()).unwrap();
        let wrong = format!(
            "{}{}",
            &text[..30],
            char::from(ALPHABET[usize::from(last | 1)])
        );
        assert_eq!(
            DocumentId::decode(&wrong),
            Err(IdError::NotCanonical { id: wrong })
        );
    }

    #[test]
    fn rejects_table_zero_and_redundant_varints() {
        // Build binaries by hand with a correct footer, so only the table number is wrong.
        let with_footer = |mut binary: Vec<u8>| {
            binary.extend_from_slice(&[9; 16]);
            let footer = fletcher16(&binary).to_le_bytes();
            binary.extend(footer);
            base32_encode(&binary)
        };
        let zero = with_footer(vec![0]);
        assert_eq!(
            DocumentId::decode(&zero),
            Err(IdError::BadTableNumber { id: zero })
        );
        let redundant = with_footer(vec![0x81, 0x00]);
        assert_eq!(
            DocumentId::decode(&redundant),
            Err(IdError::NotCanonical { id: redundant })
        );
        let too_big = with_footer(vec![0xff, 0xff, 0xff, 0xff, 0x1f]);
        assert_eq!(
            DocumentId::decode(&too_big),
            Err(IdError::BadTableNumber { id: too_big })
        );
        let max = with_footer(vec![0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            DocumentId::decode(&max).map(|id| id.table_number),
            Ok(u32::MAX)
        );
    }

    #[test]
    fn display_and_from_str_agree_with_encode() {
        let id = DocumentId::generate(10001);
        assert_eq!(id.to_string(), id.encode());
        assert_eq!(id.to_string().parse::<DocumentId>(), Ok(id));
    }

    #[test]
    fn generated_ids_differ() {
        assert_ne!(DocumentId::generate(10001), DocumentId::generate(10001));
    }

    #[test]
    fn generated_ids_begin_with_their_millisecond_and_sort_by_it() {
        let ms = 1_764_633_600_123_u64; // 2025-12-02
        let id = DocumentId::generate_at(10001, ms);
        assert_eq!(&id.internal[..6], &ms.to_be_bytes()[2..]);
        // Whatever the random bits, an id of a later millisecond sorts after, in the id's
        // order and in the store's key order.
        for _ in 0..100 {
            let earlier = DocumentId::generate_at(10001, ms);
            let later = DocumentId::generate_at(10001, ms + 1);
            assert!(earlier < later);
            assert!(
                crate::database::persistence::document_key(&earlier)
                    < crate::database::persistence::document_key(&later)
            );
        }
        // The time is the wall clock's.
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let now = DocumentId::generate(10001);
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let mut prefix = [0u8; 8];
        prefix[2..].copy_from_slice(&now.internal[..6]);
        assert!((before..=after).contains(&u64::from_be_bytes(prefix)));
    }

    fn table_number() -> impl Strategy<Value = u32> {
        prop_oneof![
            prop_oneof![Just(1), Just(127), Just(128), Just(10001), Just(u32::MAX)],
            1..=u32::MAX,
        ]
    }

    proptest! {
        #[test]
        fn ids_round_trip(table_number in table_number(), internal in any::<[u8; 16]>()) {
            let id = DocumentId::new(table_number, internal);
            let text = id.encode();
            prop_assert!((MIN_ENCODED_LEN..=MAX_ENCODED_LEN).contains(&text.len()));
            prop_assert!(text.bytes().all(|c| ALPHABET.contains(&c)));
            prop_assert_eq!(DocumentId::decode(&text), Ok(id));
        }

        #[test]
        fn decoding_never_panics(text in "[0-9a-z]{31,37}") {
            if let Ok(id) = DocumentId::decode(&text) {
                prop_assert_eq!(id.encode(), text);
            }
        }
    }
}
