//! API tokens: generating, hashing, issuing, listing and authenticating them.

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{NaiveDateTime, SubsecRound as _, TimeDelta};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sha2::{Digest as _, Sha256};

use crate::authority::{Authority, authorities_json, parse_authorities};
use crate::db::with_conn;
use crate::schema::{api_tokens, users};
use crate::util::{Page, PageRequest, decode_cursor};
use crate::{Db, DbError, User};

/// Every token this crate generates starts with this, so leaked tokens are easy to grep for.
pub const TOKEN_PREFIX: &str = "kw_";
/// Shortest token accepted from outside (the bootstrap token from configuration).
pub const MIN_TOKEN_CHARS: usize = 16;
/// Longest token accepted from outside; longer strings never authenticate.
pub const MAX_TOKEN_CHARS: usize = 512;
/// `last_used_at` is written at most this often per token, to keep authentication cheap.
const LAST_USED_RESOLUTION: TimeDelta = TimeDelta::seconds(60);

/// An API token as stored, without its secret: safe to log and to show.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
#[diesel(check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct ApiToken {
    /// UUID of the token.
    pub id: String,
    /// UUID of the owning [`User`].
    pub user_id: String,
    /// A label chosen by the owner.
    pub name: String,
    /// The first characters of the token (at most 10, and at most a quarter of it), to tell
    /// tokens apart without revealing them.
    pub prefix: String,
    /// When the token was created (UTC).
    pub created_at: NaiveDateTime,
    /// When the token last authenticated a request (UTC; updated at most once a minute).
    pub last_used_at: Option<NaiveDateTime>,
    /// After this instant (UTC) the token no longer authenticates; `None` means never.
    pub expires_at: Option<NaiveDateTime>,
    /// JSON array of the authorities the token is limited to; `None`: all of its user's.
    pub authorities: Option<String>,
}

impl ApiToken {
    /// The authorities the token is limited to; `None`: all of its user's.
    #[must_use]
    pub fn authority_limit(&self) -> Option<BTreeSet<Authority>> {
        self.authorities.as_deref().map(parse_authorities)
    }
}

/// A freshly issued token: its stored form and the clear token, which exists nowhere else.
///
/// Show [`IssuedToken::secret`] to its owner once; only its hash is kept. `Debug` omits it.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The stored form.
    pub token: ApiToken,
    /// The clear token, for the `Authorization: Bearer` header.
    pub secret: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &self.token)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The row to insert; holds the hash, so its `Debug` leaves that out.
#[derive(Insertable)]
#[diesel(table_name = api_tokens)]
pub(crate) struct NewApiToken {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) name: String,
    pub(crate) prefix: String,
    pub(crate) token_hash: String,
    pub(crate) created_at: NaiveDateTime,
    pub(crate) last_used_at: Option<NaiveDateTime>,
    pub(crate) expires_at: Option<NaiveDateTime>,
    pub(crate) authorities: Option<String>,
}

impl fmt::Debug for NewApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl NewApiToken {
    /// The row for `secret`, owned by `user_id`. `expires_at` is cut to microseconds, the
    /// precision both backends store, so the returned model equals what is read back.
    pub(crate) fn new(
        user_id: &str,
        name: &str,
        secret: &str,
        expires_at: Option<NaiveDateTime>,
    ) -> Self {
        Self {
            id: new_id(),
            user_id: user_id.to_owned(),
            name: name.to_owned(),
            prefix: display_prefix(secret),
            token_hash: hash_token(secret),
            created_at: now(),
            last_used_at: None,
            expires_at: expires_at.map(|at| at.trunc_subsecs(6)),
            authorities: None,
        }
    }

    /// The stored form, without the hash.
    pub(crate) fn to_model(&self) -> ApiToken {
        ApiToken {
            id: self.id.clone(),
            user_id: self.user_id.clone(),
            name: self.name.clone(),
            prefix: self.prefix.clone(),
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
            authorities: self.authorities.clone(),
        }
    }
}

/// A new random token: `kw_` followed by 32 bytes from the operating system's generator,
/// base64url without padding (46 characters in all).
///
/// # Panics
///
/// If the operating system's random number generator fails, which leaves nothing safe to do.
#[must_use]
pub fn generate_token() -> String {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// The lowercase hex SHA-256 of `token`: what the database stores and looks tokens up by.
///
/// A fast, unsalted hash is right here, unlike for passwords: tokens carry 256 random bits
/// (or at least [`MIN_TOKEN_CHARS`] characters chosen by an operator), so there is nothing to
/// guess by brute force, and a deterministic hash lets one indexed lookup find the token.
#[must_use]
pub fn hash_token(token: &str) -> String {
    to_hex(&Sha256::digest(token.as_bytes()))
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y));
    // `black_box` keeps the optimizer from turning the fold into an early-exit comparison.
    std::hint::black_box(difference) == 0
}

/// The part of a token shown to people: at most 10 characters and at most a quarter of it,
/// so a short operator-chosen token is not half revealed.
pub(crate) fn display_prefix(token: &str) -> String {
    let keep = (token.chars().count() / 4).min(10);
    token.chars().take(keep).collect()
}

/// Checks a token chosen outside this crate. The message never contains the token.
pub(crate) fn validate_provided_token(token: &str) -> Result<(), DbError> {
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(DbError::InvalidInput(format!(
            "the token must be at least {MIN_TOKEN_CHARS} characters long (got {chars})"
        )));
    }
    if chars > MAX_TOKEN_CHARS {
        return Err(DbError::InvalidInput(format!(
            "the token must be at most {MAX_TOKEN_CHARS} characters long (got {chars})"
        )));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DbError::InvalidInput(
            "the token must not contain whitespace or control characters".to_owned(),
        ));
    }
    Ok(())
}

fn bad_cursor() -> DbError {
    DbError::InvalidInput("the cursor is not valid".to_owned())
}

/// The `(created_at, id)` inside a `micros|id` cursor.
fn parse_time_cursor(cursor: &str) -> Option<(NaiveDateTime, String)> {
    let key = decode_cursor(cursor)?;
    let (micros, id) = key.split_once('|')?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?.naive_utc();
    Some((at, id.to_owned()))
}

/// A random (version 4) UUID in its hyphenated lowercase form.
pub(crate) fn new_id() -> String {
    let mut bytes = [0_u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = to_hex(&bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The current UTC time at the microsecond precision both backends store.
pub(crate) fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc().trunc_subsecs(6)
}

impl Db {
    /// Issues a new generated token for `user_id`; the clear token is in the result only.
    /// The token may act with all of its user's authorities; see [`Db::create_limited_token`].
    ///
    /// # Errors
    ///
    /// As [`Db::create_limited_token`].
    pub async fn create_token(
        &self,
        user_id: &str,
        name: &str,
        expires_at: Option<NaiveDateTime>,
    ) -> Result<IssuedToken, DbError> {
        self.create_limited_token(user_id, name, expires_at, None)
            .await
    }

    /// Issues a new generated token for `user_id`, limited to `authorities` when given (it
    /// then acts with the intersection of these and what its user holds in a workspace), and
    /// expiring at `expires_at` (UTC) when given. The clear token is in the result only.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] if the user does not exist, [`DbError::InvalidInput`] for an empty
    /// name, or any other [`DbError`].
    pub async fn create_limited_token(
        &self,
        user_id: &str,
        name: &str,
        expires_at: Option<NaiveDateTime>,
        authorities: Option<&BTreeSet<Authority>>,
    ) -> Result<IssuedToken, DbError> {
        if name.trim().is_empty() {
            return Err(DbError::InvalidInput(
                "the token name must not be empty".to_owned(),
            ));
        }
        let secret = generate_token();
        let mut row = NewApiToken::new(user_id, name, &secret, expires_at);
        row.authorities = authorities.map(authorities_json);
        let inserted = with_conn!(self, |conn| {
            diesel::insert_into(api_tokens::table)
                .values(&row)
                .execute(conn)
                .await
        });
        match inserted {
            Ok(_) => Ok(IssuedToken {
                token: row.to_model(),
                secret,
            }),
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            )) => Err(DbError::NotFound),
            Err(error) => Err(error.into()),
        }
    }

    /// The tokens of `user_id`, oldest first.
    ///
    /// # Errors
    ///
    /// Any [`DbError`] from the query.
    pub async fn list_tokens(&self, user_id: &str) -> Result<Vec<ApiToken>, DbError> {
        Ok(with_conn!(self, |conn| {
            api_tokens::table
                .filter(api_tokens::user_id.eq(user_id))
                .order((api_tokens::created_at, api_tokens::id))
                .select(ApiToken::as_select())
                .load(conn)
                .await?
        }))
    }

    /// The tokens of `user_id`, oldest first, one page at a time.
    ///
    /// # Errors
    ///
    /// [`DbError::InvalidInput`] for a cursor this server did not make, or any [`DbError`].
    pub async fn list_tokens_page(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<Page<ApiToken>, DbError> {
        let after = page
            .after
            .as_deref()
            .map(|cursor| parse_time_cursor(cursor).ok_or_else(bad_cursor))
            .transpose()?;
        let limit = page.limit();
        let rows: Vec<ApiToken> = with_conn!(self, |conn| {
            let mut query = api_tokens::table
                .filter(api_tokens::user_id.eq(user_id))
                .into_boxed();
            if let Some((at, id)) = &after {
                query = query.filter(
                    api_tokens::created_at
                        .gt(at)
                        .or(api_tokens::created_at.eq(at).and(api_tokens::id.gt(id))),
                );
            }
            query
                .order((api_tokens::created_at.asc(), api_tokens::id.asc()))
                .limit(limit + 1)
                .select(ApiToken::as_select())
                .load(conn)
                .await?
        });
        Ok(Page::from_rows(rows, limit, |token| {
            format!(
                "{}|{}",
                token.created_at.and_utc().timestamp_micros(),
                token.id
            )
        }))
    }

    /// Deletes (revokes) one token of `user_id`; it stops authenticating at once.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] if `user_id` has no token with this id (a token of another user
    /// is not found either), or any other [`DbError`].
    pub async fn revoke_token(&self, user_id: &str, token_id: &str) -> Result<(), DbError> {
        let deleted = with_conn!(self, |conn| {
            diesel::delete(
                api_tokens::table
                    .filter(api_tokens::id.eq(token_id))
                    .filter(api_tokens::user_id.eq(user_id)),
            )
            .execute(conn)
            .await?
        });
        if deleted == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }

    /// Deletes one token; it stops authenticating at once.
    ///
    /// # Errors
    ///
    /// [`DbError::NotFound`] if there is no such token, or any other [`DbError`].
    pub async fn delete_token(&self, token_id: &str) -> Result<(), DbError> {
        let deleted = with_conn!(self, |conn| {
            diesel::delete(api_tokens::table.find(token_id))
                .execute(conn)
                .await?
        });
        if deleted == 0 {
            return Err(DbError::NotFound);
        }
        Ok(())
    }

    /// Finds the user and token that `token` (a clear bearer token) belongs to.
    ///
    /// Returns `None` for an unknown or expired token. Records the use in `last_used_at`, at
    /// most once a minute per token, so most calls are a single indexed read.
    ///
    /// # Errors
    ///
    /// Any [`DbError`] from the queries; callers should answer 503 for
    /// [`DbError::Unavailable`] rather than 401.
    pub async fn authenticate(&self, token: &str) -> Result<Option<(User, ApiToken)>, DbError> {
        if token.is_empty() || token.len() > MAX_TOKEN_CHARS * 4 {
            return Ok(None);
        }
        let hash = hash_token(token);
        let now = now();
        with_conn!(self, |conn| {
            let found = api_tokens::table
                .inner_join(users::table)
                .filter(api_tokens::token_hash.eq(&hash))
                .select((
                    User::as_select(),
                    ApiToken::as_select(),
                    api_tokens::token_hash,
                ))
                .first::<(User, ApiToken, String)>(conn)
                .await
                .optional()?;
            let Some((user, mut api_token, stored_hash)) = found else {
                return Ok(None);
            };
            // The index compared hashes, which tells a timing observer nothing about the token
            // (SHA-256 is preimage resistant); this full-length, branch-free comparison keeps
            // the answer independent of how the database compares strings.
            if !constant_time_eq(stored_hash.as_bytes(), hash.as_bytes()) {
                return Ok(None);
            }
            if api_token.expires_at.is_some_and(|expires| expires <= now) {
                return Ok(None);
            }
            if api_token
                .last_used_at
                .is_none_or(|used| used + LAST_USED_RESOLUTION <= now)
            {
                diesel::update(api_tokens::table.find(&api_token.id))
                    .set(api_tokens::last_used_at.eq(now))
                    .execute(conn)
                    .await?;
                api_token.last_used_at = Some(now);
            }
            Ok(Some((user, api_token)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_random_and_url_safe() {
        let first = generate_token();
        let second = generate_token();
        assert_ne!(first, second);
        assert_eq!(first.len(), TOKEN_PREFIX.len() + 43);
        assert!(first.starts_with(TOKEN_PREFIX));
        assert!(
            first[TOKEN_PREFIX.len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{first}"
        );
    }

    #[test]
    fn constant_time_comparison_is_exact() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"Abc", b"abc"));
    }

    #[test]
    fn hash_is_lowercase_hex_sha256() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = generate_token();
        let hash = hash_token(&token);
        assert_ne!(hash, token);
        assert_eq!(hash.len(), 64);
        assert_eq!(hash, hash_token(&token));
    }

    #[test]
    fn prefix_reveals_at_most_a_quarter_and_ten_characters() {
        let token = generate_token();
        assert_eq!(display_prefix(&token), token[..10]);
        assert_eq!(display_prefix("0123456789abcdef"), "0123");
        assert_eq!(display_prefix("ééééééééééééééééé"), "éééé");
    }

    #[test]
    fn provided_tokens_are_checked_without_echoing_them() {
        let error = validate_provided_token("short-secret").unwrap_err();
        assert!(matches!(error, DbError::InvalidInput(_)));
        assert!(!error.to_string().contains("short-secret"), "{error}");
        assert!(validate_provided_token("a token with spaces").is_err());
        assert!(validate_provided_token(&"x".repeat(MAX_TOKEN_CHARS + 1)).is_err());
        assert!(validate_provided_token("exactly-16-chars").is_ok());
    }

    #[test]
    fn ids_are_version_4_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, new_id());
    }
}
