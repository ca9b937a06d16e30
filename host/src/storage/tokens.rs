//! Upload tokens: what an upload URL carries (`/api/storage/upload?token=...`). A token is
//! a random nonce and an expiry, sealed with the server's key (the one that seals cursors,
//! under another label, so neither passes for the other): it cannot be forged or changed.
//! It is good for one hour and one upload: the upload's commit records its nonce in
//! `_upload_tokens`, and a second upload with it finds it there.

use std::collections::BTreeMap;

use kiln_values::Value;

use crate::database::cursor_seal::CursorKey;
use crate::database::indexes::IndexRange;
use crate::database::persistence::Order;
use crate::database::system_tables::{BY_NONCE, UPLOAD_TOKENS};
use crate::database::transaction::{DbError, Transaction};

/// How long an upload URL stays good.
pub const TOKEN_LIFETIME_MS: f64 = 3_600_000.0;

/// What a token is sealed for (the "table" and "index" of a cursor).
const SEAL_TABLE: &str = "_storage";
const SEAL_PURPOSE: &str = "upload-token";

/// An upload token's contents.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadToken {
    /// Hex of 16 random bytes: what makes the token single-use.
    pub nonce: String,
    /// When it stops being good, in ms since the epoch.
    pub expires_ms: f64,
}

/// Why an upload token is refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("the upload URL's token is not one this server made")]
    Forged,
    #[error("the upload URL has expired (upload URLs are good for one hour)")]
    Expired,
    #[error("the upload URL was used already (each is good for one upload)")]
    Used,
}

impl UploadToken {
    /// A new token good for one hour from `now_ms`.
    pub fn new(now_ms: f64) -> anyhow::Result<Self> {
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|err| anyhow::anyhow!("no randomness: {err}"))?;
        // The tests' way to an expired URL without waiting an hour.
        let lifetime = if crate::failpoints::armed("UPLOAD_TOKENS", "expired") {
            -1.0
        } else {
            TOKEN_LIFETIME_MS
        };
        Ok(Self {
            nonce: hex::encode(random),
            expires_ms: now_ms + lifetime,
        })
    }

    pub fn seal(&self, key: &CursorKey) -> String {
        let mut payload = hex::decode(&self.nonce).expect("the nonce is hex");
        payload.extend_from_slice(&self.expires_ms.to_le_bytes());
        key.seal(SEAL_TABLE, SEAL_PURPOSE, &payload)
    }

    /// The token sealed in `text`, if it is good at `now_ms` (not whether it was used).
    pub fn open(key: &CursorKey, text: &str, now_ms: f64) -> Result<Self, TokenError> {
        let payload = key
            .open(SEAL_TABLE, SEAL_PURPOSE, text)
            .map_err(|_| TokenError::Forged)?;
        if payload.len() != 24 {
            return Err(TokenError::Forged);
        }
        let expires_ms = f64::from_le_bytes(payload[16..].try_into().expect("8 bytes"));
        if now_ms > expires_ms {
            return Err(TokenError::Expired);
        }
        Ok(Self {
            nonce: hex::encode(&payload[..16]),
            expires_ms,
        })
    }

    /// Records the token as used, in the upload's transaction; `Err(Used)` (as a
    /// `DbError::Forbidden` carrying that message) if it was already.
    pub fn use_up(&self, transaction: &mut Transaction) -> Result<(), DbError> {
        let range = IndexRange {
            equal: vec![("nonce".to_string(), Value::from(self.nonce.as_str()))],
            ..IndexRange::default()
        };
        let used = transaction.scan(UPLOAD_TOKENS, BY_NONCE, &range, Order::Asc, 1, None)?;
        if !used.is_empty() {
            return Err(DbError::Forbidden(TokenError::Used.to_string()));
        }
        transaction.system_insert(
            UPLOAD_TOKENS,
            BTreeMap::from([
                ("nonce".to_string(), Value::from(self.nonce.as_str())),
                ("expires".to_string(), Value::Float64(self.expires_ms)),
            ]),
        )?;
        Ok(())
    }
}

/// Deletes the records of used tokens that have surely expired (used more than a token's
/// lifetime before `now_ms`: a token is used before it expires), oldest first, at most
/// `limit`; returns how many, and whether older ones may remain.
pub fn forget_expired(
    transaction: &mut Transaction,
    now_ms: f64,
    limit: usize,
) -> Result<(usize, bool), DbError> {
    let oldest = transaction.scan(
        UPLOAD_TOKENS,
        crate::database::indexes::BY_CREATION_TIME,
        &IndexRange::default(),
        Order::Asc,
        limit,
        None,
    )?;
    let mut deleted = 0;
    for (_, document) in &oldest {
        if document.creation_time >= now_ms - TOKEN_LIFETIME_MS {
            return Ok((deleted, false));
        }
        transaction.system_delete(&document.id)?;
        deleted += 1;
    }
    Ok((deleted, oldest.len() == limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn used_tokens_are_forgotten_once_they_have_surely_expired() {
        use crate::database::committer::CommitterOptions;
        use crate::database::store::DocumentStore;
        use crate::database::transaction::TransactionLimits;
        let dir = tempfile::tempdir().unwrap();
        let db = crate::database::open(dir.path()).unwrap();
        let store = DocumentStore::open(
            db,
            TransactionLimits::default(),
            CommitterOptions::default(),
        )
        .unwrap();
        let now = crate::scheduler::jobs::now_ms();
        let token = UploadToken::new(now).unwrap();
        store
            .run_mutation(|transaction| token.use_up(transaction))
            .await
            .unwrap();
        let (forgotten, _) = store
            .run_mutation(|transaction| forget_expired(transaction, now, 10))
            .await
            .unwrap();
        assert_eq!(forgotten.0, 0, "a token used just now is kept");
        // It is still refused as used.
        let again = store
            .run_mutation(|transaction| token.use_up(transaction))
            .await
            .unwrap_err();
        assert!(again.to_string().contains("used already"), "{again}");
        let later = now + TOKEN_LIFETIME_MS + 1_000.0;
        let (forgotten, _) = store
            .run_mutation(|transaction| forget_expired(transaction, later, 10))
            .await
            .unwrap();
        assert_eq!(forgotten, (1, false));
    }

    #[test]
    fn a_token_opens_until_it_expires_and_only_with_its_key() {
        let key = CursorKey::generate().unwrap();
        let token = UploadToken::new(1_000.0).unwrap();
        let sealed = token.seal(&key);
        assert_eq!(UploadToken::open(&key, &sealed, 2_000.0), Ok(token.clone()));
        assert_eq!(
            UploadToken::open(&key, &sealed, 1_000.0 + TOKEN_LIFETIME_MS + 1.0),
            Err(TokenError::Expired)
        );
        let other = CursorKey::generate().unwrap();
        assert_eq!(
            UploadToken::open(&other, &sealed, 2_000.0),
            Err(TokenError::Forged)
        );
        assert_eq!(
            UploadToken::open(&key, "not-a-token", 2_000.0),
            Err(TokenError::Forged)
        );
        // A cursor sealed by the same key is no token.
        let cursor = key.seal("messages", "by_channel", &[0u8; 24]);
        assert_eq!(
            UploadToken::open(&key, &cursor, 2_000.0),
            Err(TokenError::Forged)
        );
    }
}
