//! Percentiles and medians by sorting: the samples of a bench phase are few
//! enough (at most some hundred thousand) to sort.

use std::time::Duration;

use serde_json::{Value, json};

/// Latency percentiles of one phase, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Latency {
    pub(crate) count: usize,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

/// The `q`-quantile (0..=1) of sorted samples, nearest-rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Latency {
    /// Percentiles of samples in milliseconds.
    pub(crate) fn of_ms(mut ms: Vec<f64>) -> Self {
        ms.retain(|v| v.is_finite());
        ms.sort_by(f64::total_cmp);
        Self {
            count: ms.len(),
            p50: quantile(&ms, 0.50),
            p99: quantile(&ms, 0.99),
            p999: quantile(&ms, 0.999),
            max: ms.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// Percentiles of durations.
    pub(crate) fn of(samples: &[Duration]) -> Self {
        Self::of_ms(samples.iter().map(|d| ms(*d)).collect())
    }

    pub(crate) fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "p50_ms": finite(self.p50),
            "p99_ms": finite(self.p99),
            "p999_ms": finite(self.p999),
            "max_ms": finite(self.max),
        })
    }
}

/// A duration in milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The median of a few values (the middle one, or the mean of the two middle ones).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// A float for JSON: `null` when not finite.
pub(crate) fn finite(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1000.0).round() / 1000.0)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = Latency::of_ms((1..=1000).map(f64::from).collect());
        assert_eq!((l.p50, l.p99, l.p999, l.max), (500.0, 990.0, 999.0, 1000.0));
        assert_eq!(Latency::of_ms(vec![3.0]).p99, 3.0);
        assert!(Latency::of_ms(vec![]).p50.is_nan());
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
