//! OAuth scopes (RFC 6749 §3.3): space-delimited tokens of `%x21 / %x23-5B / %x5D-7E`.

use std::collections::BTreeSet;

/// A set of scope tokens, parsed once at the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidScope {
    /// Two spaces in a row, or a leading or trailing space.
    EmptyToken,
    /// A character outside the RFC 6749 §3.3 set.
    BadCharacter,
}

impl Scope {
    /// Parses a space-delimited scope string. The empty string is the empty scope.
    pub fn parse(s: &str) -> Result<Scope, InvalidScope> {
        if s.is_empty() {
            return Ok(Scope::default());
        }
        let mut tokens = BTreeSet::new();
        for token in s.split(' ') {
            if token.is_empty() {
                return Err(InvalidScope::EmptyToken);
            }
            if !token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)) {
                return Err(InvalidScope::BadCharacter);
            }
            tokens.insert(token.to_owned());
        }
        Ok(Scope(tokens))
    }

    /// Whether every token of `self` is in `other`.
    pub fn is_subset(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Whether the scope holds `token`.
    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    /// The scope with `token` added.
    pub fn with(mut self, token: &str) -> Scope {
        self.0.insert(token.to_owned());
        self
    }

    /// The scope with `token` removed.
    pub fn without(mut self, token: &str) -> Scope {
        self.0.remove(token);
        self
    }

    /// Whether the scope holds no token.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every token, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use expect_test::{Expect, expect};
    use proptest::prelude::*;

    use super::*;

    #[track_caller]
    fn check(scope: &str, expect: Expect) {
        expect.assert_eq(&format!("{:?}", Scope::parse(scope)));
    }

    #[test]
    fn parses_and_rejects() {
        check("read write", expect![[r#"Ok(Scope({"read", "write"}))"#]]);
        check("", expect![[r#"Ok(Scope({}))"#]]);
        check("openid  profile", expect![[r#"Err(EmptyToken)"#]]);
        check(" read", expect![[r#"Err(EmptyToken)"#]]);
        check("read\"", expect![[r#"Err(BadCharacter)"#]]);
        check("re\\ad", expect![[r#"Err(BadCharacter)"#]]);
        check("caf\u{e9}", expect![[r#"Err(BadCharacter)"#]]);
    }

    proptest! {
        #[test]
        fn round_trips(tokens in proptest::collection::btree_set("[!#-\\[\\]-~]{1,10}", 0..6)) {
            let joined = tokens.iter().cloned().collect::<Vec<_>>().join(" ");
            let scope = Scope::parse(&joined).unwrap();
            prop_assert_eq!(Scope::parse(&scope.to_string()).unwrap(), scope.clone());
            prop_assert_eq!(scope.to_string(), joined);
        }

        #[test]
        fn order_does_not_matter(tokens in proptest::collection::vec("[a-z:]{1,8}", 1..6)) {
            let forward = Scope::parse(&tokens.join(" ")).unwrap();
            let mut reversed = tokens.clone();
            reversed.reverse();
            prop_assert_eq!(forward, Scope::parse(&reversed.join(" ")).unwrap());
        }
    }
}
