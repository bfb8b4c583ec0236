//! The rules of Weir's own fields in the CRD, read from the generated schema: every bound
//! and required field, and every CEL rule by its message.

use kube::CustomResourceExt;
use serde_json::Value;
use weir::api::Microservice;

/// What the CRD says about a rule: a schema bound's value, or a CEL rule's message.
#[derive(Clone, Debug)]
pub enum Rule {
    /// A bound of the schema at a path (`.spec.ports[].port`) by keyword (`maximum`,
    /// `required:name`), and its value.
    Bound {
        path: String,
        keyword: String,
        value: Value,
    },
    Cel(String),
}

/// Every rule of Weir's own fields: the schema under `.spec` and the root, except the
/// Kubernetes types Weir embeds (containers' env, resources, probes, pod settings), whose
/// rules are Kubernetes' own.
pub fn rules_in_crd() -> Vec<Rule> {
    const EMBEDDED: [&str; 24] = [
        ".spec.env",
        ".spec.envFrom",
        ".spec.resources",
        ".spec.probes",
        ".spec.lifecycle.preStop",
        ".spec.lifecycle.postStart",
        ".spec.pod.tolerations",
        ".spec.pod.volumes",
        ".spec.pod.volumeMounts",
        ".spec.pod.securityContext",
        ".spec.pod.containerSecurityContext",
        ".spec.pod.imagePullSecrets",
        ".spec.pod.initContainers[]",
        ".spec.pod.containers[]",
        ".spec.pod.affinity",
        ".spec.pod.topologySpreadConstraints[]",
        ".spec.pod.dnsConfig",
        ".spec.pod.hostAliases[]",
        ".spec.rollout.traffic.gatewayAPI.rules[].matches[]",
        ".spec.rollout.traffic.gatewayAPI.rules[].filters[]",
        ".spec.rollout.traffic.gatewayAPI.rules[].timeouts",
        ".spec.rollout.traffic.gatewayAPI.rules[].backendRefs",
        ".spec.rollout.traffic.gatewayAPI.grpcRules[].matches[]",
        ".spec.rollout.traffic.gatewayAPI.grpcRules[].filters[]",
    ];
    pub fn embedded(path: &str) -> bool {
        EMBEDDED.iter().any(|e| {
            path == *e || path.starts_with(&format!("{e}.")) || path.starts_with(&format!("{e}["))
        })
    }
    pub fn walk(schema: &Value, path: &str, rules: &mut Vec<Rule>) {
        if path.starts_with(".status") || path.starts_with(".metadata") || embedded(path) {
            return;
        }
        for keyword in [
            "minimum",
            "maximum",
            "minLength",
            "maxLength",
            "minItems",
            "maxItems",
            "pattern",
            "enum",
        ] {
            if let Some(value) = schema.get(keyword) {
                rules.push(Rule::Bound {
                    path: path.to_string(),
                    keyword: keyword.to_string(),
                    value: value.clone(),
                });
            }
        }
        for field in schema["required"].as_array().into_iter().flatten() {
            let field = field.as_str().expect("a field name");
            rules.push(Rule::Bound {
                path: path.to_string(),
                keyword: format!("required:{field}"),
                value: Value::Null,
            });
        }
        for rule in schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let message = rule["message"].as_str().expect("every rule has a message");
            rules.push(Rule::Cel(message.to_string()));
        }
        if let Some(properties) = schema["properties"].as_object() {
            for (key, child) in properties {
                walk(child, &format!("{path}.{key}"), rules);
            }
        }
        if schema["items"].is_object() {
            walk(&schema["items"], &format!("{path}[]"), rules);
        }
    }
    let crd = serde_json::to_value(Microservice::crd()).expect("the CRD serializes");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut rules = Vec::new();
    walk(schema, "", &mut rules);
    rules
}

impl Rule {
    pub fn id(&self) -> String {
        match self {
            Rule::Bound { path, keyword, .. } => format!("{path} {keyword}"),
            Rule::Cel(message) => message.clone(),
        }
    }

    pub fn number(&self) -> i64 {
        match self {
            Rule::Bound { value, .. } => value.as_f64().expect("a numeric bound") as i64,
            Rule::Cel(_) => panic!("a CEL rule has no bound"),
        }
    }

    /// What the API server says when `field` breaks the rule.
    pub fn expected(&self, field: &str) -> Vec<String> {
        let Rule::Bound { keyword, value, .. } = self else {
            let Rule::Cel(message) = self else {
                unreachable!()
            };
            return vec![message.clone()];
        };
        let n = value.as_f64().map(|v| v as i64).unwrap_or_default();
        let phrase = match keyword.as_str() {
            "minimum" => format!("should be greater than or equal to {n}"),
            "maximum" => format!("should be less than or equal to {n}"),
            "minLength" => format!("should be at least {n} chars long"),
            "maxLength" => format!("may not be more than {n} bytes"),
            "minItems" => format!("should have at least {n} items"),
            "maxItems" => format!("must have at most {n} items"),
            "pattern" => format!("should match '{}'", value.as_str().unwrap_or_default()),
            "enum" => "Unsupported value".to_string(),
            _ => "Required value".to_string(),
        };
        vec![field.to_string(), phrase]
    }
}
