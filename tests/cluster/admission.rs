//! Specs Weir cannot act on are refused by the API server itself, with a message a person
//! understands, before they ever reach the controller.

use crate::support;

use kube::Api;
use kube::api::{DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use support::{in_temp_ns, install_crds};

/// Creates a Microservice from raw JSON; returns the refusal message, or None if accepted.
async fn refusal(api: &Api<DynamicObject>, name: &str, spec: Value) -> Option<String> {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => None,
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "refused with {status:?}");
            Some(status.message)
        }
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn canary(steps: Value) -> Value {
    json!({"image": "x:1", "rollout": {"strategy": "Canary", "canary": {"steps": steps}}})
}

fn routed(steps: Value) -> Value {
    let mut spec = canary(steps);
    spec["ports"] = json!([{"name": "http", "port": 80}]);
    spec["rollout"]["traffic"] = json!({"gatewayAPI": {"parentRefs": [{"name": "public"}]}});
    spec
}

fn analysed(steps: Value) -> Value {
    let mut spec = canary(steps);
    spec["rollout"]["analysis"] =
        json!({"metrics": [{"name": "errors", "prometheus": {"query": "up"}, "max": 1}]});
    spec
}

fn metric(metric: Value) -> Value {
    let mut spec = canary(json!([{"setWeight": 10}]));
    spec["rollout"]["analysis"] = json!({"metrics": [metric]});
    spec
}

#[tokio::test]
async fn bad_specs_are_refused_at_admission_with_readable_messages() {
    let _cluster = support::shared().await;
    install_crds(&support::client().await).await;
    in_temp_ns(|client, ns| async move {
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk("weir.dev", "v1alpha1", "Microservice"));
        let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &resource);
        let port = |name: &str, port: i64| json!({"name": name, "port": port});
        let too_long = "n".repeat(56);
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            ("empty image", "a", json!({"image": ""}), "spec.image"),
            ("blank image", "a", json!({"image": "  "}), "image must not be empty"),
            ("negative replicas", "a", json!({"image": "x:1", "replicas": -1}), "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"),
            ("min above max", "a", json!({"image": "x:1", "autoscaling": {"minReplicas": 5, "maxReplicas": 2}}), "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas"),
            ("duplicate port names", "a", json!({"image": "x:1", "ports": [port("http", 80), port("http", 81)]}), "port names must be unique"),
            ("duplicate port numbers", "a", json!({"image": "x:1", "ports": [port("http", 80), port("admin", 80)]}), "port numbers must be unique"),
            ("port too high", "a", json!({"image": "x:1", "ports": [port("http", 70000)]}), "should be less than or equal to 65535"),
            ("port zero", "a", json!({"image": "x:1", "ports": [port("http", 0)]}), "should be greater than or equal to 1"),
            ("target port too high", "a", json!({"image": "x:1", "ports": [{"name": "http", "port": 80, "targetPort": 65536}]}), "should be less than or equal to 65535"),
            ("both disruption bounds", "a", json!({"image": "x:1", "disruption": {"maxUnavailable": 1, "minAvailable": 1}}), "set disruption.maxUnavailable or disruption.minAvailable, not both"),
            ("name too long", &too_long, json!({"image": "x:1"}), "metadata.name must be at most 55 characters"),
            ("name not a DNS label", "9lives", json!({"image": "x:1"}), "metadata.name must start with a letter"),
            ("wrong type", "a", json!({"image": "x:1", "replicas": "three"}), "spec.replicas"),
            ("unknown strategy", "a", json!({"image": "x:1", "rollout": {"strategy": "YOLO"}}), "spec.rollout.strategy: Unsupported value: \"YOLO\""),
            ("canary steps without Canary", "a", json!({"image": "x:1", "rollout": {"canary": {"steps": [{"setWeight": 10}]}}}), "rollout.canary is only used with strategy: Canary"),
            ("blueGreen without BlueGreen", "a", json!({"image": "x:1", "rollout": {"strategy": "Canary", "blueGreen": {}}}), "rollout.blueGreen is only used with strategy: BlueGreen"),
            ("two actions in one step", "a", canary(json!([{"setWeight": 10, "pause": {}}])), "each canary step sets exactly one of"),
            ("empty step", "a", canary(json!([{}])), "each canary step sets exactly one of"),
            ("weight above 100", "a", canary(json!([{"setWeight": 101}])), "should be less than or equal to 100"),
            ("bad pause duration", "a", canary(json!([{"pause": {"duration": "soon"}}])), "spec.rollout.canary.steps[0].pause.duration"),
            ("pause longer than a year", "a", canary(json!([{"pause": {"duration": "8785h"}}])), "pause.duration must be at most 8784h (a year)"),
            ("pause past any clock", "a", canary(json!([{"pause": {"duration": "18446744073709551615s1s"}}])), "spec.rollout.canary.steps[0].pause"),
            ("analysis interval over a day", "a", json!({"image": "x:1", "rollout": {"strategy": "Canary", "analysis": {"interval": "25h", "metrics": []}}}), "analysis.interval must be at most 24h"),
            ("header route without a router", "a", canary(json!([{"setHeaderRoute": {"match": [{"name": "x-user-group", "value": "beta"}]}}])), "setHeaderRoute and setMirror steps need rollout.traffic.gatewayAPI"),
            ("mirror without a router", "a", canary(json!([{"setMirror": {"percent": 10}}])), "setHeaderRoute and setMirror steps need rollout.traffic.gatewayAPI"),
            ("header match with value and regex", "a", routed(json!([{"setHeaderRoute": {"match": [{"name": "x", "value": "a", "regex": "a.*"}]}}])), "a header match sets exactly one of value or regex"),
            ("analysis step without analysis", "a", canary(json!([{"analysis": {}}])), "an analysis step needs rollout.analysis"),
            ("gate naming an unknown metric", "a", analysed(json!([{"analysis": {"metrics": ["nope"]}}])), "an analysis step names a metric that rollout.analysis.metrics does not define"),
            ("metric with two providers", "a", metric(json!({"name": "m", "prometheus": {"query": "up"}, "webhook": {"url": "http://x"}, "max": 1})), "a metric sets exactly one of prometheus, webhook, external or templateRef"),
            ("metric with a template and a query", "a", metric(json!({"name": "m", "templateRef": "error-rate", "prometheus": {"query": "up"}, "max": 1})), "a metric sets exactly one of prometheus, webhook, external or templateRef"),
            ("args without a template", "a", metric(json!({"name": "m", "prometheus": {"query": "up"}, "max": 1, "args": {"window": "1m"}})), "a metric's args are for its templateRef"),
            ("prometheus metric without bounds", "a", metric(json!({"name": "m", "prometheus": {"query": "up"}})), "a prometheus metric needs a min or a max bound"),
            ("min above max", "a", metric(json!({"name": "m", "prometheus": {"query": "up"}, "min": 2, "max": 1})), "a metric's min must not be greater than its max"),
            ("webhook that is not http", "a", metric(json!({"name": "m", "webhook": {"url": "ftp://x"}})), "spec.rollout.analysis.metrics[0].webhook.url"),
            ("route rule with its own backends", "a", json!({"image": "x:1", "ports": [{"name": "http", "port": 80}], "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}], "rules": [{"backendRefs": [{"name": "other", "port": 80}]}]}}}}), "rollout.traffic.gatewayAPI.rules take no backendRefs"),
            ("route rule with a mirror filter", "a", json!({"image": "x:1", "ports": [{"name": "http", "port": 80}], "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}], "rules": [{"filters": [{"type": "RequestMirror", "requestMirror": {"backendRef": {"name": "other", "port": 80}}}]}]}}}}), "rollout.traffic.gatewayAPI.rules take no RequestMirror filter"),
            ("gateway route to a port that is not one", "a", json!({"image": "x:1", "ports": [{"name": "http", "port": 80}], "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}], "port": "grpc"}}}}), "rollout.traffic.gatewayAPI.port must name one of spec.ports"),
            ("gateway route without ports", "a", json!({"image": "x:1", "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}]}}}}), "rollout.traffic.gatewayAPI needs at least one port"),
            ("preStop with two handlers", "a", json!({"image": "x:1", "lifecycle": {"preStop": {"sleep": {"seconds": 1}, "exec": {"command": ["true"]}}}}), "lifecycle.preStop sets exactly one of exec, httpGet, tcpSocket or sleep"),
            ("postStart without a handler", "a", json!({"image": "x:1", "lifecycle": {"postStart": {}}}), "lifecycle.postStart sets exactly one of exec, httpGet, tcpSocket or sleep"),
            ("preStop and a default pause", "a", json!({"image": "x:1", "lifecycle": {"preStop": {"sleep": {"seconds": 1}}, "preStopSleepSeconds": 0}}), "set lifecycle.preStop or lifecycle.preStopSleepSeconds, not both"),
            ("pause longer than the grace period", "a", json!({"image": "x:1", "pod": {"terminationGracePeriodSeconds": 10}, "lifecycle": {"preStopSleepSeconds": 11}}), "lifecycle.preStopSleepSeconds must not be longer than pod.terminationGracePeriodSeconds"),
            ("sleep longer than the default grace period", "a", json!({"image": "x:1", "lifecycle": {"preStop": {"sleep": {"seconds": 31}}}}), "a lifecycle sleep must not be longer than pod.terminationGracePeriodSeconds"),
            ("negative grace period", "a", json!({"image": "x:1", "pod": {"terminationGracePeriodSeconds": -1}}), "should be greater than or equal to 0"),
            ("HTTP rules on a GRPCRoute", "a", json!({"image": "x:1", "ports": [port("grpc", 9000)], "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {"kind": "GRPCRoute", "parentRefs": [{"name": "public"}], "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "/api"}}]}]}}}}), "rollout.traffic.gatewayAPI.rules are HTTPRoute rules: a GRPCRoute takes grpcRules"),
            ("gRPC rules on an HTTPRoute", "a", json!({"image": "x:1", "ports": [port("grpc", 9000)], "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public"}], "grpcRules": [{"matches": [{"method": {"service": "shop.Pay"}}]}]}}}}), "rollout.traffic.gatewayAPI.grpcRules need kind: GRPCRoute"),
            ("a pod floor without a router", "a", json!({"image": "x:1", "rollout": {"strategy": "Canary", "canary": {"minPods": 2, "steps": [{"setWeight": 10}]}}}), "canary.minPods needs rollout.traffic.gatewayAPI"),
            ("separating versions in an unknown way", "a", json!({"image": "x:1", "placement": {"separateVersions": "Always"}}), "spec.placement.separateVersions: Unsupported value: \"Always\""),
            ("an unknown onFailure", "a", metric(json!({"name": "m", "prometheus": {"query": "up"}, "max": 1, "onFailure": "Ignore"})), "spec.rollout.analysis.metrics[0].onFailure: Unsupported value: \"Ignore\""),
            ("taking over its own slot", "a", json!({"image": "x:1", "ports": [port("http", 80)], "migrateFrom": {"deployment": "a-blue"}}), "spec.migrateFrom.deployment may not be <name>-blue or <name>-green"),
            ("taking over without ports", "a", json!({"image": "x:1", "migrateFrom": {"deployment": "checkout"}}), "spec.migrateFrom needs spec.ports"),
            ("taking over a name that is not one", "a", json!({"image": "x:1", "ports": [port("http", 80)], "migrateFrom": {"deployment": "Checkout"}}), "migrateFrom.deployment must be a Deployment name"),
            ("unknown scale-down", "a", json!({"image": "x:1", "ports": [port("http", 80)], "migrateFrom": {"deployment": "checkout", "scaleDown": "Always"}}), "spec.migrateFrom.scaleDown: Unsupported value: \"Always\""),
            ("after without a group", "a", json!({"image": "x:1", "rollout": {"strategy": "Canary", "after": ["backend"]}}), "rollout.after names members of a release group: set rollout.group"),
            ("a group that is not a DNS label", "a", json!({"image": "x:1", "rollout": {"group": "Shop"}}), "spec.rollout.group in body should match"),
            ("post-promotion analysis without analysis", "a", json!({"image": "x:1", "rollout": {"strategy": "Canary", "canary": {"postPromotionAnalysis": {"duration": "5m"}}}}), "postPromotionAnalysis needs rollout.analysis with the metrics to run"),
            ("blue/green post-promotion analysis without analysis", "a", json!({"image": "x:1", "rollout": {"strategy": "BlueGreen", "blueGreen": {"postPromotionAnalysis": {"duration": "5m"}}}}), "postPromotionAnalysis needs rollout.analysis with the metrics to run"),
            ("post-promotion analysis longer than a week", "a", { let mut spec = analysed(json!([{"setWeight": 10}])); spec["rollout"]["canary"]["postPromotionAnalysis"] = json!({"duration": "169h"}); spec }, "postPromotionAnalysis.duration must be at most 168h (a week)"),
            ("post-promotion analysis without a duration", "a", { let mut spec = analysed(json!([{"setWeight": 10}])); spec["rollout"]["canary"]["postPromotionAnalysis"] = json!({"metrics": ["errors"]}); spec }, "spec.rollout.canary.postPromotionAnalysis.duration: Required value"),
            ("a dynamic stable version without a router", "a", json!({"image": "x:1", "rollout": {"strategy": "Canary", "canary": {"stableScale": "Dynamic", "steps": [{"setWeight": 10}]}}}), "canary.stableScale: Dynamic needs rollout.traffic.gatewayAPI"),
            ("an unknown stableScale", "a", { let mut spec = routed(json!([{"setWeight": 10}])); spec["rollout"]["canary"]["stableScale"] = json!("Half"); spec }, "spec.rollout.canary.stableScale: Unsupported value: \"Half\""),
            ("a window listing a day twice", "a", json!({"image": "x:1", "rollout": {"windows": [{"days": ["Mon", "Tue", "Mon"], "start": "09:00", "end": "17:00"}]}}), "a window lists each day once"),
            ("a window opening at 24:00", "a", json!({"image": "x:1", "rollout": {"windows": [{"start": "24:00", "end": "06:00"}]}}), "spec.rollout.windows[0].start in body should match"),
            ("a window without an end", "a", json!({"image": "x:1", "rollout": {"windows": [{"start": "09:00"}]}}), "spec.rollout.windows[0].end: Required value"),
            ("a window on an unknown day", "a", json!({"image": "x:1", "rollout": {"windows": [{"days": ["Monday"], "start": "09:00", "end": "17:00"}]}}), "spec.rollout.windows[0].days[0]: Unsupported value: \"Monday\""),
            ("a time zone with a space", "a", json!({"image": "x:1", "rollout": {"windows": [{"start": "09:00", "end": "17:00", "timeZone": "Europe Berlin"}]}}), "spec.rollout.windows[0].timeZone in body should match"),
            ("parent of another kind", "a", json!({"image": "x:1", "ports": [port("http", 80)], "rollout": {"strategy": "Canary", "traffic": {"gatewayAPI": {"parentRefs": [{"name": "p", "kind": "Pod"}]}}}}), "a parentRef's kind is Gateway (north-south) or Service (a mesh)"),
        ];
        for (case, name, spec, expected) in cases {
            let message = refusal(&api, name, spec).await.unwrap_or_else(|| panic!("{case}: accepted"));
            assert!(message.contains(expected), "{case}: expected {expected:?} in {message:?}");
        }
        // The limits themselves are accepted.
        let longest = "n".repeat(55);
        let edge = json!({"image": "x:1", "replicas": 0, "ports": [port("http", 65535), port("admin", 1)],
                          "autoscaling": {"minReplicas": 2, "maxReplicas": 2}, "disruption": {"minAvailable": "50%"}});
        assert_eq!(refusal(&api, &longest, edge).await, None, "a spec at the limits must be accepted");
        let hooks = json!({"image": "x:1", "pod": {"terminationGracePeriodSeconds": 45},
                           "lifecycle": {"preStop": {"sleep": {"seconds": 45}}, "postStart": {"httpGet": {"path": "/warm", "port": 8080}}}});
        assert_eq!(refusal(&api, "hooks", hooks).await, None, "hooks within the grace period must be accepted");
        let no_pause = json!({"image": "x:1", "pod": {"terminationGracePeriodSeconds": 0}, "lifecycle": {"preStopSleepSeconds": 0}});
        assert_eq!(refusal(&api, "no-pause", no_pause).await, None, "the pause and the grace period turned off must be accepted");
        let full = json!({"image": "x:1", "ports": [port("http", 80)], "rollout": {
            "strategy": "Canary", "progressDeadlineSeconds": 60,
            "traffic": {"gatewayAPI": {"parentRefs": [{"name": "public", "namespace": "gateways"}, {"group": "", "kind": "Service", "name": "full"}], "hostnames": ["shop.example"]}},
            "canary": {"scaleDownDelaySeconds": 0, "steps": [
                {"setHeaderRoute": {"match": [{"name": "x-user-group", "value": "beta"}, {"name": "x-canary", "regex": "on|yes"}]}},
                {"setMirror": {"percent": 100}}, {"setWeight": 0}, {"setWeight": 100}, {"pause": {"duration": "1h30m"}},
                {"pause": {}}, {"analysis": {"metrics": ["errors"]}}, {"analysis": {}}]},
            "analysis": {"interval": "500ms", "failureLimit": 0, "inconclusiveLimit": 3, "metrics": [
                {"name": "errors", "prometheus": {"address": "http://prometheus:9090", "query": "up"}, "min": 0, "max": 0.5},
                {"name": "smoke", "webhook": {"url": "https://smoke.example/run", "timeoutSeconds": 300}}]}}});
        assert_eq!(refusal(&api, "full", full).await, None, "every release feature at once must be accepted");
        let blue_green = json!({"image": "x:1", "rollout": {"strategy": "BlueGreen",
            "blueGreen": {"autoPromotionSeconds": 0, "scaleDownDelaySeconds": 30, "prePromotionAnalysis": {}},
            "analysis": {"metrics": [{"name": "smoke", "webhook": {"url": "http://smoke"}}]}}});
        assert_eq!(refusal(&api, "bg", blue_green).await, None, "a blue/green with a gate must be accepted");
        let mut held = routed(json!([{"setWeight": 10}, {"analysis": {}}, {"setWeight": 50}]));
        held["rollout"]["analysis"] = json!({"metrics": [
            {"name": "errors", "prometheus": {"query": "up"}, "max": 1, "onFailure": "Hold"},
            {"name": "latency", "prometheus": {"query": "up"}, "max": 1, "onFailure": "Record"}]});
        held["rollout"]["canary"]["stableScale"] = json!("Dynamic");
        held["rollout"]["canary"]["postPromotionAnalysis"] = json!({"duration": "168h", "metrics": ["errors"]});
        held["rollout"]["windows"] = json!([
            {"days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], "start": "00:00", "end": "23:59", "timeZone": "America/Argentina/Buenos_Aires"},
            {"start": "22:00", "end": "06:00"}]);
        held["rollout"]["group"] = json!("shop");
        held["rollout"]["after"] = json!(["backend", "payments"]);
        assert_eq!(refusal(&api, "held", held).await, None, "windows, a group, a dynamic stable version, Hold and post-promotion analysis must be accepted");
        let watched = json!({"image": "x:1", "rollout": {"strategy": "BlueGreen",
            "blueGreen": {"postPromotionAnalysis": {"duration": "10m"}},
            "analysis": {"metrics": [{"name": "smoke", "webhook": {"url": "http://smoke"}}]}}});
        assert_eq!(refusal(&api, "watched", watched).await, None, "a blue/green with post-promotion analysis must be accepted");
    })
    .await;
}
