//! The OAuth error body shared by every endpoint (RFC 6749 §5.2, RFC 6750 §3, RFC 7591 §3.2.2).

use serde::{Deserialize, Serialize};

/// `{"error": "...", "error_description": "..."}` as sent by every failing endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A registered error code such as `invalid_request`.
    pub error: String,
    /// A human-readable explanation. Never contains CR, LF or TAB, and never a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl ErrorBody {
    /// An error body with a code and a description.
    pub fn new(error: &str, description: Option<&str>) -> ErrorBody {
        ErrorBody {
            error: error.to_owned(),
            error_description: description.map(|d| d.replace(['\r', '\n', '\t'], " ")),
        }
    }
}
