//! Configuration released like code (`rollout.trackConfig`): the ConfigMaps and Secrets a
//! Microservice's pods reference, found anywhere in the spec; immutable snapshots of them
//! named after their content; and the spec with every reference pointing at its snapshot.
//! The revision is a hash of the pod template, so a new content is a new revision.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt;
use serde_json::Value;

use super::{fnv1a, labels, object_meta};
use crate::api::Microservice;

/// Annotation with the hash of a ConfigMap's or Secret's content. The watch cache keeps it
/// instead of the content (Secrets are never held in memory), and snapshots carry it.
pub const CONTENT_HASH_ANNOTATION: &str = "weir.dev/content-hash";
/// Label on a snapshot naming the object it copies.
pub const SNAPSHOT_OF_LABEL: &str = "weir.dev/snapshot-of";

/// The two kinds of configuration a pod references.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigKind {
    ConfigMap,
    Secret,
}

impl ConfigKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::ConfigMap => "ConfigMap",
            ConfigKind::Secret => "Secret",
        }
    }

    /// The keys under which a pod spec references this kind, each with the field that
    /// holds the name: volumes and projected sources, `envFrom`, `env[].valueFrom`.
    fn references(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            ConfigKind::ConfigMap => &[
                ("configMap", &["name"]),
                ("configMapRef", &["name"]),
                ("configMapKeyRef", &["name"]),
            ],
            ConfigKind::Secret => &[
                ("secret", &["secretName", "name"]),
                ("secretRef", &["name"]),
                ("secretKeyRef", &["name"]),
            ],
        }
    }
}

/// Which kinds the Microservice tracks, as far as the operator allows: `(asked, allowed)`.
pub fn tracked(ms: &Microservice, secrets_allowed: bool, configmaps_allowed: bool) -> Tracked {
    let track = ms
        .spec
        .rollout
        .as_ref()
        .and_then(|r| r.track_config.as_ref());
    let asks = |kind| match kind {
        ConfigKind::ConfigMap => track.and_then(|t| t.config_maps).unwrap_or(false),
        ConfigKind::Secret => track.and_then(|t| t.secrets).unwrap_or(false),
    };
    let mut tracked = Tracked::default();
    for (kind, allowed) in [
        (ConfigKind::ConfigMap, configmaps_allowed),
        (ConfigKind::Secret, secrets_allowed),
    ] {
        match (asks(kind), allowed) {
            (true, true) => tracked.kinds.push(kind),
            (true, false) => tracked.refused.push(kind),
            _ => {}
        }
    }
    tracked
}

/// The kinds tracked, and those asked for that the operator does not allow.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tracked {
    pub kinds: Vec<ConfigKind>,
    pub refused: Vec<ConfigKind>,
}

/// The names of `kind` that the spec references, anywhere in it (the pod's volumes, every
/// container's env and envFrom, the template patch).
pub fn references(ms: &Microservice, kind: ConfigKind) -> BTreeSet<String> {
    references_in(&serde_json::to_value(&ms.spec).unwrap_or_default(), kind)
}

/// The names of `kind` that a JSON value (a pod template) references.
pub fn references_in(value: &Value, kind: ConfigKind) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    walk(value, kind, &mut |name| {
        found.insert(name.to_string());
    });
    found
}

/// The Microservice with each reference of `kind` in `renamed` pointing at its new name.
pub fn substitute(
    ms: &Microservice,
    kind: ConfigKind,
    renamed: &BTreeMap<String, String>,
) -> Microservice {
    if renamed.is_empty() {
        return ms.clone();
    }
    let mut spec = serde_json::to_value(&ms.spec).unwrap_or_default();
    rename(&mut spec, kind, renamed);
    let mut out = ms.clone();
    if let Ok(spec) = serde_json::from_value(spec) {
        out.spec = spec;
    }
    out
}

fn walk(value: &Value, kind: ConfigKind, found: &mut impl FnMut(&str)) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                if let Some((_, fields)) = kind.references().iter().find(|(k, _)| k == key) {
                    let name = fields.iter().find_map(|f| inner.get(*f)?.as_str());
                    if let Some(name) = name {
                        found(name);
                    }
                }
                walk(inner, kind, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| walk(v, kind, found)),
        _ => {}
    }
}

fn rename(value: &mut Value, kind: ConfigKind, renamed: &BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if let Some((_, fields)) = kind.references().iter().find(|(k, _)| k == key) {
                    for field in *fields {
                        let new = inner
                            .get(*field)
                            .and_then(Value::as_str)
                            .and_then(|old| renamed.get(old));
                        if let Some(new) = new {
                            inner[*field] = Value::String(new.clone());
                        }
                    }
                }
                rename(inner, kind, renamed);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename(v, kind, renamed)),
        _ => {}
    }
}

/// A hash of a content (`data` and `binaryData` as JSON, keys in order), 10 hex digits.
pub fn content_hash(content: &Value) -> String {
    format!(
        "{:010x}",
        fnv1a(content.to_string().as_bytes()) & 0xff_ffff_ffff
    )
}

/// The content of a ConfigMap, for its hash.
pub fn config_map_content(cm: &ConfigMap) -> Value {
    serde_json::json!({"data": cm.data, "binaryData": cm.binary_data})
}

/// The content of a Secret, for its hash (its type too: a change of type is a change).
pub fn secret_content(secret: &Secret) -> Value {
    serde_json::json!({"data": secret.data, "type": secret.type_})
}

/// The name of the snapshot of `source` with content `hash`, owned by Microservice `ms`:
/// `<ms>-<source>-<hash>`, the source's part cut to keep within 253 characters.
pub fn snapshot_name(ms: &str, source: &str, hash: &str) -> String {
    let room = 253 - ms.len() - hash.len() - 2;
    let source: String = source.chars().take(room).collect();
    let source = source.trim_end_matches(['-', '.']);
    format!("{ms}-{source}-{hash}")
}

/// An immutable copy of ConfigMap `source`, named `name`, owned by the Microservice.
pub fn config_map_snapshot(ms: &Microservice, source: &ConfigMap, name: &str) -> ConfigMap {
    ConfigMap {
        metadata: snapshot_meta(ms, &source.name_any(), name, &config_map_content(source)),
        immutable: Some(true),
        data: source.data.clone(),
        binary_data: source.binary_data.clone(),
    }
}

/// An immutable copy of Secret `source`, named `name`, owned by the Microservice.
pub fn secret_snapshot(ms: &Microservice, source: &Secret, name: &str) -> Secret {
    Secret {
        metadata: snapshot_meta(ms, &source.name_any(), name, &secret_content(source)),
        immutable: Some(true),
        data: source.data.clone(),
        type_: source.type_.clone(),
        ..Default::default()
    }
}

fn snapshot_meta(
    ms: &Microservice,
    source: &str,
    name: &str,
    content: &Value,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    let mut meta = object_meta(ms, name);
    let mut snapshot_labels = meta.labels.take().unwrap_or_default();
    // A label value has at most 63 characters; the name is also in the snapshot's own name.
    let of: String = source.chars().take(63).collect();
    snapshot_labels.insert(
        SNAPSHOT_OF_LABEL.into(),
        of.trim_end_matches(['-', '.']).into(),
    );
    meta.labels = Some(snapshot_labels);
    meta.annotations = Some(BTreeMap::from([(
        CONTENT_HASH_ANNOTATION.to_string(),
        content_hash(content),
    )]));
    meta
}

/// Whether an object is a snapshot Weir made for Microservice `ms`.
pub fn is_snapshot_of<K: ResourceExt>(object: &K, ms: &str) -> bool {
    let labels = object.labels();
    labels.contains_key(SNAPSHOT_OF_LABEL)
        && labels.get(labels::INSTANCE_LABEL).map(String::as_str) == Some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ms(spec: Value) -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "shop", "namespace": "ns", "uid": "u1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn referencing() -> Microservice {
        ms(json!({
            "image": "x:1",
            "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "flags", "key": "a"}}},
                    {"name": "P", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}],
            "envFrom": [{"configMapRef": {"name": "common"}}, {"secretRef": {"name": "tokens"}}],
            "pod": {
                "volumes": [
                    {"name": "conf", "configMap": {"name": "shop-config"}},
                    {"name": "tls", "secret": {"secretName": "shop-tls"}},
                    {"name": "all", "projected": {"sources": [{"configMap": {"name": "extra"}}, {"secret": {"name": "more"}}]}},
                ],
                "imagePullSecrets": [{"name": "registry"}],
                "initContainers": [{"name": "migrate", "image": "m:1", "envFrom": [{"configMapRef": {"name": "migrations"}}]}],
            },
        }))
    }

    #[test]
    fn references_are_found_anywhere_in_the_spec_and_only_of_their_kind() {
        let ms = referencing();
        assert_eq!(
            references(&ms, ConfigKind::ConfigMap)
                .into_iter()
                .collect::<Vec<_>>(),
            ["common", "extra", "flags", "migrations", "shop-config"]
        );
        assert_eq!(
            references(&ms, ConfigKind::Secret)
                .into_iter()
                .collect::<Vec<_>>(),
            ["db", "more", "shop-tls", "tokens"],
            "an image pull secret is not configuration"
        );
    }

    #[test]
    fn every_reference_points_at_its_snapshot_after_substitution() {
        let ms = referencing();
        let renamed = BTreeMap::from([
            (
                "shop-config".to_string(),
                "shop-shop-config-0123456789".to_string(),
            ),
            ("flags".to_string(), "shop-flags-abcdefabcd".to_string()),
        ]);
        let out = substitute(&ms, ConfigKind::ConfigMap, &renamed);
        let found = references(&out, ConfigKind::ConfigMap);
        assert!(
            found.contains("shop-shop-config-0123456789")
                && found.contains("shop-flags-abcdefabcd")
        );
        assert!(
            !found.contains("shop-config") && found.contains("common"),
            "only the renamed ones"
        );
        assert_eq!(
            references(&out, ConfigKind::Secret),
            references(&ms, ConfigKind::Secret)
        );
    }

    #[test]
    fn a_snapshot_is_immutable_owned_and_named_after_its_content() {
        let ms = referencing();
        let source: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "shop-config", "namespace": "ns"}, "data": {"mode": "live"}
        }))
        .unwrap();
        let hash = content_hash(&config_map_content(&source));
        let name = snapshot_name("shop", "shop-config", &hash);
        assert_eq!(name, format!("shop-shop-config-{hash}"));
        let snapshot = config_map_snapshot(&ms, &source, &name);
        assert_eq!(snapshot.immutable, Some(true));
        assert_eq!(snapshot.data, source.data);
        assert!(is_snapshot_of(&snapshot, "shop"));
        assert_eq!(snapshot.annotations()[CONTENT_HASH_ANNOTATION], hash);
        assert_eq!(snapshot.owner_references()[0].uid, "u1");

        let mut edited = source.clone();
        edited.data = Some(BTreeMap::from([("mode".into(), "test".into())]));
        assert_ne!(content_hash(&config_map_content(&edited)), hash);
        let long = snapshot_name(&"m".repeat(55), &"c".repeat(253), &hash);
        assert_eq!(long.len(), 253);
    }

    #[test]
    fn secrets_are_tracked_only_when_the_operator_allows_it() {
        let asks = ms(
            json!({"image": "x:1", "rollout": {"trackConfig": {"configMaps": true, "secrets": true}}}),
        );
        assert_eq!(
            tracked(&asks, false, true),
            Tracked {
                kinds: vec![ConfigKind::ConfigMap],
                refused: vec![ConfigKind::Secret]
            }
        );
        assert_eq!(
            tracked(&asks, true, true).kinds,
            [ConfigKind::ConfigMap, ConfigKind::Secret]
        );
        assert_eq!(
            tracked(&ms(json!({"image": "x:1"})), true, true),
            Tracked::default()
        );
    }
}
