//! Users: validation of what an operator registers, and password hashing with argon2id
//! (OWASP parameters: 19 MiB, 2 passes, 1 lane) off the async workers.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tessera_proto::admin::{CreateUser, UserInfo};

use crate::secret::SecretString;

/// A registered user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub email_verified: bool,
    pub disabled: bool,
    pub created_at: u64,
    /// Until when the user is locked out after repeated password failures (0: not locked).
    pub locked_until: u64,
    /// When the current streak of password failures began (0: none).
    pub failures_since: u64,
}

impl User {
    pub fn info(&self) -> UserInfo {
        UserInfo {
            id: self.id.clone(),
            username: self.username.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            email_verified: self.email_verified,
            disabled: self.disabled,
            created_at: self.created_at,
        }
    }
}

/// Why a user registration was refused; the message names the field.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidUser(pub String);

/// A validated registration, with the password still in clear until it is hashed.
pub struct NewUser {
    pub user: User,
    pub password: SecretString,
}

impl NewUser {
    pub fn parse(id: String, request: CreateUser, now: u64) -> Result<NewUser, InvalidUser> {
        let invalid = |msg: &str| Err(InvalidUser(msg.to_owned()));
        let username = request.username;
        if username.is_empty()
            || username.chars().count() > 64
            || username.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return invalid("username: 1 to 64 characters without spaces or control characters");
        }
        let password = check_password(request.password)?;
        if let Some(email) = &request.email
            && (email.chars().count() > 254
                || !email.contains('@')
                || email.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return invalid("email: not an email address");
        }
        if request.name.as_ref().is_some_and(|n| n.chars().count() > 200 || n.chars().any(char::is_control)) {
            return invalid("name: at most 200 printable characters");
        }
        Ok(NewUser {
            user: User {
                id,
                username,
                email: request.email,
                name: request.name,
                email_verified: request.email_verified.unwrap_or(false),
                disabled: false,
                locked_until: 0,
                failures_since: 0,
                created_at: now,
            },
            password,
        })
    }
}

/// NIST SP 800-63B §5.1.1.2: at least 8 characters, any characters, a generous maximum.
pub fn check_password(password: String) -> Result<SecretString, InvalidUser> {
    let length = password.chars().count();
    if !(8..=1024).contains(&length) {
        return Err(InvalidUser("password: between 8 and 1024 characters".into()));
    }
    Ok(SecretString::new(password))
}

/// Hashes a password into a PHC string on a blocking thread.
pub async fn hash_password(password: SecretString) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

/// A valid argon2id hash of a random password nobody knows: unknown users are checked against
/// it so that the time taken does not reveal which usernames exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$8J1V3H3jrDGL8n3x0lHZ9gYfJcBBTj8Sg1q/7B1bWZQ";

/// Checks `password` against a stored PHC string (or the dummy when there is none) on a
/// blocking thread. Returns false for any malformed hash.
pub async fn verify_password(stored: Option<String>, password: SecretString) -> anyhow::Result<bool> {
    let known = stored.is_some();
    let matches = tokio::task::spawn_blocking(move || {
        let stored = stored.as_deref().unwrap_or(DUMMY_HASH);
        match PasswordHash::new(stored) {
            Ok(parsed) => Argon2::default().verify_password(password.expose().as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    })
    .await?;
    Ok(known && matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(username: &str, password: &str) -> CreateUser {
        CreateUser {
            username: username.into(),
            password: password.into(),
            email: None,
            name: None,
            email_verified: None,
        }
    }

    #[test]
    fn registrations_are_validated_field_by_field() {
        let cases = [
            (request("", "correct horse"), "username"),
            (request("a b", "correct horse"), "username"),
            (request(&"x".repeat(65), "correct horse"), "username"),
            (request("alice", "short"), "password"),
            (CreateUser { email: Some("not-an-email".into()), ..request("alice", "correct horse") }, "email"),
            (CreateUser { name: Some("a\nb".into()), ..request("alice", "correct horse") }, "name"),
        ];
        for (req, field) in cases {
            let err = NewUser::parse("id".into(), req, 0).err().expect("should be refused");
            assert!(err.0.starts_with(field), "{err:?}");
        }
        assert!(NewUser::parse("id".into(), request("alice@example.com", "correct horse"), 0).is_ok());
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hash = hash_password(SecretString::new("correct horse".into())).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(Some(hash.clone()), SecretString::new("correct horse".into())).await.unwrap());
        assert!(!verify_password(Some(hash), SecretString::new("correct horsE".into())).await.unwrap());
        assert!(!verify_password(None, SecretString::new("correct horse".into())).await.unwrap());
        assert!(!verify_password(Some("garbage".into()), SecretString::new("x".into())).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
