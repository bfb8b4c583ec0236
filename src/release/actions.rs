//! Manual actions on a release. They live in an annotation, outside the spec that Git owns,
//! and each value is acted on once (see `status.handledAction`).

/// `kubectl annotate ms NAME weir.dev/action=promote` (optionally `promote@<nonce>`).
pub const ACTION_ANNOTATION: &str = "weir.dev/action";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManualAction {
    /// End the current step (an indefinite pause, for example).
    Promote,
    /// Skip every remaining step and the analysis.
    PromoteFull,
    Abort,
    /// Release an aborted revision again.
    Retry,
    Pause,
    Resume,
    Unknown(String),
}

impl ManualAction {
    pub fn as_str(&self) -> &str {
        match self {
            ManualAction::Promote => "promote",
            ManualAction::PromoteFull => "promote-full",
            ManualAction::Abort => "abort",
            ManualAction::Retry => "retry",
            ManualAction::Pause => "pause",
            ManualAction::Resume => "resume",
            ManualAction::Unknown(value) => value,
        }
    }
}

/// Reads an annotation value: the verb, then an optional `@` and anything that makes a
/// repeat of the same verb a new value.
pub fn parse_action(value: &str) -> ManualAction {
    let verb = value.split('@').next().unwrap_or_default().trim();
    match verb {
        "promote" => ManualAction::Promote,
        "promote-full" => ManualAction::PromoteFull,
        "abort" => ManualAction::Abort,
        "retry" => ManualAction::Retry,
        "pause" => ManualAction::Pause,
        "resume" => ManualAction::Resume,
        _ => ManualAction::Unknown(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_makes_a_repeat_distinct_without_changing_the_verb() {
        assert_eq!(parse_action("promote"), ManualAction::Promote);
        assert_eq!(parse_action("promote@1764160000"), ManualAction::Promote);
        assert_eq!(parse_action("promote-full@x"), ManualAction::PromoteFull);
        assert_eq!(
            parse_action("rollback"),
            ManualAction::Unknown("rollback".into())
        );
    }
}
