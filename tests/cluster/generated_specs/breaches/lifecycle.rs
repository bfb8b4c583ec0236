//! Breaches of the rules on lifecycle hooks and the grace period.

use serde_json::json;

use super::{Breach, breach, spec};

pub fn breaches() -> Vec<Breach> {
    vec![
        breach(
            ".spec.pod.terminationGracePeriodSeconds minimum",
            "spec.pod.terminationGracePeriodSeconds",
            |o, r, v| {
                spec(o).as_object_mut().unwrap().remove("lifecycle");
                spec(o)["pod"] =
                    json!({"terminationGracePeriodSeconds": r.number() - 1 - v as i64});
            },
        ),
        breach(
            ".spec.lifecycle.preStopSleepSeconds minimum",
            "spec.lifecycle.preStopSleepSeconds",
            |o, r, v| {
                spec(o)["lifecycle"] = json!({"preStopSleepSeconds": r.number() - 1 - v as i64});
            },
        ),
        breach("lifecycle.preStop sets exactly one of", "", |o, _, v| {
            let hook = [
                json!({}),
                json!({"sleep": {"seconds": 1}, "exec": {"command": ["true"]}}),
                json!({"tcpSocket": {"port": 80}, "httpGet": {"port": 80}}),
            ];
            spec(o)["lifecycle"] = json!({"preStop": hook[v % 3]});
        }),
        breach("lifecycle.postStart sets exactly one of", "", |o, _, v| {
            let hook = [
                json!({}),
                json!({"sleep": {"seconds": 1}, "httpGet": {"port": 80}}),
                json!({"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
            ];
            spec(o)["lifecycle"] = json!({"postStart": hook[v % 3]});
        }),
        breach(
            "set lifecycle.preStop or lifecycle.preStopSleepSeconds",
            "",
            |o, _, v| {
                spec(o)["lifecycle"] =
                    json!({"preStop": {"sleep": {"seconds": 1}}, "preStopSleepSeconds": v});
            },
        ),
        breach(
            "lifecycle.preStopSleepSeconds must not be longer",
            "",
            |o, _, v| {
                spec(o)["pod"] = json!({"terminationGracePeriodSeconds": 10});
                spec(o)["lifecycle"] = json!({"preStopSleepSeconds": 11 + v});
            },
        ),
        breach("a lifecycle sleep must not be longer", "", |o, _, v| {
            spec(o).as_object_mut().unwrap().remove("pod");
            let sleep = json!({"sleep": {"seconds": 31 + v}});
            spec(o)["lifecycle"] = if v % 2 == 0 {
                json!({"preStop": sleep})
            } else {
                json!({"postStart": sleep})
            };
        }),
    ]
}
