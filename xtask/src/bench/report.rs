//! What the bench prints and saves: rows of (scenario, backend, metric, value, target, ratio
//! to the baseline), an aligned table of them, and the JSON document under `target/bench/`.

use serde_json::{Map, Value, json};

use super::stats::round3;

/// Version of the JSON document's shape; bump it when a field changes meaning.
pub const SCHEMA: u32 = 1;

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `secrets-10`, `baseline`, `growth`...
    pub scenario: String,
    /// `sqlite`, `postgres`, or `-` when the backend does not matter.
    pub backend: String,
    /// What was measured, with its unit.
    pub metric: String,
    /// The number (for JSON), when there is one.
    pub value: Option<f64>,
    /// The value as printed.
    pub display: String,
    /// The target it is compared with (printed, never asserted); empty when none.
    pub target: String,
    /// value ÷ baseline deliveries/s, for delivery rates.
    pub ratio: Option<f64>,
}

impl Row {
    /// A row without target or ratio.
    pub fn new(
        scenario: &str,
        backend: &str,
        metric: &str,
        value: Option<f64>,
        display: String,
    ) -> Row {
        Row {
            scenario: scenario.to_owned(),
            backend: backend.to_owned(),
            metric: metric.to_owned(),
            value,
            display,
            target: String::new(),
            ratio: None,
        }
    }

    /// The row as JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "backend": self.backend,
            "metric": self.metric,
            "value": self.value.map(round3),
            "display": self.display,
            "target": if self.target.is_empty() { Value::Null } else { json!(self.target) },
            "baselineRatio": self.ratio.map(round3),
        })
    }
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".into();
    }
    let rounded = x.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 {
        out.insert(0, '-');
    }
    out
}

/// Milliseconds with 2 decimals (`12.35`), or `n/a`.
pub fn ms(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".into(), |x| format!("{x:.2}"))
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

/// The rows as an aligned table, one string per line, with a header and a rule; a blank line
/// between scenarios.
pub fn table(rows: &[Row]) -> Vec<String> {
    let header = [
        "scenario",
        "backend",
        "metric",
        "value",
        "target",
        "vs baseline",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                r.backend.clone(),
                r.metric.clone(),
                r.display.clone(),
                r.target.clone(),
                r.ratio.map(|x| format!("{x:.3}")).unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let mut out = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = width - cell.chars().count();
            // Numbers (value, ratio) right-aligned, the rest left-aligned.
            if i == 3 || i == 5 {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
            out.push_str("  ");
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(&header.map(str::to_owned))];
    out.push("-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    let mut previous: Option<(&str, &str)> = None;
    for (row, cells) in rows.iter().zip(&cells) {
        let key = (row.scenario.as_str(), row.backend.as_str());
        if previous.is_some_and(|p| p != key) {
            out.push(String::new());
        }
        previous = Some(key);
        out.push(line(cells));
    }
    out
}

/// The JSON document: `meta` fields (an object) first, then `scenarios` and `rows`.
pub fn document(meta: Map<String, Value>, scenarios: Vec<Value>, rows: &[Row]) -> Value {
    let mut doc = Map::new();
    doc.insert("schema".into(), json!(SCHEMA));
    doc.extend(meta);
    doc.insert("scenarios".into(), Value::Array(scenarios));
    doc.insert(
        "rows".into(),
        Value::Array(rows.iter().map(Row::to_json).collect()),
    );
    Value::Object(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                ratio: Some(1.0),
                ..Row::new(
                    "baseline",
                    "-",
                    "deliveries/s",
                    Some(20000.4),
                    thousands(20000.4),
                )
            },
            Row {
                target: "≥ 6,000 and ≥ 20% of baseline".into(),
                ratio: Some(0.216),
                ..Row::new(
                    "events-10",
                    "postgres",
                    "deliveries/s",
                    Some(4321.0),
                    thousands(4321.0),
                )
            },
            Row::new(
                "events-10",
                "postgres",
                "lost / duplicated",
                None,
                "0 / 0".into(),
            ),
        ]
    }

    #[test]
    fn numbers_format() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-1234.0), "-1,234");
        assert_eq!(thousands(f64::NAN), "n/a");
        assert_eq!(ms(Some(1.234)), "1.23");
        assert_eq!(ms(None), "n/a");
        assert_eq!(mib(30 * 1024 + 512), "30.5");
    }

    #[test]
    fn table_is_aligned_and_grouped() {
        let lines = table(&rows());
        assert!(lines[0].starts_with("scenario"));
        assert!(lines[1].chars().all(|c| c == '-'));
        // A blank line between scenarios, none inside one.
        assert_eq!(lines[3], "");
        assert_eq!(lines.len(), 6);
        // Every value column ends at the same place: the right-aligned values line up.
        let ends: Vec<usize> = [2, 4]
            .iter()
            .map(|&i| lines[i].find("deliveries/s").unwrap())
            .collect();
        assert_eq!(ends[0], ends[1]);
        assert!(lines[4].contains("≥ 6,000"));
        assert!(lines[4].ends_with("0.216"));
    }

    #[test]
    fn document_shape() {
        let mut meta = Map::new();
        meta.insert("mode".into(), json!("quick"));
        let doc = document(meta, vec![json!({"name": "baseline"})], &rows());
        assert_eq!(doc["schema"], SCHEMA);
        assert_eq!(doc["mode"], "quick");
        assert_eq!(doc["scenarios"][0]["name"], "baseline");
        let row = &doc["rows"][1];
        assert_eq!(row["scenario"], "events-10");
        assert_eq!(row["backend"], "postgres");
        assert_eq!(row["value"], 4321.0);
        assert_eq!(row["baselineRatio"], 0.216);
        assert_eq!(row["target"], "≥ 6,000 and ≥ 20% of baseline");
        assert_eq!(doc["rows"][2]["value"], Value::Null);
        assert_eq!(doc["rows"][2]["target"], Value::Null);
    }
}
