//! Distinguished names as clients register them (`tls_client_auth_subject_dn`, RFC 4514
//! text): parsed once here, for client registration and for matching certificates
//! (`flows::mtls`).

/// A distinguished name as `(attribute, value)` pairs: `CN=client-a, O=Example` (RFC 4514 with
/// `\,` escapes). Attribute names are upper-cased; `None` for anything that is not one.
pub(crate) fn parse_dn(dn: &str) -> Option<Vec<(String, String)>> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next()?),
            ',' | ';' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|part| {
            let (attr, value) = part.split_once('=')?;
            let (attr, value) = (attr.trim(), value.trim());
            (!attr.is_empty() && !value.is_empty()).then(|| (attr.to_ascii_uppercase(), value.to_owned()))
        })
        .collect::<Option<Vec<_>>>()
        .filter(|parts| !parts.is_empty())
}
