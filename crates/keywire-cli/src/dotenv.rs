//! A small dotenv reader: `KEY=VALUE` lines, `export ` prefixes, `#` comments, single quotes
//! (literal), double quotes (with `\n`, `\t`, `\"`, `\\` escapes, may span lines).
//! Errors name the line, never a value.

/// The pairs of a dotenv text, in order.
pub(crate) fn parse(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((index, line)) = lines.next() {
        let number = index + 1;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(format!("line {number}: expected KEY=VALUE"));
        };
        let key = key.trim();
        let valid = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "line {number}: `{key}` is not a key (letters, digits and _, not starting with a digit)"
            ));
        }
        let rest = rest.trim_start();
        let value = if let Some(quoted) = rest.strip_prefix('\'') {
            let end = quoted
                .find('\'')
                .ok_or_else(|| format!("line {number}: unclosed single quote"))?;
            quoted[..end].to_owned()
        } else if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut current = quoted.to_owned();
            loop {
                if unescape_until_quote(&current, &mut value) {
                    break;
                }
                match lines.next() {
                    Some((_, next)) => {
                        value.push('\n');
                        current = next.to_owned();
                    }
                    None => return Err(format!("line {number}: unclosed double quote")),
                }
            }
            value
        } else {
            // Unquoted: up to a ` #` comment, trimmed.
            let end = rest.find(" #").unwrap_or(rest.len());
            rest[..end].trim().to_owned()
        };
        pairs.push((key.to_owned(), value));
    }
    Ok(pairs)
}

/// Appends `text` to `value` up to an unescaped `"`; whether the quote was found.
fn unescape_until_quote(text: &str, value: &mut String) -> bool {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return true,
            '\\' => match chars.next() {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some(other) => value.push(other),
                None => value.push('\\'),
            },
            c => value.push(c),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_common_forms() {
        let text = "# comment\n\nA=1\nexport B = two words # note\nC='lit $X \\n'\nD=\"x\\ny \\\"q\\\"\"\nE=\"multi\nline\"\nF=\n";
        let pairs = parse(text).unwrap();
        let get = |k: &str| pairs.iter().find(|(key, _)| key == k).unwrap().1.clone();
        assert_eq!(pairs.len(), 6);
        assert_eq!(get("A"), "1");
        assert_eq!(get("B"), "two words");
        assert_eq!(get("C"), "lit $X \\n");
        assert_eq!(get("D"), "x\ny \"q\"");
        assert_eq!(get("E"), "multi\nline");
        assert_eq!(get("F"), "");
    }

    #[test]
    fn errors_name_the_line_not_the_value() {
        let err = parse("A=1\nnot a pair s3cr3t\n").unwrap_err();
        assert_eq!(err, "line 2: expected KEY=VALUE");
        assert!(parse("1A=x").unwrap_err().starts_with("line 1:"));
        let err = parse("A=\"s3cr3t").unwrap_err();
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}
