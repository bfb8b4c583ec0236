//! Placeholders in a Prometheus query: `{{name}}`, `{{ namespace }}` and the like.

use super::ReleaseFacts;

/// `query` with each known placeholder replaced by its fact. Spaces inside the braces are
/// allowed; an unknown placeholder stays as written, so PromQL that happens to hold `{{` is
/// left alone.
pub fn render(query: &str, facts: &ReleaseFacts) -> String {
    substitute(query, |key| fact(key, facts))
}

/// `text` with each `{{key}}` whose `value(key)` is known replaced by it; the rest as written.
pub fn substitute<'a>(text: &str, value: impl Fn(&str) -> Option<&'a str>) -> String {
    let query = text;
    let mut rendered = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(start) = rest.find("{{") {
        rendered.push_str(&rest[..start]);
        let inside = &rest[start + 2..];
        let known = inside
            .find("}}")
            .and_then(|end| Some((value(inside[..end].trim())?, end)));
        match known {
            Some((value, end)) => {
                rendered.push_str(value);
                rest = &inside[end + 2..];
            }
            // Keep one brace and look again from the next one: `{{{name}}}` is `{` + `{{name}}` + `}`.
            None => {
                rendered.push('{');
                rest = &rest[start + 1..];
            }
        }
    }
    rendered.push_str(rest);
    rendered
}

fn fact<'a>(key: &str, facts: &'a ReleaseFacts) -> Option<&'a str> {
    let value = match key {
        "name" => &facts.name,
        "namespace" => &facts.namespace,
        "candidateSlot" | "canarySlot" => &facts.candidate_slot,
        "stableSlot" => &facts.stable_slot,
        "candidateRevision" => &facts.candidate_revision,
        "stableRevision" => &facts.stable_revision,
        _ => return None,
    };
    Some(value)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The release facts every analysis unit test measures with.
    pub(crate) fn facts() -> ReleaseFacts {
        ReleaseFacts {
            name: "checkout".into(),
            namespace: "shop".into(),
            candidate_slot: "green".into(),
            stable_slot: "blue".into(),
            candidate_revision: "7f9c2".into(),
            stable_revision: "1a2b3".into(),
            weight: 20,
            step_index: 1,
        }
    }

    #[test]
    fn replaces_every_known_placeholder() {
        let query = "{{name}} {{namespace}} {{candidateSlot}} {{canarySlot}} {{stableSlot}} \
                     {{candidateRevision}} {{stableRevision}}";
        assert_eq!(
            render(query, &facts()),
            "checkout shop green green blue 7f9c2 1a2b3"
        );
    }

    #[test]
    fn allows_spaces_inside_the_braces() {
        assert_eq!(
            render("{{ name }}/{{namespace  }}/{{\tstableSlot}}", &facts()),
            "checkout/shop/blue"
        );
    }

    #[test]
    fn replaces_placeholders_inside_promql() {
        let query = r#"sum(rate(http_requests_total{service="{{name}}-{{ candidateSlot }}",namespace="{{namespace}}",code=~"5.."}[1m]))"#;
        assert_eq!(
            render(query, &facts()),
            r#"sum(rate(http_requests_total{service="checkout-green",namespace="shop",code=~"5.."}[1m]))"#
        );
    }

    #[test]
    fn leaves_unknown_and_unclosed_placeholders_as_written() {
        assert_eq!(
            render("{{weightless}} {{name}}", &facts()),
            "{{weightless}} checkout"
        );
        assert_eq!(render("{{name", &facts()), "{{name");
        assert_eq!(render("{{}} {{ }}", &facts()), "{{}} {{ }}");
        assert_eq!(render("{{{name}}}", &facts()), "{checkout}");
    }

    #[test]
    fn a_query_without_placeholders_is_unchanged() {
        let query = r#"up{job="exporter"} == 1"#;
        assert_eq!(render(query, &facts()), query);
        assert_eq!(render("", &facts()), "");
    }
}
