//! Pod settings: service account, labels, tolerations, volumes, security contexts.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{dns_label, object, some, string_map, text};

pub fn pod_options() -> BoxedStrategy<Value> {
    (
        (
            prop::option::of(dns_label(30)),
            prop::option::of(string_map(
                "[a-z]{1,8}(\\.example/[a-z]{1,8})?",
                "[a-z0-9]{0,10}",
            )),
            prop::option::of(string_map(
                "[a-z]{1,8}(\\.example/[a-z]{1,8})?",
                "[ -~]{0,20}",
            )),
            prop::option::of(string_map("[a-z]{1,8}", "[a-z0-9]{1,8}")),
        ),
        (
            prop::option::of(prop::collection::vec(toleration(), 0..3)),
            volumes(),
            prop::option::of(security()),
            prop::option::of(container_security()),
            prop::option::of(prop::collection::vec(dns_label(20), 0..2)),
            prop::option::of(5..=120i64),
        ),
        complete_pod(),
    )
        .prop_map(
            |(
                (account, labels, annotations, selector),
                (tolerations, volumes, security, container, pulls, grace),
                complete,
            )| {
                let (declared, mounts) = volumes;
                let mut options = object(vec![
                    ("serviceAccountName", account.map(Value::from)),
                    ("labels", labels),
                    ("annotations", annotations),
                    ("nodeSelector", selector),
                    ("tolerations", tolerations.map(Value::from)),
                    (
                        "volumes",
                        (!declared.is_empty()).then(|| Value::from(declared)),
                    ),
                    (
                        "volumeMounts",
                        (!mounts.is_empty()).then(|| Value::from(mounts)),
                    ),
                    ("securityContext", security),
                    ("containerSecurityContext", container),
                    (
                        "imagePullSecrets",
                        pulls.map(|p| p.into_iter().map(|n| json!({"name": n})).collect()),
                    ),
                    ("terminationGracePeriodSeconds", grace.map(Value::from)),
                ]);
                if let (Some(options), Value::Object(complete)) =
                    (options.as_object_mut(), complete)
                {
                    options.extend(complete);
                }
                options
            },
        )
        .boxed()
}

/// What a real service's pod needs beyond the basics: init containers (some of them
/// native sidecars), containers beside the service's, affinity, scheduling and DNS.
fn complete_pod() -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::collection::vec((extra_container(), any::<bool>()), 1..3)),
        prop::option::of(prop::collection::vec(extra_container(), 1..3)),
        prop::option::of(prop::sample::select(vec!["Always", "IfNotPresent", "Never"])),
        prop::option::of(dns_label(20)),
        prop::option::of(dns_label(20)),
        prop::option::of(1..=5i32),
        prop::option::of(text("10\\.[0-9]{1,2}\\.0\\.[1-9]")),
        (prop::option::of(any::<bool>()), prop::option::of(any::<bool>())),
        (prop::option::of(dns_label(10)), any::<bool>()),
    )
        .prop_map(
            |(init, extra, pull, priority, runtime, skew, alias, (share, automount), (zone, patch))| {
                let init = init.map(|containers| {
                    let named = containers.into_iter().enumerate();
                    named
                        .map(|(i, (mut c, sidecar))| {
                            c["name"] = format!("init-{i}x").into();
                            if sidecar {
                                c["restartPolicy"] = "Always".into();
                            }
                            c
                        })
                        .collect::<Vec<_>>()
                });
                let extra = extra.map(|containers| {
                    let named = containers.into_iter().enumerate();
                    named
                        .map(|(i, mut c)| {
                            c["name"] = format!("side-{i}x").into();
                            c
                        })
                        .collect::<Vec<_>>()
                });
                object(vec![
                    ("initContainers", init.map(Value::from)),
                    ("containers", extra.map(Value::from)),
                    ("imagePullPolicy", pull.map(Value::from)),
                    ("priorityClassName", priority.map(Value::from)),
                    ("runtimeClassName", runtime.map(Value::from)),
                    (
                        "topologySpreadConstraints",
                        skew.map(|s| json!([{"maxSkew": s, "topologyKey": "rack", "whenUnsatisfiable": "DoNotSchedule"}])),
                    ),
                    (
                        "hostAliases",
                        alias.map(|ip| json!([{"ip": ip, "hostnames": ["legacy.internal"]}])),
                    ),
                    (
                        "dnsConfig",
                        zone.as_ref().map(|z| json!({"searches": [format!("{z}.internal")], "options": [{"name": "ndots", "value": "2"}]})),
                    ),
                    (
                        "affinity",
                        zone.map(|z| json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [{"matchExpressions": [{"key": "pool", "operator": "In", "values": [z]}]}]}}})),
                    ),
                    (
                        "templatePatch",
                        patch.then(|| json!({"spec": {"enableServiceLinks": false,
                            "containers": [{"name": "init-0x", "$patch": "delete"}]}})),
                    ),
                    ("shareProcessNamespace", share.map(Value::from)),
                    ("automountServiceAccountToken", automount.map(Value::from)),
                ])
            },
        )
}

/// A container beside the service's: an image, maybe arguments and resources.
fn extra_container() -> impl Strategy<Value = Value> {
    (
        text("registry\\.example/[a-z]{1,8}:[0-9]\\.[0-9]"),
        prop::option::of(prop::collection::vec(text("[a-z-]{1,8}"), 1..3)),
        prop::option::of(1..=500i32),
    )
        .prop_map(|(image, args, millicores)| {
            object(vec![
                ("name", Some("placeholder".into())),
                ("image", some(image)),
                ("args", args.map(Value::from)),
                (
                    "resources",
                    millicores.map(|m| json!({"requests": {"cpu": format!("{m}m")}})),
                ),
            ])
        })
}

/// A toleration: `Equal` with a key and a value, else `Exists`.
fn toleration() -> impl Strategy<Value = Value> {
    (
        prop::option::of(text("[a-z]{1,8}(\\.example/[a-z]{1,8})?")),
        prop::option::of(text("[a-z]{0,8}")),
        prop::option::of(prop::sample::select(vec![
            "NoSchedule",
            "PreferNoSchedule",
            "NoExecute",
        ])),
        prop::option::of(0..3600i64),
    )
        .prop_map(|(key, value, effect, seconds)| {
            let equal = key.is_some() && value.is_some();
            object(vec![
                ("key", key.map(Value::from)),
                ("operator", some(if equal { "Equal" } else { "Exists" })),
                ("value", value.filter(|_| equal).map(Value::from)),
                (
                    "tolerationSeconds",
                    seconds
                        .filter(|_| effect == Some("NoExecute"))
                        .map(Value::from),
                ),
                ("effect", effect.map(Value::from)),
            ])
        })
}

/// A volume without its name.
fn volume() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"emptyDir": {}})),
        Just(json!({"emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}})),
        (dns_label(20), any::<bool>())
            .prop_map(|(n, optional)| json!({"configMap": {"name": n, "optional": optional}})),
        (dns_label(20), 0..=511i64)
            .prop_map(|(n, mode)| json!({"secret": {"secretName": n, "defaultMode": mode}})),
    ]
}

/// Volumes named `v0`, `v1`... and the mounts of some of them.
fn volumes() -> impl Strategy<Value = (Vec<Value>, Vec<Value>)> {
    prop::collection::vec((volume(), any::<bool>(), any::<bool>()), 0..3).prop_map(
        |volumes| {
            let mut declared = Vec::new();
            let mut mounts = Vec::new();
            for (i, (mut volume, mounted, read_only)) in volumes.into_iter().enumerate() {
                volume["name"] = format!("v{i}").into();
                declared.push(volume);
                if mounted {
                    mounts.push(json!({"name": format!("v{i}"), "mountPath": format!("/mnt/v{i}"), "readOnly": read_only}));
                }
            }
            (declared, mounts)
        },
    )
}

/// The pod's security context.
fn security() -> impl Strategy<Value = Value> {
    (
        prop::option::of(any::<bool>()),
        prop::option::of(1000..65535i64),
        prop::option::of(1000..65535i64),
        any::<bool>(),
    )
        .prop_map(|(non_root, user, group, seccomp)| {
            object(vec![
                ("runAsNonRoot", non_root.map(Value::from)),
                ("runAsUser", user.map(Value::from)),
                ("fsGroup", group.map(Value::from)),
                (
                    "seccompProfile",
                    seccomp.then(|| json!({"type": "RuntimeDefault"})),
                ),
            ])
        })
}

/// The container's security context, always within the restricted profile.
fn container_security() -> impl Strategy<Value = Value> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(read_only, bind, non_root)| {
        let add: Vec<&str> = if bind {
            vec!["NET_BIND_SERVICE"]
        } else {
            vec![]
        };
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": read_only,
            "runAsNonRoot": non_root,
            "capabilities": {"drop": ["ALL"], "add": add}
        })
    })
}
