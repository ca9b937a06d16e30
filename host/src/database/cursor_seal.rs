//! Sealed pagination cursors. A cursor is the index key of the last document a page
//! scanned, and an index key holds that document's indexed values, its `_creationTime` and
//! its id — also when a filter kept the document out of the page. So the server never hands
//! one out in the clear: it encrypts and authenticates it (XChaCha20-Poly1305) under a key
//! kept in the data directory (`cursor_key`), and binds it to the table and index of the
//! query that made it.
//!
//! Sealing is deterministic: the nonce is a keyed hash of what is sealed (the SIV
//! construction), so one position always gives the same cursor. A query must be
//! deterministic (DESIGN.md section 1), and its `continueCursor` is part of its result; a
//! random nonce would make every run of a query answer differently. What it gives away is
//! only that two cursors stand at the same position. A nonce repeats only with its message,
//! which is the one case where repeating it is safe.
//!
//! A cursor that was altered, cut short, sealed by another server, or made for another
//! table or index does not open: it is `invalid cursor`, never a position. Opening one is
//! not the whole check: `Transaction::check_query` still refuses a position outside the
//! query's range (a cursor of the same index over another range opens fine).
//!
//! Wire form: URL-safe base64 (no padding) of `version || nonce || ciphertext || tag`. The
//! plaintext is the key's length and the key, padded to a multiple of `PAD_BYTES` so the
//! cursor's length says little about the indexed values.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{Key, KeyInit, XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

/// Bytes of a cursor key.
pub const CURSOR_KEY_BYTES: usize = 32;

/// The format of the sealed bytes; authenticated, so a cursor of another format never opens.
const VERSION: u8 = 1;
const NONCE_BYTES: usize = 24;
const TAG_BYTES: usize = 16;
/// The plaintext is padded to a multiple of this many bytes.
const PAD_BYTES: usize = 32;
/// Separates this use of the key from any other, in the associated data.
const DOMAIN: &[u8] = b"kiln cursor";
/// Derive the cipher's key and the nonce's key from the stored key, so neither is used
/// for two purposes.
const CIPHER_KEY_LABEL: &[u8] = b"kiln cursor cipher key";
const NONCE_KEY_LABEL: &[u8] = b"kiln cursor nonce key";

/// A cursor that does not open with this server's key for this table and index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid cursor: not one this server handed out for a query of this table and index (altered, cut short, or from another server)"
)]
pub struct InvalidCursor;

/// The key that seals and opens cursors. One per data directory.
#[derive(Clone)]
pub struct CursorKey {
    cipher: XChaCha20Poly1305,
    /// Keys the hash that makes each nonce.
    nonce_key: [u8; 32],
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    pub fn from_bytes(bytes: [u8; CURSOR_KEY_BYTES]) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            Sha256::new()
                .chain_update(label)
                .chain_update(bytes)
                .finalize()
                .into()
        };
        Self {
            cipher: XChaCha20Poly1305::new(&Key::from(derive(CIPHER_KEY_LABEL))),
            nonce_key: derive(NONCE_KEY_LABEL),
        }
    }

    /// A fresh random key.
    pub fn generate() -> anyhow::Result<Self> {
        Ok(Self::from_bytes(random_bytes()?))
    }

    /// `index_key`, sealed for queries of `index` over `table`.
    pub fn seal(&self, table: &str, index: &str, index_key: &[u8]) -> String {
        let padded_len = (4 + index_key.len()).div_ceil(PAD_BYTES) * PAD_BYTES;
        let mut plaintext = Vec::with_capacity(padded_len);
        plaintext.extend_from_slice(&(index_key.len() as u32).to_le_bytes());
        plaintext.extend_from_slice(index_key);
        plaintext.resize(padded_len, 0);
        let aad = associated_data(table, index);
        let nonce = self.nonce(&aad, &plaintext);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message under 256 GiB");
        let mut bytes = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The index key in `cursor`, if this key sealed it for `index` of `table`.
    pub fn open(&self, table: &str, index: &str, cursor: &str) -> Result<Vec<u8>, InvalidCursor> {
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| InvalidCursor)?;
        if bytes.len() < 1 + NONCE_BYTES + TAG_BYTES || bytes[0] != VERSION {
            return Err(InvalidCursor);
        }
        let (nonce, sealed) = bytes[1..].split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| InvalidCursor)?;
        let aad = associated_data(table, index);
        let plaintext = self
            .cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| InvalidCursor)?;
        // Authentic, so well formed; checked all the same rather than trusted to be.
        let (length, rest) = plaintext.split_at_checked(4).ok_or(InvalidCursor)?;
        let length = u32::from_le_bytes(length.try_into().map_err(|_| InvalidCursor)?) as usize;
        rest.get(..length).map(<[u8]>::to_vec).ok_or(InvalidCursor)
    }
}

impl CursorKey {
    /// A keyed hash of everything sealed: the same cursor for the same position, and
    /// different nonces for different ones.
    fn nonce(&self, aad: &[u8], plaintext: &[u8]) -> XNonce {
        let digest = Sha256::new()
            .chain_update(self.nonce_key)
            .chain_update((aad.len() as u64).to_le_bytes())
            .chain_update(aad)
            .chain_update(plaintext)
            .finalize();
        XNonce::try_from(&digest[..NONCE_BYTES]).expect("a SHA-256 digest holds 24 bytes")
    }
}

/// What a cursor is bound to: its format, table and index, each length-prefixed so no two
/// (table, index) pairs give the same bytes.
fn associated_data(table: &str, index: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(DOMAIN.len() + 9 + table.len() + index.len());
    aad.extend_from_slice(DOMAIN);
    aad.push(VERSION);
    for part in [table, index] {
        aad.extend_from_slice(&(part.len() as u32).to_le_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn random_bytes<const N: usize>() -> anyhow::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|err| {
        anyhow::anyhow!("cannot read the operating system's random source: {err}")
    })?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CursorKey {
        CursorKey::generate().unwrap()
    }

    #[test]
    fn a_sealed_cursor_opens_to_its_index_key_for_its_table_and_index_only() {
        let key = key();
        for index_key in [vec![], vec![7u8; 1], b"SECRET-CHANNEL and more".to_vec()] {
            let cursor = key.seal("messages", "by_channel", &index_key);
            assert_eq!(key.open("messages", "by_channel", &cursor), Ok(index_key));
            assert_eq!(
                key.open("messages", "by_author", &cursor),
                Err(InvalidCursor)
            );
            assert_eq!(key.open("other", "by_channel", &cursor), Err(InvalidCursor));
            // The length prefix keeps ("ab", "c") apart from ("a", "bc").
            assert_eq!(
                key.open("messagesby", "_channel", &cursor),
                Err(InvalidCursor)
            );
        }
    }

    #[test]
    fn a_cursor_reveals_neither_its_key_nor_much_of_its_length() {
        let key = key();
        let cursor = key.seal("messages", "by_channel", b"SECRET-CHANNEL");
        let bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"SECRET"));
        // One position always seals to the same cursor, so a query's result is a function
        // of its inputs; another position to another, of the same length.
        let again = key.seal("messages", "by_channel", b"SECRET-CHANNEL");
        assert_eq!(cursor, again);
        let other = key.seal("messages", "by_channel", b"SECRET-CHANNEM");
        assert_ne!(
            URL_SAFE_NO_PAD.decode(&other).unwrap()[..1 + NONCE_BYTES],
            bytes[..1 + NONCE_BYTES],
            "a different position gets a different nonce"
        );
        assert_eq!(cursor.len(), key.seal("messages", "by_channel", b"S").len());
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{cursor}"
        );
    }

    #[test]
    fn altered_cut_foreign_and_garbage_cursors_do_not_open() {
        let key = key();
        let cursor = key.seal("t", "by_creation_time", b"position");
        let open = |text: &str| key.open("t", "by_creation_time", text);
        assert!(open(&cursor).is_ok());
        // Every single-character change.
        for at in 0..cursor.len() {
            let mut altered = cursor.clone().into_bytes();
            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert_eq!(open(&altered), Err(InvalidCursor), "changed at {at}");
        }
        for cut in [0, 1, 10, cursor.len() - 1] {
            assert_eq!(open(&cursor[..cut]), Err(InvalidCursor), "cut to {cut}");
        }
        let other_server = CursorKey::generate().unwrap();
        assert_eq!(
            other_server.open("t", "by_creation_time", &cursor),
            Err(InvalidCursor)
        );
        for garbage in ["not-a-cursor!", "", "AAAA", &"A".repeat(200)] {
            assert_eq!(open(garbage), Err(InvalidCursor), "{garbage}");
        }
        assert!(
            InvalidCursor.to_string().starts_with("invalid cursor"),
            "{InvalidCursor}"
        );
    }

    #[test]
    fn the_same_key_bytes_open_what_they_sealed() {
        let bytes = [9u8; CURSOR_KEY_BYTES];
        let cursor = CursorKey::from_bytes(bytes).seal("t", "i", b"k");
        assert_eq!(
            CursorKey::from_bytes(bytes).open("t", "i", &cursor),
            Ok(b"k".to_vec())
        );
    }
}
