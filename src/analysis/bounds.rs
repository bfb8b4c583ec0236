//! Judging a measured value against a metric's `min` and `max`.

use super::Verdict;
use crate::api::Outcome;

/// Passed when `value` is within the bounds (each optional, both inclusive), Failed outside
/// them; the message names the metric, the value and the bound.
pub fn judge(name: &str, value: f64, min: Option<f64>, max: Option<f64>) -> Verdict {
    let shown = show(value);
    let (outcome, message) = if value.is_nan() {
        (Outcome::Inconclusive, format!("{name} = NaN, no data"))
    } else if let Some(min) = min.filter(|min| value < *min) {
        let min = show(min);
        (
            Outcome::Failed,
            format!("{name} = {shown}, below the minimum {min}"),
        )
    } else if let Some(max) = max.filter(|max| value > *max) {
        let max = show(max);
        (
            Outcome::Failed,
            format!("{name} = {shown}, above the maximum {max}"),
        )
    } else {
        let within = match (min, max) {
            (Some(min), Some(max)) => format!(", between {} and {}", show(min), show(max)),
            (Some(min), None) => format!(", at least {}", show(min)),
            (None, Some(max)) => format!(", at most {}", show(max)),
            (None, None) => String::new(),
        };
        (Outcome::Passed, format!("{name} = {shown}{within}"))
    };
    Verdict {
        outcome,
        baseline: None,
        // Only finite numbers survive a JSON round trip into status.
        value: value.is_finite().then_some(value),
        message,
    }
}

/// A number for a person: at most six significant digits, no trailing zeros, and
/// Prometheus's spelling of infinities.
pub fn show(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if value == 0.0 {
        return "0".into();
    }
    let magnitude = value.abs().log10().floor() as i32;
    if !(-6..15).contains(&magnitude) {
        let text = format!("{value:.5e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        return format!("{}e{exponent}", trim_zeros(mantissa));
    }
    let decimals = (5 - magnitude).max(0) as usize;
    trim_zeros(&format!("{value:.decimals$}")).to_string()
}

fn trim_zeros(number: &str) -> &str {
    if number.contains('.') {
        number.trim_end_matches('0').trim_end_matches('.')
    } else {
        number
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_bounds_passes_and_says_which() {
        let verdict = judge("error-rate", 0.002, None, Some(0.01));
        assert_eq!(verdict.outcome, Outcome::Passed);
        assert_eq!(verdict.value, Some(0.002));
        assert_eq!(verdict.message, "error-rate = 0.002, at most 0.01");
        let verdict = judge("rps", 12.0, Some(10.0), Some(20.0));
        assert_eq!(verdict.outcome, Outcome::Passed);
        assert_eq!(verdict.message, "rps = 12, between 10 and 20");
        assert_eq!(
            judge("rps", 12.0, Some(10.0), None).message,
            "rps = 12, at least 10"
        );
        assert_eq!(judge("rps", 12.0, None, None).message, "rps = 12");
    }

    #[test]
    fn bounds_are_inclusive() {
        assert_eq!(
            judge("m", 0.01, Some(0.01), Some(0.01)).outcome,
            Outcome::Passed
        );
    }

    #[test]
    fn above_the_maximum_fails_naming_value_and_bound() {
        let verdict = judge("error-rate", 0.2, None, Some(0.01));
        assert_eq!(verdict.outcome, Outcome::Failed);
        assert_eq!(verdict.value, Some(0.2));
        assert_eq!(verdict.message, "error-rate = 0.2, above the maximum 0.01");
    }

    #[test]
    fn below_the_minimum_fails_naming_value_and_bound() {
        let verdict = judge("success-rate", 0.9, Some(0.99), Some(1.0));
        assert_eq!(verdict.outcome, Outcome::Failed);
        assert_eq!(
            verdict.message,
            "success-rate = 0.9, below the minimum 0.99"
        );
    }

    #[test]
    fn infinities_are_judged_but_not_recorded() {
        let verdict = judge("latency", f64::INFINITY, None, Some(0.5));
        assert_eq!(verdict.outcome, Outcome::Failed);
        assert_eq!(verdict.value, None);
        assert_eq!(verdict.message, "latency = +Inf, above the maximum 0.5");
    }

    #[test]
    fn nan_is_no_data() {
        let verdict = judge("latency", f64::NAN, None, Some(0.5));
        assert_eq!(verdict.outcome, Outcome::Inconclusive);
        assert_eq!(verdict.value, None);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(show(0.0), "0");
        assert_eq!(show(-0.0), "0");
        assert_eq!(show(0.5), "0.5");
        assert_eq!(show(0.49999999999999994), "0.5");
        assert_eq!(show(0.0123456789), "0.0123457");
        assert_eq!(show(1234567.0), "1234567");
        assert_eq!(show(-2.5), "-2.5");
        assert_eq!(show(0.000001), "0.000001");
        assert_eq!(show(1.5e-9), "1.5e-9");
        assert_eq!(show(-2.0e20), "-2e20");
        assert_eq!(show(f64::NEG_INFINITY), "-Inf");
    }
}
