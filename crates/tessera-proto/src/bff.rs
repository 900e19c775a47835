//! The token handler's API to the single-page app it serves (`tessera gateway`, `bff` mode;
//! the OAuth for Browser-Based Apps token-mediating backend): the bodies of its login, login-end
//! and logout answers. No answer carries a token.

use serde::{Deserialize, Serialize};

/// `POST …/login/start`: where to send the browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginStart {
    /// The issuer's authorization endpoint with the request's parameters.
    pub authorization_url: String,
}

/// `POST …/login/end`: whether the page URL ended a login, and the session's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginEnd {
    /// The page URL held an authorization response, which this answer handled.
    pub handled: bool,
    /// A session exists now.
    pub is_logged_in: bool,
    /// The CSRF token the app sends in a header with every API call, while a session exists.
    pub csrf: Option<String>,
}

/// `POST …/logout`: where to send the browser to end the issuer's session too, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logout {
    /// The issuer's end-session URL, when it has one and a post-logout redirect is configured.
    pub end_session_url: Option<String>,
}
