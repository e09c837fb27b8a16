//! Percentiles and rates: the pure arithmetic of the bench.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The distribution of a set of samples (milliseconds, say).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// How many samples.
    pub count: usize,
    /// Median (nearest rank).
    pub p50: f64,
    /// 95th percentile (nearest rank).
    pub p95: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// The `p`-th percentile (0 < p ≤ 100) of `sorted` by the nearest-rank method: the smallest
/// sample such that at least `p` % of the samples are ≤ it. `None` for no samples.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    // Nearest rank: ceil(p/100 · n), 1-based, clamped to [1, n].
    let rank = ((p / 100.0) * n as f64).ceil();
    let index = if rank.is_finite() && rank >= 1.0 {
        (rank as usize).min(n) - 1
    } else {
        0
    };
    Some(sorted[index])
}

impl Summary {
    /// Summarizes `samples` (any order; NaNs are dropped); `None` when there are none.
    pub fn of(mut samples: Vec<f64>) -> Option<Summary> {
        samples.retain(|s| !s.is_nan());
        samples.sort_by(f64::total_cmp);
        let count = samples.len();
        Some(Summary {
            count,
            p50: percentile(&samples, 50.0)?,
            p95: percentile(&samples, 95.0)?,
            p99: percentile(&samples, 99.0)?,
            max: *samples.last()?,
            mean: samples.iter().sum::<f64>() / count as f64,
        })
    }

    /// `{"count", "p50", "p95", "p99", "max", "mean"}`, values rounded to 3 decimals.
    pub fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "p50": round3(self.p50),
            "p95": round3(self.p95),
            "p99": round3(self.p99),
            "max": round3(self.max),
            "mean": round3(self.mean),
        })
    }
}

/// `x` rounded to 3 decimals (for JSON that a person reads).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `to − from` in milliseconds, negative when `to` is earlier (a delivery can reach the sink
/// before the API's answer reaches the client).
pub fn signed_ms(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64() * 1000.0
    } else {
        -((from - to).as_secs_f64() * 1000.0)
    }
}

/// `count` per second over `span`; `None` for an empty span.
pub fn rate(count: usize, span: Duration) -> Option<f64> {
    let seconds = span.as_secs_f64();
    (seconds > 0.0).then(|| count as f64 / seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 95.0), Some(95.0));
        assert_eq!(percentile(&samples, 99.0), Some(99.0));
        assert_eq!(percentile(&samples, 100.0), Some(100.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        // Ten samples: p99 is the largest, p50 the fifth.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 99.0), Some(10.0));
        assert_eq!(percentile(&ten, 50.0), Some(5.0));
    }

    #[test]
    fn summary_sorts_and_drops_nans() {
        let summary = Summary::of(vec![3.0, f64::NAN, 1.0, 2.0, -1.0]).unwrap();
        assert_eq!(summary.count, 4);
        assert_eq!(summary.p50, 1.0);
        assert_eq!(summary.p99, 3.0);
        assert_eq!(summary.max, 3.0);
        assert_eq!(summary.mean, 1.25);
        assert_eq!(Summary::of(vec![]), None);
        assert_eq!(Summary::of(vec![f64::NAN]), None);
        let json = summary.to_json();
        assert_eq!(json["count"], 4);
        assert_eq!(json["p99"], 3.0);
    }

    #[test]
    fn signed_durations_and_rates() {
        let a = Instant::now();
        let b = a + Duration::from_millis(5);
        assert!((signed_ms(a, b) - 5.0).abs() < 1e-9);
        assert!((signed_ms(b, a) + 5.0).abs() < 1e-9);
        assert_eq!(rate(10, Duration::from_secs(2)), Some(5.0));
        assert_eq!(rate(10, Duration::ZERO), None);
        assert_eq!(round3(1.23456), 1.235);
    }
}
