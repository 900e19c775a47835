//! What the gateway accepts from a client and what it forwards: the one canonical form of a
//! request path (RFC 3986 §6.2.2), the `Connection` options a client may send, and the headers
//! that only the gateway may set (hop-by-hop, identity and routing headers are removed before
//! forwarding). docs/threat-model.md T-03 and T-04.

use http::{HeaderMap, header};

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1).
pub(crate) const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Identity headers only the gateway may set; a client's own are removed (GW-08), whatever
/// their spelling: names are compared after [`normalize_name`] (`X_Remote_User` is
/// `x-remote-user` to a CGI/WSGI upstream). Every `x-tessera-*`, `x-forwarded-*` and
/// `x-auth-request-*` header is removed too ([`PROTECTED_PREFIXES`]).
pub(crate) const IDENTITY_HEADERS: [&str; 11] = [
    "x-forwarded-user",
    "x-auth-sub",
    "x-user",
    "x-remote-user",
    "remote-user",
    "x-remote-email",
    "client-cert",
    "client-cert-chain",
    "x-client-cert",
    "x-ssl-client-cert",
    "x-forwarded-client-cert",
];

/// Headers with which a client could tell the upstream where the request came from, where it
/// was meant to go, or which method it "really" is; only the gateway may say such things
/// (docs/threat-model.md, T-04). Every `x-forwarded-*` header is removed too.
pub(crate) const CLIENT_ROUTING_HEADERS: [&str; 14] = [
    "forwarded",
    "x-real-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-original-method",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-http-destinationurl",
    "x-proxy-url",
];

/// Prefixes of header names only the gateway may set: its own identity headers, the
/// `X-Forwarded-*` family (`-For`, `-Host`, `-Proto`, `-User`, `-Email`, `-Groups`, …) and
/// oauth2-proxy's `X-Auth-Request-*` (`-User`, `-Email`, `-Groups`, `-Access-Token`, …).
pub(crate) const PROTECTED_PREFIXES: [&str; 3] = ["x-tessera-", "x-forwarded-", "x-auth-request-"];

/// A header name as CGI, WSGI, PHP and Rack see it: case and `_`/`-` do not matter.
pub(crate) fn normalize_name(name: &str) -> String {
    name.chars().map(|c| if c == '_' { '-' } else { c.to_ascii_lowercase() }).collect()
}

/// Whether a client's header of this (any-spelling) name must never reach an upstream: a
/// hop-by-hop header, an identity or routing header, or one with a protected prefix.
pub(crate) fn is_protected(name: &str) -> bool {
    let name = normalize_name(name);
    HOP_BY_HOP.contains(&name.as_str())
        || IDENTITY_HEADERS.contains(&name.as_str())
        || CLIENT_ROUTING_HEADERS.contains(&name.as_str())
        || PROTECTED_PREFIXES.iter().any(|prefix| name.starts_with(prefix))
}

/// The protected header that a request names in two spellings (`X-Tessera-Sub` and
/// `X_Tessera_Sub`), if any: such a request is refused, not guessed at.
pub(crate) fn ambiguous_protected(headers: &HeaderMap) -> Option<String> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for name in headers.keys() {
        if !is_protected(name.as_str()) {
            continue;
        }
        let normal = normalize_name(name.as_str());
        if seen.iter().any(|(n, raw)| *n == normal && *raw != name.as_str()) {
            return Some(normal);
        }
        seen.push((normal, name.as_str()));
    }
    None
}

/// Removes every header a client may not send on (any spelling of a protected name) and the
/// hop-by-hop headers its `Connection` header names.
pub(crate) fn strip_client_headers(headers: &mut HeaderMap) {
    strip(headers);
    let protected: Vec<http::HeaderName> = headers.keys().filter(|n| is_protected(n.as_str())).cloned().collect();
    for name in protected {
        headers.remove(name);
    }
}

/// What a `Connection` header may name: connection options and hop-by-hop headers. Naming an
/// end-to-end header (`Authorization`, `Cookie`, an identity header) would have the gateway
/// drop it after checking it (T-04).
const CONNECTION_OPTIONS: [&str; 9] = [
    "close",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
    "trailers",
    "proxy-connection",
    "transfer-encoding",
    "http2-settings",
];

/// The request's `Connection` options, if every one is allowed.
pub(crate) fn connection_ok(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().all(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .all(|option| CONNECTION_OPTIONS.iter().any(|allowed| allowed.eq_ignore_ascii_case(option)))
        })
    })
}

/// RFC 3986 §6.2.2: the one form of `path` that the gateway routes on and forwards. Percent-
/// encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; encodings of `/`, `\`,
/// `%`, `;` and control characters are refused (an upstream that decodes before routing would
/// route on a path the gateway never saw); any other encoding is kept, in upper case. The
/// result must be a [`normal_path`]. Case is significant: `/API` is not `/api`.
pub fn canonical_path(path: &str) -> Result<String, &'static str> {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte != b'%' {
            if !(0x21..0x7f).contains(&byte) {
                return Err("the path holds characters that must be percent-encoded");
            }
            out.push(char::from(byte));
            i += 1;
            continue;
        }
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        let (Some(high), Some(low)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) else {
            return Err("the path holds a malformed percent-encoding");
        };
        let decoded = u8::try_from(high * 16 + low).unwrap_or(0);
        if decoded.is_ascii_alphanumeric() || b"-._~".contains(&decoded) {
            out.push(char::from(decoded));
        } else if b"/\\%;".contains(&decoded) || decoded < 0x20 || decoded == 0x7f {
            return Err("the path holds encoded separators, percent signs, parameters or control characters");
        } else {
            out.push_str(&format!("%{decoded:02X}"));
        }
        i += 3;
    }
    normal_path(&out)?;
    decodes_to_text(&out)?;
    Ok(out)
}

/// The path, percent-decoded, must be UTF-8 without control characters: an invalid or overlong
/// sequence (`%C0%AE` for `.`, a lone `%FF`) means something else to each decoder behind us.
fn decodes_to_text(path: &str) -> Result<(), &'static str> {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        match (byte, hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push(u8::try_from(high * 16 + low).unwrap_or(0));
                i += 3;
            }
            _ => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    match std::str::from_utf8(&decoded) {
        Ok(text) if !text.chars().any(char::is_control) => Ok(()),
        Ok(_) => Err("the path holds encoded control characters"),
        Err(_) => Err("the path holds percent-encodings that are not UTF-8 (or are overlong)"),
    }
}

/// Whether a path is in normal form: no dot segments, empty segments, parameters, or encoded
/// characters that a server behind us might decode into any of those.
pub(crate) fn normal_path(path: &str) -> Result<(), &'static str> {
    let lower = path.to_ascii_lowercase();
    if ["%2e", "%2f", "%5c", "%00", "%25", ";", "\\"].iter().any(|bad| lower.contains(bad)) {
        return Err("the path holds encoded separators, dots or parameters");
    }
    if path.split('/').skip(1).enumerate().any(|(i, segment)| {
        segment == "." || segment == ".." || (segment.is_empty() && i + 1 < path.split('/').count() - 1)
    }) {
        return Err("the path holds empty or dot segments");
    }
    Ok(())
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub(crate) fn strip(headers: &mut HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()).collect::<Vec<_>>())
        .collect();
    for name in HOP_BY_HOP.iter().map(|s| (*s).to_owned()).chain(named) {
        headers.remove(name.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // #30: CGI/WSGI upstreams read `X_Tessera_Sub` as `X-Tessera-Sub`.
    #[test]
    fn every_spelling_of_a_protected_header_is_removed() {
        let mut headers = HeaderMap::new();
        for name in [
            "X_Tessera_Sub",
            "x_tessera_client_id",
            "X_Forwarded_User",
            "Remote-User",
            "Remote_User",
            "X-Remote-User",
            "X-Forwarded-Email",
            "X-Forwarded-Groups",
            "X-Auth-Request-User",
            "x_auth_request_email",
            "Transfer_Encoding",
            "X_Real_IP",
            "x-http-method-override",
            "Accept",
            "X-Request-Id",
        ] {
            headers.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("v"));
        }
        strip_client_headers(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "x-request-id"]);
    }

    #[test]
    fn a_protected_header_in_two_spellings_is_ambiguous() {
        let mut headers = HeaderMap::new();
        headers.insert("x-tessera-sub", HeaderValue::from_static("a"));
        assert_eq!(ambiguous_protected(&headers), None);
        headers.insert(http::HeaderName::from_static("x_tessera_sub"), HeaderValue::from_static("b"));
        assert_eq!(ambiguous_protected(&headers).as_deref(), Some("x-tessera-sub"));
        let mut ordinary = HeaderMap::new();
        ordinary.insert("x-request-id", HeaderValue::from_static("a"));
        ordinary.insert(http::HeaderName::from_static("x_request_id"), HeaderValue::from_static("b"));
        assert_eq!(ambiguous_protected(&ordinary), None, "only protected names matter");
    }

    #[track_caller]
    fn check_canonical(path: &str, expect: Result<&str, ()>) {
        assert_eq!(canonical_path(path).map_err(|_| ()), expect.map(str::to_owned), "{path}");
    }

    // Regression: #23. `/api/%61dmin` matched `/api` and reached upstreams that decode first as
    // `/api/admin`.
    #[test]
    fn paths_are_brought_to_one_canonical_form() {
        check_canonical("/api/%61dmin/x", Ok("/api/admin/x"));
        check_canonical("/api/%41DMIN", Ok("/api/ADMIN"));
        check_canonical("/a/%7e%2D%5f%2E%30", Ok("/a/~-_.0"));
        check_canonical("/a/%c3%a9", Ok("/a/%C3%A9"));
        // #30: not UTF-8, overlong, or C1 controls once decoded.
        for bad in ["/a/%C0%AE%C0%AE/admin", "/a/%ff", "/a/%c3", "/a/%e0%80%ae", "/a/%c2%85", "/a/%ed%a0%80"] {
            check_canonical(bad, Err(()));
        }
        check_canonical("/a/%20b", Ok("/a/%20b"));
        check_canonical("/a/%40", Ok("/a/%40"));
        for bad in [
            "/api/%2e%2e/admin",
            "/api/%2E/admin",
            "/api%2fadmin",
            "/api%2Fadmin",
            "/api/%5c../admin",
            "/api/%25",
            "/api/%252e",
            "/api/%3b",
            "/api/%00",
            "/api/%0a",
            "/api/%7f",
            "/api/%",
            "/api/%6",
            "/api/%zz",
            "/api/%+1",
            "/api/%-1",
            "/api/\\x",
            "/api;x",
        ] {
            check_canonical(bad, Err(()));
        }
    }

    #[test]
    fn connection_may_name_only_hop_by_hop_headers() {
        let ok = |v: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONNECTION, HeaderValue::from_str(v).unwrap());
            connection_ok(&headers)
        };
        assert!(ok("close") && ok("keep-alive, Upgrade") && ok("TE"));
        assert!(!ok("authorization") && !ok("close, Cookie") && !ok("x-tessera-sub") && !ok("dpop"));
        assert!(connection_ok(&HeaderMap::new()));
    }

    #[test]
    fn only_normal_paths_pass() {
        for ok in ["/", "/invoices", "/invoices/42", "/a/b/c/", "/x.y/z"] {
            assert!(normal_path(ok).is_ok(), "{ok}");
        }
        for bad in [
            "/invoices/../admin",
            "/invoices/./x",
            "/invoices/%2e%2e/admin",
            "/invoices/%2E%2E/admin",
            "/invoices%2fadmin",
            "//admin",
            "/invoices//x",
            "/invoices;x=1",
            "/invoices/..;/admin",
            "/invoices\\..\\admin",
            "/invoices/%00",
            "/invoices/%252e%252e/admin",
            "/invoices/..",
        ] {
            assert!(normal_path(bad).is_err(), "{bad}");
        }
    }
}
