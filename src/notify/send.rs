//! One delivery: the message in the sink's format, over HTTP, judged by the status code.

use std::time::Duration;

use serde_json::{Value, json};

use super::sinks::{Format, Sink};
use crate::api::Notification;

/// How long a sink may take to answer; the reconcile that delivers waits at most this.
const TIMEOUT: Duration = Duration::from_secs(5);

/// What the Microservice was, for the message.
pub struct Subject<'a> {
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The body `sink` receives for `notification`. Pure.
pub fn body(format: Format, subject: &Subject, notification: &Notification) -> Value {
    let Subject { namespace, name } = subject;
    let moment = notification.moment.as_str();
    let text = format!(
        "{namespace}/{name}: {moment} (revision {}). {}",
        notification.revision, notification.message
    );
    match format {
        Format::Cloudevents => json!({
            "specversion": "1.0",
            "id": notification.id,
            "source": format!("weir/{namespace}/{name}"),
            "type": format!("dev.weir.release.{}", moment.to_ascii_lowercase()),
            "subject": format!("{namespace}/{name}"),
            "time": notification.at.0.to_string(),
            "datacontenttype": "application/json",
            "data": {
                "namespace": namespace, "name": name, "moment": moment,
                "revision": notification.revision, "message": notification.message,
            },
        }),
        Format::Slack => json!({"text": text}),
        Format::Teams => json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "type": "AdaptiveCard", "version": "1.4",
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "body": [
                        {"type": "TextBlock", "weight": "Bolder", "text": format!("{namespace}/{name}: {moment}")},
                        {"type": "TextBlock", "wrap": true, "text": notification.message},
                        {"type": "TextBlock", "isSubtle": true, "text": format!("revision {}", notification.revision)},
                    ],
                },
            }],
        }),
    }
}

/// Sends `notification` to `sink`; Ok on a 2xx answer, else why not.
pub async fn deliver(
    client: &reqwest::Client,
    sink: &Sink,
    subject: &Subject<'_>,
    notification: &Notification,
) -> Result<(), String> {
    let content_type = match sink.format {
        Format::Cloudevents => "application/cloudevents+json",
        Format::Slack | Format::Teams => "application/json",
    };
    let request = client
        .post(&sink.url)
        .timeout(TIMEOUT)
        .header("Content-Type", content_type)
        .header("Idempotency-Key", &notification.id);
    let request = sink.headers.iter().fold(request, |request, (name, value)| {
        request.header(name, value)
    });
    let payload = body(sink.format, subject, notification).to_string();
    let answer = request.body(payload).send().await.map_err(|e| {
        if e.is_timeout() {
            format!("no answer within {}s", TIMEOUT.as_secs())
        } else {
            format!("cannot reach the sink: {}", root_cause(&e))
        }
    })?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the sink answered {status}"))
    }
}

fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Moment;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn aborted() -> Notification {
        Notification {
            id: "u1/r2/Aborted/1/team".into(),
            sink: "team".into(),
            moment: Moment::Aborted,
            revision: "r2".into(),
            message: "error-rate = 0.5, above the maximum 0.05".into(),
            at: Time("2026-01-01T00:00:00Z".parse().unwrap()),
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
        }
    }

    #[test]
    fn each_format_says_what_happened_and_names_the_metric() {
        let subject = Subject {
            namespace: "shop",
            name: "checkout",
        };
        let event = body(Format::Cloudevents, &subject, &aborted());
        assert_eq!(event["id"], "u1/r2/Aborted/1/team");
        assert_eq!(event["type"], "dev.weir.release.aborted");
        assert_eq!(
            event["data"]["message"],
            "error-rate = 0.5, above the maximum 0.05"
        );
        let slack = body(Format::Slack, &subject, &aborted());
        assert_eq!(
            slack["text"],
            "shop/checkout: Aborted (revision r2). error-rate = 0.5, above the maximum 0.05"
        );
        let teams = body(Format::Teams, &subject, &aborted());
        let card = &teams["attachments"][0]["content"];
        assert_eq!(card["body"][0]["text"], "shop/checkout: Aborted");
        assert_eq!(
            card["body"][1]["text"],
            "error-rate = 0.5, above the maximum 0.05"
        );
    }
}
