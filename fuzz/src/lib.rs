//! The bodies of Weir's fuzz targets: each takes arbitrary bytes, feeds them to a parser of
//! untrusted text, and checks what it says against what the parser promises. cargo-fuzz
//! runs them under libFuzzer (`fuzz_targets/`); `tests/smoke.rs` runs them on stable over
//! [`corpus`], so CI exercises them without nightly.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use serde_json::Value;
use weir::api::{Microservice, Slot};
use weir::build::{self, Defaults};
use weir::release::{self, Inputs, ManualAction, SlotState, TrafficPlan, parse_action};

/// `weir::analysis::parse_duration`, for `pause.duration` and `analysis.interval`: the API
/// server admits `^([0-9]+(ms|s|m|h))+$` (at most 32 characters). It accepts exactly that
/// grammar, returns exactly the sum up to a year, and None beyond, never a wrong value.
pub fn duration(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = weir::analysis::parse_duration(text);
    match reference_duration(text) {
        None => assert_eq!(parsed, None, "{text:?} is not a duration"),
        Some(Some(exact)) if exact <= weir::analysis::MAX_DURATION => {
            assert_eq!(parsed, Some(exact), "{text:?}")
        }
        Some(_) => assert_eq!(
            parsed, None,
            "{text:?} is longer than Weir acts on (a year), yet parsed as {parsed:?}"
        ),
    }
}

/// The grammar `([0-9]+(ms|s|m|h))*` read by hand: None when `text` does not match it,
/// Some(None) when it does but the sum does not fit in a `Duration`.
fn reference_duration(text: &str) -> Option<Option<Duration>> {
    let bytes = text.as_bytes();
    let (mut at, mut nanos, mut fits) = (0, 0u128, true);
    while at < bytes.len() {
        let start = at;
        while at < bytes.len() && bytes[at].is_ascii_digit() {
            at += 1;
        }
        if at == start || at == bytes.len() {
            return None;
        }
        let unit: u128 = match (bytes[at], bytes.get(at + 1)) {
            (b'm', Some(b's')) => {
                at += 1;
                1_000_000
            }
            (b'm', _) => 60_000_000_000,
            (b's', _) => 1_000_000_000,
            (b'h', _) => 3_600_000_000_000,
            _ => return None,
        };
        at += 1;
        match text[start..at]
            .trim_end_matches(char::is_alphabetic)
            .parse::<u128>()
            .ok()
            .and_then(|n| n.checked_mul(unit))
            .and_then(|n| n.checked_add(nanos))
        {
            Some(sum) => nanos = sum,
            None => fits = false,
        }
    }
    let max = Duration::MAX.as_nanos();
    if !fits || nanos > max {
        return Some(None);
    }
    let secs = (nanos / 1_000_000_000) as u64;
    Some(Some(Duration::new(secs, (nanos % 1_000_000_000) as u32)))
}

/// `weir::release::parse_action`, for the `weir.dev/action` annotation anyone who may patch
/// a Microservice sets: a known verb (before an optional `@`, spaces trimmed) is that
/// action, anything else is `Unknown` with the whole value, and a known action's name reads
/// back as itself.
pub fn action(data: &[u8]) {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let verb = value.split('@').next().unwrap_or_default().trim();
    match parse_action(value) {
        ManualAction::Unknown(kept) => {
            assert_eq!(kept, value);
            assert!(
                !KNOWN_ACTIONS.contains(&verb),
                "{value:?} names {verb:?} but reads as unknown"
            );
        }
        action => {
            assert_eq!(action.as_str(), verb, "{value:?}");
            assert_eq!(parse_action(action.as_str()), action);
        }
    }
}

const KNOWN_ACTIONS: [&str; 6] = [
    "promote",
    "promote-full",
    "abort",
    "retry",
    "pause",
    "resume",
];

/// A Microservice read from arbitrary JSON, as the operator reads what the API server
/// stores: a value that reads writes back to JSON that reads as the same value, and the
/// pure builders and the release state machine handle it without panicking.
pub fn microservice(data: &[u8]) {
    let Ok(ms) = serde_json::from_slice::<Microservice>(data) else {
        return;
    };
    let written = serde_json::to_value(&ms).expect("a Microservice always serializes");
    let again: Microservice =
        serde_json::from_value(written.clone()).expect("what Weir writes, Weir reads");
    let rewritten = serde_json::to_value(&again).expect("serializes");
    assert!(
        same_json(&written, &rewritten),
        "not stable through JSON:\n{written}\n{rewritten}"
    );

    let defaults = Defaults::default();
    let revision = build::revision(&ms, &defaults);
    let active = ms
        .status
        .as_ref()
        .and_then(|s| s.active_slot)
        .unwrap_or_default();
    let total = build::effective_replicas(&ms);
    let name = ms.metadata.name.clone().unwrap_or_default();
    build::slot_deployment(&ms, active, total, &defaults);
    build::service(&ms, &name, Some(active));
    build::pod_disruption_budget(&ms);
    build::horizontal_pod_autoscaler(&ms);
    build::slot_deployment(&ms, release::other(active), total, &defaults);
    release::steps(&ms);

    // The state machine, with the active slot settled on the stable revision and the
    // other slot absent, once with every route confirmed and once with none.
    let stable = ms.status.as_ref().and_then(|s| s.stable_revision.clone());
    let settled = SlotState {
        exists: true,
        revision: stable,
        replicas: total,
        ready: total,
        settled: true,
        observed: true,
    };
    let (blue, green) = match active {
        Slot::Blue => (settled, SlotState::default()),
        Slot::Green => (SlotState::default(), settled),
    };
    let action = ms
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(release::ACTION_ANNOTATION))
        .map(|value| parse_action(value));
    // Routes confirmed or not; templates that resolve, and ones that hold a release back.
    let held_back = || Err(("TemplateNotFound", "no template".to_string()));
    let cases =
        [true, false].map(|confirmed| [(confirmed, Ok(Vec::new())), (confirmed, held_back())]);
    for (i, (confirmed, templates)) in cases.into_iter().flatten().enumerate() {
        let verified = move |_: &TrafficPlan| confirmed;
        // Frozen or not, and alone or beside a member of its group whose release aborts.
        let freeze = (i % 2 == 1).then(|| "fuzz".to_string());
        let group = ms.status.as_ref().and_then(|s| {
            let release = s.release.clone()?;
            Some(release::group::Group {
                name: "fuzz".into(),
                others: vec![release::group::Member {
                    name: "other".into(),
                    pending: i == 0,
                    release: Some(release),
                    aborted: false,
                }],
            })
        });
        let observed = Inputs {
            now: Timestamp::now(),
            revision: revision.clone(),
            freeze,
            group,
            blue: blue.clone(),
            green: green.clone(),
            verified: &verified,
            action: action.clone(),
            templates,
        };
        release::decide(&ms, &observed);
    }
}

/// Equal JSON, numbers compared to within a unit in the last place (serde_json's default
/// float parsing is not always the nearest).
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.get(k).is_some_and(|w| same_json(v, w)))
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| same_json(v, w))
        }
        (Value::Number(a), Value::Number(b)) => match (a.as_f64(), b.as_f64()) {
            (Some(a), Some(b)) => {
                a == b || (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs())
            }
            _ => a == b,
        },
        (a, b) => a == b,
    }
}

/// The facts a query template may name, none of them holding braces.
fn facts() -> weir::analysis::ReleaseFacts {
    weir::analysis::ReleaseFacts {
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

/// The placeholders a query template replaces.
const PLACEHOLDERS: [&str; 7] = [
    "{{name}}",
    "{{namespace}}",
    "{{candidateSlot}}",
    "{{canarySlot}}",
    "{{stableSlot}}",
    "{{candidateRevision}}",
    "{{stableRevision}}",
];

/// `weir::analysis::template::render`, over a tenant's PromQL: no known placeholder is
/// left, and a query without `{{` is sent as written.
pub fn query_template(data: &[u8]) {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let rendered = weir::analysis::template::render(query, &facts());
    for placeholder in PLACEHOLDERS {
        assert!(
            !rendered.contains(placeholder),
            "{query:?} rendered as {rendered:?}, still holding {placeholder}"
        );
    }
    if !query.contains("{{") {
        assert_eq!(rendered, query);
    }
}

/// `weir::analysis::parse_answer` (src/analysis/prometheus.rs), over whatever a Prometheus
/// address answers (first two bytes: the HTTP status): a value is never NaN, only a 2xx
/// answer gives a value or no data, and 400 or 422 is always a rejected query.
pub fn prometheus_answer(data: &[u8]) {
    use weir::analysis::{Answer, parse_answer};
    let Some((status, body)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = 100 + u16::from_be_bytes(*status) % 500;
    let body = String::from_utf8_lossy(body);
    match parse_answer(status, &body) {
        Answer::Value(value) => {
            assert!(!value.is_nan());
            assert!((200..300).contains(&status), "{status}: a value");
        }
        Answer::NoData => assert!((200..300).contains(&status), "{status}: no data"),
        Answer::Rejected(_) => {}
        Answer::Unavailable(_) => assert!(
            !matches!(status, 400 | 422),
            "{status}: a refused query read as unavailable"
        ),
    }
}

/// A small corpus per target: the examples the parsers are documented with, their edges,
/// and inputs that once broke them.
pub mod corpus {
    pub const DURATIONS: &[&str] = &[
        "30s",
        "2m",
        "1h30m",
        "500ms",
        "1m30s250ms",
        "0s",
        "",
        "30",
        "s",
        "1d",
        "1.5s",
        "-1s",
        "1 s",
        "m5",
        "5mss",
        "1ms5",
        "007s",
        "18446744073709551615ms",
        "99999999999999999999999s",
        // Within the API server's pattern and 32 characters, larger than a Duration.
        "9999999999999999999h",
        "18446744073709551615s1s",
    ];

    pub const ACTIONS: &[&str] = &[
        "promote",
        "promote@1764160000",
        "promote-full@x",
        " abort ",
        "retry@",
        "pause@a@b",
        "resume",
        "rollback",
        "",
        "@promote",
        "PROMOTE",
        "promote\u{0}",
    ];

    pub const MICROSERVICES: &[&str] = &[
        r#"{"apiVersion":"weir.dev/v1alpha1","kind":"Microservice","metadata":{"name":"a","namespace":"n"},"spec":{"image":"x:1"}}"#,
        r#"{"apiVersion":"weir.dev/v1alpha1","kind":"Microservice","metadata":{"name":"checkout","namespace":"shop","uid":"u-1"},
            "spec":{"image":"registry.example/checkout:1.4.2","replicas":4,"ports":[{"name":"http","port":80,"targetPort":8080}],
              "autoscaling":{"minReplicas":2,"maxReplicas":10},"disruption":{"maxUnavailable":"25%"},
              "rollout":{"strategy":"Canary","traffic":{"gatewayAPI":{"parentRefs":[{"name":"public","namespace":"gateways"}]}},
                "canary":{"steps":[{"setHeaderRoute":{"match":[{"name":"x-user-group","value":"beta"}]}},{"setMirror":{"percent":50}},
                  {"setWeight":10},{"pause":{"duration":"2m"}},{"analysis":{}},{"setWeight":50},{"pause":{}}]},
                "analysis":{"interval":"30s","failureLimit":2,"metrics":[{"name":"error-rate","prometheus":{"query":"up"},"max":0.01}]}}},
            "status":{"activeSlot":"blue","stableRevision":"0000000001","candidateRevision":"0000000002",
              "release":{"revision":"0000000002","stepIndex":3,"stepCount":7,"stepStartedAt":"2026-01-01T00:00:00Z","weight":10,
                "weightVerified":true,"analysis":{"consecutiveFailures":1,"lastRound":"Failed","measuredAt":"2026-01-01T00:00:10Z"}}}}"#,
        r#"{"apiVersion":"weir.dev/v1alpha1","kind":"Microservice","metadata":{"name":"bg","namespace":"n",
              "annotations":{"weir.dev/action":"promote@1"}},
            "spec":{"image":"x:2","replicas":3,"rollout":{"strategy":"BlueGreen","blueGreen":{"autoPromotionSeconds":0}}},
            "status":{"activeSlot":"green","stableRevision":"0000000001","scaleDownAt":"2026-01-01T00:00:00Z",
              "release":{"revision":"0000000003","stepIndex":-5,"stepCount":99,"stepStartedAt":"2026-01-01T00:00:00Z","weight":250,
                "weightVerified":false,"promoting":true,"returning":{"reason":"SpecChanged","message":"m","abort":false}}}}"#,
        r#"{"apiVersion":"weir.dev/v1alpha1","kind":"Microservice","metadata":{"name":"huge","namespace":"n"},
            "spec":{"image":"x:1","replicas":2147483647,"rollout":{"strategy":"Canary","canary":{"steps":[{"setWeight":100}]}}},
            "status":{"activeSlot":"blue","stableRevision":"r1","release":{"revision":"r2","stepIndex":0,"stepCount":1,
              "stepStartedAt":"2026-01-01T00:00:00Z","weight":0,"weightVerified":true}}}"#,
        r#"{"apiVersion":"weir.dev/v1alpha1","kind":"Microservice","metadata":{"name":"p","namespace":"n"},
            "spec":{"image":"x:1","rollout":{"strategy":"Canary","canary":{"steps":[{"pause":{"duration":"18446744073709551615s1s"}}]}}},
            "status":{"activeSlot":"blue","stableRevision":"r1","release":{"revision":"r2","stepIndex":0,"stepCount":1,
              "stepStartedAt":"2026-01-01T00:00:00Z","weight":0,"weightVerified":true}}}"#,
        r#"{"spec":{"image":"x"}}"#,
        r#"{"apiVersion":"weir.dev/v1alpha1","kind":"Microservice","metadata":{},"spec":{"image":"x","replicas":-3,"min":1e308}}"#,
        "",
        "[]",
    ];

    pub const QUERIES: &[&str] = &[
        r#"sum(rate(http_requests_total{service="{{name}}-{{ candidateSlot }}",namespace="{{namespace}}",code=~"5.."}[1m]))"#,
        "{{weightless}} {{name}}",
        "{{name",
        "{{}} {{ }}",
        "{{{name}}}",
        "{{{{name}}}}",
        "{{na{{name}}me}}",
        "{{ {{name}}",
        "}}{{",
        "",
        "{{\tstableSlot}}",
        "é{{name}}é",
    ];

    pub const ANSWERS: &[(u16, &str)] = &[
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"0.25"]}]}}"#,
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"scalar","result":[1700000000,"NaN"]}}"#,
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        ),
        (
            200,
            r#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
        ),
        (200, r#"{"status":"success"}"#),
        (200, "<html>login</html>"),
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#,
        ),
        (422, ""),
        (503, r#"{"status":"error","error":"timeout"}"#),
        (
            200,
            r#"{"data":{"resultType":"vector","result":[{"value":[1,"+Inf"]}]}}"#,
        ),
        (
            200,
            r#"{"data":{"resultType":"scalar","result":[1e999,"1"]}}"#,
        ),
    ];
}
