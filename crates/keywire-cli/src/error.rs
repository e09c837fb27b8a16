//! The client's error: a message, the failing fields, and the exit code.

use serde_json::Value;

use crate::exit;
use crate::output::{Style, clean, paint_stderr};

/// A failed command.
#[derive(Debug)]
pub(crate) struct Error {
    /// The process's exit code.
    pub(crate) code: i32,
    /// One line for people.
    pub(crate) message: String,
    /// Invalid fields: (JSON pointer, why).
    pub(crate) fields: Vec<(String, String)>,
}

impl Error {
    pub(crate) fn new(code: i32, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// Exit code 1.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self::new(exit::FAILURE, message)
    }

    /// Exit code 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(exit::USAGE, message)
    }

    /// Exit code 4.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(exit::FORBIDDEN, message)
    }

    /// The exit code for an HTTP status.
    pub(crate) fn code_for(status: u16) -> i32 {
        match status {
            400 | 413 | 415 => exit::USAGE,
            401 | 403 => exit::FORBIDDEN,
            404 => exit::NOT_FOUND,
            409 => exit::CONFLICT,
            502..=504 => exit::UNAVAILABLE,
            _ => exit::FAILURE,
        }
    }

    /// From an error answer: an RFC 9457 problem document (or whatever else came back).
    pub(crate) fn from_answer(status: u16, body: &Value, text: &str) -> Self {
        let code = Self::code_for(status);
        let fields: Vec<(String, String)> = body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| {
                        (
                            clean(e["pointer"].as_str().unwrap_or("")),
                            clean(e["detail"].as_str().unwrap_or("")),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut detail = match body["detail"].as_str() {
            Some(detail) => clean(detail),
            None if !text.trim().is_empty() && !body.is_object() => {
                clean(&text.chars().take(200).collect::<String>())
            }
            None => body["title"].as_str().map(clean).unwrap_or_default(),
        };
        // A single invalid field: the detail repeats the pointer, which gets its own line.
        if let [(pointer, _)] = fields.as_slice()
            && let Some(rest) = detail.strip_prefix(&format!("{pointer}: "))
        {
            detail = rest.to_owned();
        }
        if detail.is_empty() {
            detail = "the server refused the request".into();
        }
        let tag = match body["code"].as_str() {
            Some(c) => format!("HTTP {status}, {}", clean(c)),
            None => format!("HTTP {status}"),
        };
        Error {
            code,
            message: format!("{detail} ({tag})"),
            fields: if fields.len() == 1 {
                fields
                    .into_iter()
                    .map(|(pointer, _)| (pointer, String::new()))
                    .collect()
            } else {
                fields
            },
        }
    }

    /// Prints the error on standard error: one line, then one line per invalid field.
    pub(crate) fn print(&self) {
        let mut text = format!("{} {}\n", paint_stderr("error:", Style::Red), self.message);
        for (pointer, why) in &self.fields {
            let pointer = if pointer.is_empty() { "/" } else { pointer };
            if why.is_empty() {
                text.push_str(&format!("  field: {pointer}\n"));
            } else {
                text.push_str(&format!("  field: {pointer}: {why}\n"));
            }
        }
        eprint!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_invalid_field_is_one_line_plus_its_pointer() {
        let body = json!({"type": "about:blank", "title": "Bad Request", "status": 400,
            "detail": "/metadata/url: must be an http(s) URL", "code": "invalid_field",
            "errors": [{"pointer": "/metadata/url", "detail": "must be an http(s) URL"}]});
        let err = Error::from_answer(400, &body, "");
        assert_eq!(err.code, exit::USAGE);
        assert_eq!(
            err.message,
            "must be an http(s) URL (HTTP 400, invalid_field)"
        );
        assert_eq!(
            err.fields,
            vec![("/metadata/url".to_owned(), String::new())]
        );
    }

    #[test]
    fn several_fields_keep_their_details_and_statuses_map_to_codes() {
        let body = json!({"detail": "2 fields are invalid", "code": "invalid_field",
            "errors": [{"pointer": "/a", "detail": "x"}, {"pointer": "/b", "detail": "y"}]});
        let err = Error::from_answer(400, &body, "");
        assert_eq!(err.fields.len(), 2);
        assert_eq!(err.fields[1], ("/b".to_owned(), "y".to_owned()));
        for (status, code) in [
            (401, exit::FORBIDDEN),
            (403, exit::FORBIDDEN),
            (404, exit::NOT_FOUND),
            (409, exit::CONFLICT),
            (422, exit::FAILURE),
            (500, exit::FAILURE),
            (503, exit::UNAVAILABLE),
        ] {
            assert_eq!(Error::code_for(status), code, "{status}");
        }
        // Not JSON: a bit of the text, without control characters.
        let err = Error::from_answer(502, &Value::Null, "bad gateway\x1b[31m");
        assert_eq!(err.message, "bad gateway?[31m (HTTP 502)");
    }
}
