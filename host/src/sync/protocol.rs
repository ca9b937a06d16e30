//! The messages of Convex's sync protocol, as the `convex` npm package (1.48,
//! `browser/sync/protocol.ts`) encodes them: JSON text frames, one message each, tagged by
//! `type`. Timestamps (`ts`) travel as the base64 of their 8 little-endian bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Value as Json, json};

/// A message from the client. Unknown fields are ignored (newer clients add some); an
/// unknown `type` fails to parse, and the connection ends with a `FatalError` naming it.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum ClientMessage {
    #[serde(rename_all = "camelCase")]
    Connect {
        session_id: String,
        connection_count: u64,
        #[serde(default)]
        last_close_reason: Option<String>,
        #[serde(default)]
        max_observed_timestamp: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    ModifyQuerySet {
        base_version: u64,
        new_version: u64,
        modifications: Vec<QuerySetModification>,
    },
    #[serde(rename_all = "camelCase")]
    Mutation {
        request_id: u64,
        udf_path: String,
        args: Vec<Json>,
        #[serde(default)]
        component_path: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Action {
        request_id: u64,
        udf_path: String,
        args: Vec<Json>,
        #[serde(default)]
        component_path: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Authenticate {
        token_type: TokenType,
        #[serde(default)]
        value: Option<String>,
        base_version: u64,
        #[serde(default)]
        impersonating: Option<Json>,
    },
    /// Client telemetry: accepted and ignored.
    Event {},
}

#[derive(Debug, Deserialize, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Admin,
    User,
    None,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
pub enum QuerySetModification {
    #[serde(rename_all = "camelCase")]
    Add {
        query_id: u64,
        udf_path: String,
        args: Vec<Json>,
        #[serde(default)]
        journal: Option<String>,
        #[serde(default)]
        component_path: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    Remove { query_id: u64 },
}

/// Where a client's view of the server stands: its query set, its identity and the commit
/// its results are at. Every Transition moves it from one to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateVersion {
    pub query_set: u64,
    pub identity: u64,
    pub ts: u64,
}

impl StateVersion {
    fn to_json(self) -> Json {
        json!({
            "querySet": self.query_set,
            "identity": self.identity,
            "ts": encode_ts(self.ts),
        })
    }
}

/// A timestamp as the client reads it (`u64ToLong`): base64 of 8 little-endian bytes.
pub fn encode_ts(ts: u64) -> String {
    STANDARD.encode(ts.to_le_bytes())
}

/// The inverse of [`encode_ts`]; `None` for anything that is not 8 bytes of base64.
pub fn decode_ts(text: &str) -> Option<u64> {
    let bytes: [u8; 8] = STANDARD.decode(text).ok()?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// What one Transition says of one query.
#[derive(Debug, Clone)]
pub enum Modification {
    Updated {
        query_id: u64,
        value: Json,
        log_lines: Vec<String>,
        journal: Option<String>,
    },
    Failed {
        query_id: u64,
        error_message: String,
        error_data: Option<Json>,
        log_lines: Vec<String>,
        journal: Option<String>,
    },
    Removed {
        query_id: u64,
    },
}

impl Modification {
    fn to_json(&self) -> Json {
        match self {
            Modification::Updated {
                query_id,
                value,
                log_lines,
                journal,
            } => json!({
                "type": "QueryUpdated",
                "queryId": query_id,
                "value": value,
                "logLines": log_lines,
                "journal": journal,
            }),
            Modification::Failed {
                query_id,
                error_message,
                error_data,
                log_lines,
                journal,
            } => {
                let mut json = json!({
                    "type": "QueryFailed",
                    "queryId": query_id,
                    "errorMessage": error_message,
                    "logLines": log_lines,
                    "journal": journal,
                });
                // Absent, not null, for an ordinary error: the client makes a
                // `ConvexError` of any `errorData` it finds, null included.
                if let Some(data) = error_data {
                    json["errorData"] = data.clone();
                }
                json
            }
            Modification::Removed { query_id } => json!({
                "type": "QueryRemoved",
                "queryId": query_id,
            }),
        }
    }
}

/// The outcome of a mutation or action, as its response carries it.
#[derive(Debug, Clone)]
pub enum CallOutcome {
    Success(Json),
    Failure { message: String, data: Option<Json> },
}

/// A message to the client, encoded when sent.
#[derive(Debug, Clone)]
pub enum ServerMessage {
    Transition {
        start: StateVersion,
        end: StateVersion,
        modifications: Vec<Modification>,
    },
    MutationResponse {
        request_id: u64,
        outcome: CallOutcome,
        /// The commit the mutation made: its results show from that transition on.
        ts: u64,
        log_lines: Vec<String>,
    },
    ActionResponse {
        request_id: u64,
        outcome: CallOutcome,
        log_lines: Vec<String>,
    },
    AuthError {
        error: String,
        base_version: u64,
        auth_update_attempted: bool,
    },
    FatalError {
        error: String,
    },
    Ping,
}

impl ServerMessage {
    pub fn to_json(&self) -> Json {
        match self {
            ServerMessage::Transition {
                start,
                end,
                modifications,
            } => json!({
                "type": "Transition",
                "startVersion": start.to_json(),
                "endVersion": end.to_json(),
                "modifications": modifications.iter().map(Modification::to_json).collect::<Vec<_>>(),
            }),
            ServerMessage::MutationResponse {
                request_id,
                outcome,
                ts,
                log_lines,
            } => {
                let mut message =
                    response_json("MutationResponse", *request_id, outcome, log_lines);
                if let CallOutcome::Success(_) = outcome {
                    message["ts"] = json!(encode_ts(*ts));
                }
                message
            }
            ServerMessage::ActionResponse {
                request_id,
                outcome,
                log_lines,
            } => response_json("ActionResponse", *request_id, outcome, log_lines),
            ServerMessage::AuthError {
                error,
                base_version,
                auth_update_attempted,
            } => json!({
                "type": "AuthError",
                "error": error,
                "baseVersion": base_version,
                "authUpdateAttempted": auth_update_attempted,
            }),
            ServerMessage::FatalError { error } => json!({"type": "FatalError", "error": error}),
            ServerMessage::Ping => json!({"type": "Ping"}),
        }
    }
}

fn response_json(kind: &str, request_id: u64, outcome: &CallOutcome, log_lines: &[String]) -> Json {
    match outcome {
        CallOutcome::Success(value) => json!({
            "type": kind,
            "requestId": request_id,
            "success": true,
            "result": value,
            "logLines": log_lines,
        }),
        CallOutcome::Failure { message, data } => {
            let mut json = json!({
                "type": kind,
                "requestId": request_id,
                "success": false,
                "result": message,
                "logLines": log_lines,
            });
            if let Some(data) = data {
                json["errorData"] = data.clone();
            }
            json
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_base64_of_little_endian_bytes() {
        assert_eq!(encode_ts(0), "AAAAAAAAAAA=");
        assert_eq!(encode_ts(1), "AQAAAAAAAAA=");
        for ts in [0, 1, 255, 1 << 40, u64::MAX] {
            assert_eq!(decode_ts(&encode_ts(ts)), Some(ts));
        }
        assert_eq!(decode_ts("AQ=="), None);
    }

    #[test]
    fn client_messages_parse_as_the_npm_client_sends_them() {
        let connect: ClientMessage = serde_json::from_str(
            r#"{"connectionCount":0,"lastCloseReason":"InitialConnect","clientTs":1796058465204,"type":"Connect","sessionId":"s1"}"#,
        )
        .unwrap();
        assert!(matches!(
            connect,
            ClientMessage::Connect {
                connection_count: 0,
                ..
            }
        ));
        let modify: ClientMessage = serde_json::from_str(
            r#"{"type":"ModifyQuerySet","baseVersion":0,"newVersion":1,"modifications":[{"type":"Add","queryId":0,"udfPath":"messages:list","args":[{}]},{"type":"Remove","queryId":3}]}"#,
        )
        .unwrap();
        let ClientMessage::ModifyQuerySet { modifications, .. } = modify else {
            panic!("{modify:?}")
        };
        assert_eq!(modifications.len(), 2);
        let auth: ClientMessage =
            serde_json::from_str(r#"{"type":"Authenticate","tokenType":"None","baseVersion":2}"#)
                .unwrap();
        assert!(matches!(
            auth,
            ClientMessage::Authenticate {
                token_type: TokenType::None,
                base_version: 2,
                ..
            }
        ));
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"Nope"}"#).is_err());
        assert!(
            serde_json::from_str::<ClientMessage>(r#"{"type":"Event","eventType":"x","event":{}}"#)
                .is_ok()
        );
    }

    #[test]
    fn a_failed_mutation_has_no_ts_and_a_successful_one_does() {
        let ok = ServerMessage::MutationResponse {
            request_id: 4,
            outcome: CallOutcome::Success(json!(1)),
            ts: 1,
            log_lines: vec![],
        }
        .to_json();
        assert_eq!(ok["ts"], "AQAAAAAAAAA=");
        let failed = ServerMessage::MutationResponse {
            request_id: 4,
            outcome: CallOutcome::Failure {
                message: "no".into(),
                data: Some(json!({"code": 1})),
            },
            ts: 1,
            log_lines: vec![],
        }
        .to_json();
        assert!(failed.get("ts").is_none());
        assert_eq!(failed["errorData"]["code"], 1);
    }
}
