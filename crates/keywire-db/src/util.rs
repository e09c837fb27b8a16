//! Small shared rules: names, slugs and list cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Longest name of a workspace, project, environment or role.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Longest slug generated from a name (suffix included).
pub const MAX_SLUG_CHARS: usize = 60;

/// Checks a display name: 1 to 64 characters after trimming, letters, digits, spaces and
/// `- _ . ( ) ' & + : @ #`. Returns the trimmed name or a message for the field.
pub fn check_name(name: &str) -> Result<String, String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if trimmed.chars().count() > MAX_NAME_CHARS {
        return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
    }
    if let Some(bad) = trimmed
        .chars()
        .find(|c| !(c.is_alphanumeric() || " -_.()'&+:@#".contains(*c)))
    {
        return Err(format!(
            "must not contain {bad:?}: use letters, digits, spaces and - _ . ( ) ' & + : @ #"
        ));
    }
    Ok(trimmed.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Checks an optional description: at most 1000 characters, no control characters but newlines.
pub fn check_description(description: Option<&str>) -> Result<Option<String>, String> {
    let Some(text) = description.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "must be at most {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("must not contain control characters".into());
    }
    Ok(Some(text.to_owned()))
}

/// The slug a name suggests: lower-case ASCII letters and digits joined by single hyphens;
/// `fallback` when nothing is left (a name in another script).
pub fn slugify(name: &str, fallback: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= MAX_SLUG_CHARS - 8 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        fallback.to_owned()
    } else {
        slug
    }
}

/// The first of `base`, `base-2`, `base-3`... not in `taken`.
pub fn first_free_slug(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_owned();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !taken.contains(candidate))
        .expect("an unbounded range")
}

/// Whether `slug` could be a slug (for rejecting path junk early with a 404).
pub fn is_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG_CHARS + 10
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// An opaque list cursor around the sort key of the last item of a page.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// The sort key inside a cursor; `None` for a cursor this server did not make.
pub fn decode_cursor(cursor: &str) -> Option<String> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        // keywire never makes a cursor with NUL in it (and PostgreSQL cannot compare one).
        .filter(|key| !key.contains('\0'))
}

/// The sort key of a list ordered by time then id (newest first): `<micros>|<id>`.
pub fn time_key(at: chrono::NaiveDateTime, id: &str) -> String {
    format!("{}|{id}", at.and_utc().timestamp_micros())
}

/// The time and id inside a cursor made from [`time_key`].
pub fn decode_time_cursor(cursor: &str) -> Result<(chrono::NaiveDateTime, String), crate::DbError> {
    let invalid = || crate::DbError::InvalidInput("the cursor is not valid".into());
    let key = decode_cursor(cursor).ok_or_else(invalid)?;
    let (micros, id) = key.split_once('|').ok_or_else(invalid)?;
    let micros: i64 = micros.parse().map_err(|_| invalid())?;
    let at = chrono::DateTime::from_timestamp_micros(micros)
        .ok_or_else(invalid)?
        .naive_utc();
    Ok((at, id.to_owned()))
}

/// A page request: `limit` is clamped to 1..=200 (default 50).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items at most.
    pub limit: Option<u32>,
    /// Where to continue.
    pub after: Option<String>,
}

impl PageRequest {
    /// The effective limit.
    pub fn limit(&self) -> i64 {
        i64::from(self.limit.unwrap_or(50).clamp(1, 200))
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// The cursor of the next page, if there is one.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says there is more.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(&key(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_slugs() {
        assert_eq!(check_name("  My   Shop  ").unwrap(), "My Shop");
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("../etc").is_err());
        assert!(check_name("Ünïcödé Café").is_ok());
        assert_eq!(slugify("My Shop (EU)!", "project"), "my-shop-eu");
        assert_eq!(slugify("日本", "project"), "project");
        assert_eq!(slugify("--a--b--", "x"), "a-b");
        assert_eq!(
            first_free_slug("shop", &["shop".into(), "shop-2".into()]),
            "shop-3"
        );
        assert!(is_slug("my-shop-2") && !is_slug("../x") && !is_slug("A"));
    }

    #[test]
    fn cursors_round_trip_and_pages_know_when_there_is_more() {
        assert_eq!(decode_cursor(&encode_cursor("k|1")).as_deref(), Some("k|1"));
        assert_eq!(decode_cursor("%%%"), None);
        let page = Page::from_rows(vec![1, 2, 3], 2, ToString::to_string);
        assert_eq!(page.items, vec![1, 2]);
        assert_eq!(
            page.next_cursor
                .as_deref()
                .and_then(decode_cursor)
                .as_deref(),
            Some("2")
        );
        assert_eq!(
            Page::from_rows(vec![1, 2], 2, ToString::to_string).next_cursor,
            None
        );
        assert_eq!(
            PageRequest {
                limit: Some(0),
                after: None
            }
            .limit(),
            1
        );
        assert_eq!(
            PageRequest {
                limit: Some(999),
                after: None
            }
            .limit(),
            200
        );
    }
}
