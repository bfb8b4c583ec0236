//! Breaches of the rules on the pod's extra containers and settings.

use serde_json::{Value, json};

use super::{Breach, breach, items, long, spec};

fn container(name: &str) -> Value {
    json!({"name": name, "image": "registry.example/side:1"})
}

pub fn breaches() -> Vec<Breach> {
    vec![
        breach(
            "container names must be unique across pod.initContainers and pod.containers",
            "",
            |o, _, v| {
                let pod = if v % 2 == 0 {
                    json!({"initContainers": [container("proxy"), container("proxy")]})
                } else {
                    json!({"initContainers": [container("proxy")], "containers": [container("proxy")]})
                };
                spec(o)["pod"] = pod;
            },
        ),
        breach(
            "pod.initContainers and pod.containers may not take the Microservice's name",
            "",
            |o, _, v| {
                let name = o["metadata"]["name"].clone();
                let mut taken = container("x");
                taken["name"] = name;
                let field = ["initContainers", "containers"][v % 2];
                spec(o)["pod"] = json!({ field: [taken] });
            },
        ),
        breach(
            "an init container's restartPolicy is Always (a native sidecar) or unset",
            "",
            |o, _, v| {
                let mut init = container("migrate");
                init["restartPolicy"] = ["OnFailure", "Never", "always"][v % 3].into();
                spec(o)["pod"] = json!({"initContainers": [init]});
            },
        ),
        breach("pod.containers take no restartPolicy", "", |o, _, _| {
            let mut side = container("agent");
            side["restartPolicy"] = "Always".into();
            spec(o)["pod"] = json!({"containers": [side]});
        }),
        breach(
            ".spec.pod.initContainers maxItems",
            "spec.pod.initContainers",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let list = items(n, |i| container(&format!("init-{i}")));
                spec(o)["pod"] = json!({ "initContainers": list });
            },
        ),
        breach(
            ".spec.pod.containers maxItems",
            "spec.pod.containers",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let list = items(n, |i| container(&format!("side-{i}")));
                spec(o)["pod"] = json!({ "containers": list });
            },
        ),
        breach(
            ".spec.pod.topologySpreadConstraints maxItems",
            "spec.pod.topologySpreadConstraints",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let list = items(
                    n,
                    |i| json!({"maxSkew": 1, "topologyKey": format!("k{i}"), "whenUnsatisfiable": "ScheduleAnyway"}),
                );
                spec(o)["pod"] = json!({ "topologySpreadConstraints": list });
            },
        ),
        breach(
            ".spec.pod.hostAliases maxItems",
            "spec.pod.hostAliases",
            |o, r, v| {
                let n = r.number() as usize + 1 + v;
                let list = items(n, |i| json!({"ip": format!("10.0.0.{}", i % 250 + 1)}));
                spec(o)["pod"] = json!({ "hostAliases": list });
            },
        ),
        breach(
            ".spec.pod.imagePullPolicy pattern",
            "spec.pod.imagePullPolicy",
            |o, _, v| {
                let policy = ["always", "Sometimes", ""][v % 3];
                spec(o)["pod"] = json!({ "imagePullPolicy": policy });
            },
        ),
        breach(
            ".spec.pod.priorityClassName maxLength",
            "spec.pod.priorityClassName",
            |o, r, v| {
                let name = long("a", r.number() as usize + 1 + v);
                spec(o)["pod"] = json!({ "priorityClassName": name });
            },
        ),
        breach(
            ".spec.pod.runtimeClassName maxLength",
            "spec.pod.runtimeClassName",
            |o, r, v| {
                let name = long("a", r.number() as usize + 1 + v);
                spec(o)["pod"] = json!({ "runtimeClassName": name });
            },
        ),
    ]
}
