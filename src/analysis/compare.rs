//! Relative judgement: the new version's value against the stable version's on the same
//! query, within `compare.maxIncrease` and `compare.maxDecrease`.

use super::Verdict;
use super::bounds::show;
use crate::api::{Compare, Outcome};

/// A limit as written: a percentage of the stable value, or an absolute difference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    Percent(f64),
    Absolute(f64),
}

impl Limit {
    /// `10%` or `0.01`; None for anything else (admission refuses it).
    pub fn parse(text: &str) -> Option<Limit> {
        let text = text.trim();
        let limit = match text.strip_suffix('%') {
            Some(percent) => Limit::Percent(percent.parse().ok()?),
            None => Limit::Absolute(text.parse().ok()?),
        };
        let value = match limit {
            Limit::Percent(v) | Limit::Absolute(v) => v,
        };
        (value.is_finite() && value >= 0.0).then_some(limit)
    }

    /// How far from `stable` a value may move under this limit.
    fn allowance(self, stable: f64) -> f64 {
        match self {
            Limit::Percent(percent) => stable.abs() * percent / 100.0,
            Limit::Absolute(difference) => difference,
        }
    }

    fn describe(self) -> String {
        match self {
            Limit::Percent(percent) => format!("{}%", show(percent)),
            Limit::Absolute(difference) => show(difference),
        }
    }
}

/// Passed when `candidate` lies within the limits around `stable`; the message names both
/// values and the limit crossed.
pub fn judge(name: &str, candidate: f64, stable: f64, compare: &Compare) -> Verdict {
    let values = format!(
        "{name} = {} on the new version, {} on the stable version",
        show(candidate),
        show(stable)
    );
    let verdict = |outcome, message: String| Verdict {
        outcome,
        baseline: None,
        value: candidate.is_finite().then_some(candidate),
        message,
    };
    if candidate.is_nan() || stable.is_nan() {
        return verdict(
            Outcome::Inconclusive,
            format!("{values}: no data to compare"),
        );
    }
    let limit = |text: &Option<String>| text.as_deref().map(Limit::parse);
    let (increase, decrease) = (limit(&compare.max_increase), limit(&compare.max_decrease));
    if matches!(increase, Some(None)) || matches!(decrease, Some(None)) {
        return verdict(
            Outcome::Failed,
            format!("{name}: compare limits must read like 10% or 0.01"),
        );
    }
    if let Some(Some(up)) = increase
        && candidate > stable + up.allowance(stable)
    {
        let crossed = format!("more than {} above", up.describe());
        return verdict(Outcome::Failed, format!("{values}: {crossed}"));
    }
    if let Some(Some(down)) = decrease
        && candidate < stable - down.allowance(stable)
    {
        let crossed = format!("more than {} below", down.describe());
        return verdict(Outcome::Failed, format!("{values}: {crossed}"));
    }
    verdict(Outcome::Passed, format!("{values}: within the limits"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compare(increase: Option<&str>, decrease: Option<&str>) -> Compare {
        Compare {
            max_increase: increase.map(Into::into),
            max_decrease: decrease.map(Into::into),
        }
    }

    #[test]
    fn limits_read_as_a_percentage_or_a_difference() {
        assert_eq!(Limit::parse("10%"), Some(Limit::Percent(10.0)));
        assert_eq!(Limit::parse("0.01"), Some(Limit::Absolute(0.01)));
        assert_eq!(Limit::parse("2.5%"), Some(Limit::Percent(2.5)));
        for bad in ["", "%", "ten%", "-1", "1e999"] {
            assert_eq!(Limit::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_relative_increase_past_the_limit_fails_and_names_both_values() {
        let limit = compare(Some("10%"), None);
        let failed = judge("latency", 0.3, 0.2, &limit);
        assert_eq!(failed.outcome, Outcome::Failed);
        assert_eq!(
            failed.message,
            "latency = 0.3 on the new version, 0.2 on the stable version: more than 10% above"
        );
        assert_eq!(failed.value, Some(0.3));
        assert_eq!(judge("latency", 0.21, 0.2, &limit).outcome, Outcome::Passed);
        assert_eq!(judge("latency", 0.1, 0.2, &limit).outcome, Outcome::Passed);
    }

    #[test]
    fn an_absolute_difference_judges_rates_near_zero() {
        let limit = compare(Some("0.01"), None);
        assert_eq!(judge("errors", 0.005, 0.0, &limit).outcome, Outcome::Passed);
        assert_eq!(judge("errors", 0.02, 0.0, &limit).outcome, Outcome::Failed);
        let relative = compare(Some("10%"), None);
        assert_eq!(
            judge("errors", 0.005, 0.0, &relative).outcome,
            Outcome::Failed
        );
    }

    #[test]
    fn a_decrease_past_the_limit_fails() {
        let limit = compare(None, Some("1%"));
        let failed = judge("success", 0.97, 0.999, &limit);
        assert_eq!(failed.outcome, Outcome::Failed);
        assert!(
            failed.message.ends_with("more than 1% below"),
            "{}",
            failed.message
        );
        assert_eq!(
            judge("success", 0.995, 0.999, &limit).outcome,
            Outcome::Passed
        );
    }

    #[test]
    fn no_data_on_either_side_is_inconclusive() {
        let limit = compare(Some("10%"), None);
        assert_eq!(
            judge("m", f64::NAN, 1.0, &limit).outcome,
            Outcome::Inconclusive
        );
        assert_eq!(
            judge("m", 1.0, f64::NAN, &limit).outcome,
            Outcome::Inconclusive
        );
    }
}
