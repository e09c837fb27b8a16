//! A small JSON Schema (2020-12) validator for the subset `envelope.schema.json` uses. A keyword
//! it does not know is an error, so the schema cannot grow a rule that no test checks.

use serde_json::Value;

/// Keywords that only describe.
const ANNOTATIONS: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "$defs",
    "examples",
];

/// `Ok` when `instance` is valid against the schema document `root`; otherwise where and why not.
pub fn validate(root: &Value, instance: &Value) -> Result<(), String> {
    check(root, root, instance, "")
}

fn type_matches(name: &str, instance: &Value) -> Result<bool, String> {
    Ok(match name {
        "object" => instance.is_object(),
        "array" => instance.is_array(),
        "string" => instance.is_string(),
        "boolean" => instance.is_boolean(),
        "null" => instance.is_null(),
        "number" => instance.is_number(),
        "integer" => instance.as_i64().is_some() || instance.as_u64().is_some(),
        other => return Err(format!("unknown type `{other}` in the schema")),
    })
}

fn number(schema: &Value, keyword: &str) -> Result<usize, String> {
    schema[keyword]
        .as_u64()
        .map(|n| n as usize)
        .ok_or_else(|| format!("`{keyword}` must be a non-negative integer"))
}

fn check(root: &Value, schema: &Value, instance: &Value, at: &str) -> Result<(), String> {
    let Some(keywords) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            Value::Bool(false) => Err(format!("{at}: not allowed")),
            _ => Err(format!("{at}: a schema must be an object or a boolean")),
        };
    };
    for (keyword, value) in keywords {
        match keyword.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "$ref" => {
                let pointer = value
                    .as_str()
                    .and_then(|r| r.strip_prefix('#'))
                    .ok_or_else(|| format!("only local $refs are supported: {value}"))?;
                let target = root
                    .pointer(pointer)
                    .ok_or_else(|| format!("$ref {pointer} resolves to nothing"))?;
                check(root, target, instance, at)?;
            }
            "oneOf" => {
                let alternatives = value.as_array().ok_or("oneOf must be an array")?;
                let mut why = Vec::new();
                for alternative in alternatives {
                    if let Err(e) = check(root, alternative, instance, at) {
                        why.push(e);
                    }
                }
                let passed = alternatives.len() - why.len();
                if passed != 1 {
                    return Err(format!(
                        "{at}: matches {passed} of the oneOf alternatives, not one ({})",
                        why.join("; ")
                    ));
                }
            }
            "type" => {
                let names: Vec<&str> = match value {
                    Value::String(s) => vec![s.as_str()],
                    Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                    _ => return Err("type must be a string or an array".into()),
                };
                let mut any = false;
                for name in &names {
                    any |= type_matches(name, instance)?;
                }
                if !any {
                    return Err(format!("{at}: {instance} is not of type {value}"));
                }
            }
            "enum" => {
                let options = value.as_array().ok_or("enum must be an array")?;
                if !options.contains(instance) {
                    return Err(format!("{at}: {instance} is not one of the enum"));
                }
            }
            "const" => {
                if value != instance {
                    return Err(format!("{at}: {instance} is not {value}"));
                }
            }
            "required" => {
                if let Some(object) = instance.as_object() {
                    for name in value.as_array().ok_or("required must be an array")? {
                        let name = name.as_str().ok_or("required names are strings")?;
                        if !object.contains_key(name) {
                            return Err(format!("{at}: `{name}` is missing"));
                        }
                    }
                }
            }
            "properties" => {
                let properties = value.as_object().ok_or("properties must be an object")?;
                if let Some(object) = instance.as_object() {
                    for (name, sub) in properties {
                        if let Some(field) = object.get(name) {
                            check(root, sub, field, &format!("{at}/{name}"))?;
                        }
                    }
                }
            }
            "additionalProperties" => {
                let declared = schema["properties"].as_object();
                if let Some(object) = instance.as_object() {
                    for (name, field) in object {
                        if declared.is_some_and(|d| d.contains_key(name)) {
                            continue;
                        }
                        check(root, value, field, &format!("{at}/{name}"))
                            .map_err(|e| format!("{e} (an undeclared property)"))?;
                    }
                }
            }
            "items" => {
                if let Some(items) = instance.as_array() {
                    for (i, item) in items.iter().enumerate() {
                        check(root, value, item, &format!("{at}/{i}"))?;
                    }
                }
            }
            "minItems" => {
                if let Some(items) = instance.as_array()
                    && items.len() < number(schema, keyword)?
                {
                    return Err(format!("{at}: too few items"));
                }
            }
            "minLength" => {
                if let Some(text) = instance.as_str()
                    && text.chars().count() < number(schema, keyword)?
                {
                    return Err(format!("{at}: too short"));
                }
            }
            "format" => {
                if value != "date-time" {
                    return Err(format!("unsupported format {value}"));
                }
                if let Some(text) = instance.as_str()
                    && chrono::DateTime::parse_from_rfc3339(text).is_err()
                {
                    return Err(format!("{at}: `{text}` is not an RFC 3339 date-time"));
                }
            }
            other => return Err(format!("the test validator does not support `{other}`")),
        }
    }
    Ok(())
}
