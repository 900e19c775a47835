//! Strict `application/x-www-form-urlencoded` bodies (RFC 6749 §3.1, §3.2): a parameter may
//! appear at most once, and a parameter without a value counts as omitted.

use std::collections::HashMap;

/// A parsed form. Built only by [`Form::parse`].
#[derive(Debug, Default)]
pub struct Form {
    single: HashMap<String, String>,
    resources: Vec<String>,
}

/// Why a form was refused; the message goes into `error_description`.
#[derive(Debug, PartialEq, Eq)]
pub struct FormError(pub String);

impl Form {
    /// Parses a body. `resource` (RFC 8707 §2) is the one parameter that may repeat.
    pub fn parse(body: &[u8]) -> Result<Form, FormError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(body).map_err(|_| FormError("the body is not a valid form".into()))?;
        let mut form = Form::default();
        for (name, value) in pairs {
            // No identifier, token or text of ours contains NUL, and PostgreSQL cannot store one.
            if name.contains('\0') || value.contains('\0') {
                return Err(FormError("parameters must not contain NUL characters".into()));
            }
            if value.is_empty() {
                continue;
            }
            if name == "resource" {
                form.resources.push(value);
            } else if form.single.insert(name.clone(), value).is_some() {
                return Err(FormError(format!("parameter `{name}` is repeated")));
            }
        }
        Ok(form)
    }

    /// The value of a parameter that may appear once.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single.get(name).map(String::as_str)
    }

    /// Every `resource` parameter, in order.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn repeated_parameters_are_rejected() {
        let err = Form::parse(b"client_id=a&client_id=b").unwrap_err();
        assert_eq!(err, FormError("parameter `client_id` is repeated".into()));
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let form = Form::parse(b"scope=&grant_type=client_credentials&scope=read").unwrap();
        assert_eq!(form.get("scope"), Some("read"));
    }

    #[test]
    fn nul_characters_are_refused() {
        assert!(Form::parse(b"client_id=a%00b").is_err());
        assert!(Form::parse(b"a%00=b").is_err());
    }

    #[test]
    fn resources_may_repeat() {
        let form = Form::parse(b"resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb").unwrap();
        assert_eq!(form.resources(), ["https://a", "https://b"]);
    }

    proptest! {
        #[test]
        fn any_repeated_name_is_rejected(name in "[a-z_]{1,12}", a in "[a-zA-Z0-9]{1,8}", b in "[a-zA-Z0-9]{1,8}") {
            prop_assume!(name != "resource");
            let body = format!("{name}={a}&x_other=1&{name}={b}");
            prop_assert!(Form::parse(body.as_bytes()).is_err());
        }

        #[test]
        fn encoded_values_round_trip(value in "\\PC{1,40}") {
            let body = serde_urlencoded::to_string([("token", value.as_str())]).unwrap();
            let form = Form::parse(body.as_bytes()).unwrap();
            prop_assert_eq!(form.get("token"), Some(value.as_str()));
        }
    }
}
