//! Matching what arrived at the sink with the changes the API accepted: nothing lost, nothing
//! twice, nothing unexpected. A delivery is keyed by (integration, key, version): the
//! integration from the sink's path (`/hook/<i>`), key and version from the envelope's
//! `data.payload` (`{"key": …, "environments": {"prod": <version>}}`).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use serde_json::Value;

use super::sink::Arrival;

/// (integration, key, version).
pub type DeliveryKey = (u32, String, i64);

/// One delivery, parsed.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Which integration (`/hook/<i>`).
    pub hook: u32,
    /// The entry's key.
    pub key: String,
    /// The version written in the environment.
    pub version: i64,
    /// When it arrived.
    pub at: Instant,
    /// Its `webhook-id`.
    pub id: String,
}

/// Parses a webhook delivery; `None` for anything else (a test event, another path).
pub fn parse(arrival: &Arrival, environment: &str) -> Option<Delivered> {
    let hook = arrival.hook?;
    let body: Value = serde_json::from_slice(&arrival.body).ok()?;
    let payload = &body["data"]["payload"];
    Some(Delivered {
        hook,
        key: payload["key"].as_str()?.to_owned(),
        version: payload["environments"][environment].as_i64()?,
        at: arrival.at,
        id: arrival.id.clone(),
    })
}

/// The verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Check {
    /// Deliveries that should have arrived.
    pub expected: usize,
    /// Distinct expected deliveries that arrived.
    pub received: usize,
    /// Expected ones that never arrived.
    pub missing: usize,
    /// Arrivals beyond the first of the same (integration, key, version).
    pub duplicated: usize,
    /// Arrivals beyond the first with the same `webhook-id` (retries of one run).
    pub duplicated_ids: usize,
    /// Arrivals that match no accepted change (or did not parse).
    pub unexpected: usize,
}

impl Check {
    /// Compares `arrivals` (`parsed` is what [`parse`] made of them, `None` when it did not
    /// parse) with `expected`.
    pub fn of(expected: &HashSet<DeliveryKey>, parsed: &[Option<Delivered>]) -> Check {
        let mut seen: HashMap<DeliveryKey, usize> = HashMap::new();
        let mut ids: HashSet<&str> = HashSet::new();
        let mut check = Check {
            expected: expected.len(),
            ..Check::default()
        };
        for delivered in parsed {
            let Some(d) = delivered else {
                check.unexpected += 1;
                continue;
            };
            if !d.id.is_empty() && !ids.insert(&d.id) {
                check.duplicated_ids += 1;
            }
            let key = (d.hook, d.key.clone(), d.version);
            if !expected.contains(&key) {
                check.unexpected += 1;
                continue;
            }
            let n = seen.entry(key).or_default();
            *n += 1;
            if *n > 1 {
                check.duplicated += 1;
            }
        }
        check.received = seen.len();
        check.missing = check.expected - check.received;
        check
    }

    /// Nothing missing, nothing twice, nothing unexpected.
    pub fn clean(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.unexpected == 0
    }

    /// As JSON.
    pub fn to_json(self) -> Value {
        serde_json::json!({
            "expected": self.expected,
            "received": self.received,
            "missing": self.missing,
            "duplicated": self.duplicated,
            "duplicatedIds": self.duplicated_ids,
            "unexpected": self.unexpected,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival(hook: Option<u32>, id: &str, key: &str, version: i64) -> Arrival {
        Arrival {
            at: Instant::now(),
            hook,
            id: id.into(),
            body: serde_json::to_vec(&serde_json::json!({
                "version": 1, "type": "SECRET_UPDATED",
                "data": {"payload": {"project": "app", "key": key, "environments": {"prod": version}}}
            }))
            .unwrap(),
        }
    }

    #[test]
    fn deliveries_parse_from_the_envelope() {
        let d = parse(&arrival(Some(3), "run_1", "K", 7), "prod").unwrap();
        assert_eq!((d.hook, d.key.as_str(), d.version), (3, "K", 7));
        assert!(parse(&arrival(None, "run_1", "K", 7), "prod").is_none());
        assert!(parse(&arrival(Some(3), "run_1", "K", 7), "dev").is_none());
    }

    #[test]
    fn lost_duplicated_and_unexpected_are_counted() {
        let expected: HashSet<DeliveryKey> = [
            (0, "A".to_owned(), 1),
            (1, "A".to_owned(), 1),
            (0, "A".to_owned(), 2),
        ]
        .into();
        let arrivals = [
            arrival(Some(0), "r1", "A", 1),
            arrival(Some(0), "r1", "A", 1), // a retry of the same run
            arrival(Some(1), "r2", "A", 1),
            arrival(Some(1), "r9", "A", 1), // a second run for the same event
            arrival(Some(5), "r3", "A", 1), // no such integration
        ];
        let mut parsed: Vec<Option<Delivered>> =
            arrivals.iter().map(|a| parse(a, "prod")).collect();
        parsed.push(None);
        let check = Check::of(&expected, &parsed);
        assert_eq!(
            check,
            Check {
                expected: 3,
                received: 2,
                missing: 1,
                duplicated: 2,
                duplicated_ids: 1,
                unexpected: 2,
            }
        );
        assert!(!check.clean());
        assert_eq!(check.to_json()["missing"], 1);
        let all = [
            arrival(Some(0), "a", "A", 1),
            arrival(Some(1), "b", "A", 1),
            arrival(Some(0), "c", "A", 2),
        ];
        let parsed: Vec<_> = all.iter().map(|a| parse(a, "prod")).collect();
        assert!(Check::of(&expected, &parsed).clean());
    }
}
