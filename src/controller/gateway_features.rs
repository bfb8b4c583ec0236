//! What the Gateways of a route can do, from their GatewayClass's `status.supportedFeatures`.
//!
//! A gateway that does not implement a filter may still accept the route and fail every
//! request of the rule that carries it: Traefik answers 500 to a rule with a `RequestMirror`
//! filter while reporting the route `Accepted`. So before a mirror step Weir asks each
//! Gateway's class; a class that lists its features without `HTTPRouteRequestMirror` gets no
//! mirror (the step sends no copies, and a warning says why). A class that lists nothing, or
//! a Gateway Weir cannot read, is taken at its word that it conforms.

use gateway_api::gatewayclasses::GatewayClass;
use gateway_api::gateways::Gateway;
use kube::{Api, Client, ResourceExt};

use crate::api::{Microservice, ParentRef};

/// The Gateway API feature name of the RequestMirror filter on HTTPRoutes.
pub const REQUEST_MIRROR: &str = "HTTPRouteRequestMirror";

/// True when the spec has a mirror step that copies traffic.
pub fn mirrors(ms: &Microservice) -> bool {
    let rollout = ms.spec.rollout.as_ref();
    let steps = rollout
        .and_then(|r| r.canary.as_ref())
        .map(|c| &c.steps[..]);
    steps
        .unwrap_or_default()
        .iter()
        .any(|step| step.set_mirror.as_ref().is_some_and(|m| m.percent > 0))
}

/// `ms` with every mirror step set to copy nothing: what the release machine runs for a
/// gateway without the mirror. The steps keep their places and numbers.
pub fn without_mirrors(ms: &Microservice) -> Microservice {
    let mut ms = ms.clone();
    let steps = ms.spec.rollout.as_mut().and_then(|r| r.canary.as_mut());
    for step in steps.map(|c| &mut c.steps[..]).unwrap_or_default() {
        if let Some(mirror) = step.set_mirror.as_mut() {
            mirror.percent = 0;
        }
    }
    ms
}

/// Whether a class's supported features, as listed, lack `feature` (an unlisted set says
/// nothing).
pub fn lacks(supported: Option<&[String]>, feature: &str) -> bool {
    supported.is_some_and(|names| !names.iter().any(|name| name == feature))
}

/// The first GatewayClass among the Gateway parents of `ms` that says it lacks `feature`.
pub async fn class_lacking(client: &Client, ms: &Microservice, feature: &str) -> Option<String> {
    let namespace = ms.namespace().unwrap_or_default();
    let traffic = ms.spec.rollout.as_ref()?.traffic.as_ref()?;
    let parents = &traffic.gateway_api.as_ref()?.parent_refs;
    for parent in parents.iter().filter(|p| is_gateway(p)) {
        let gateways: Api<Gateway> = Api::namespaced(
            client.clone(),
            parent.namespace.as_deref().unwrap_or(&namespace),
        );
        let Some(class_name) = read(gateways.get_opt(&parent.name).await, &parent.name)
            .map(|g| g.spec.gateway_class_name)
        else {
            continue;
        };
        let classes: Api<GatewayClass> = Api::all(client.clone());
        let Some(class) = read(classes.get_opt(&class_name).await, &class_name) else {
            continue;
        };
        let supported: Option<Vec<String>> = class
            .status
            .and_then(|s| s.supported_features)
            .map(|features| features.into_iter().map(|f| f.name).collect());
        if lacks(supported.as_deref(), feature) {
            return Some(class_name);
        }
    }
    None
}

fn is_gateway(parent: &ParentRef) -> bool {
    parent.kind.as_deref().is_none_or(|kind| kind == "Gateway")
}

/// The object, or None when it is missing or cannot be read (logged).
fn read<K>(result: kube::Result<Option<K>>, name: &str) -> Option<K> {
    result.unwrap_or_else(|error| {
        tracing::debug!(name, %error, "cannot read a Gateway or its class; taking it to support every feature");
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_steps(steps: serde_json::Value) -> Microservice {
        serde_json::from_value(json!({
            "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "shop", "namespace": "ns"},
            "spec": {"image": "x:1", "rollout": {"strategy": "Canary", "canary": {"steps": steps}}},
        }))
        .unwrap()
    }

    #[test]
    fn mirror_steps_copy_nothing_for_a_gateway_without_the_mirror() {
        let ms = with_steps(json!([{"setWeight": 10}, {"setMirror": {"percent": 50}}]));
        assert!(mirrors(&ms));
        let plain = without_mirrors(&ms);
        assert!(!mirrors(&plain));
        let steps = &plain.spec.rollout.unwrap().canary.unwrap().steps;
        assert_eq!(steps.len(), 2, "the steps keep their places");
        assert_eq!(steps[1].set_mirror.as_ref().map(|m| m.percent), Some(0));
        assert!(!mirrors(&with_steps(
            json!([{"setMirror": {"percent": 0}}])
        )));
    }

    #[test]
    fn only_a_listed_set_without_the_feature_lacks_it() {
        let listed = vec!["HTTPRoute".to_string(), REQUEST_MIRROR.to_string()];
        assert!(!lacks(Some(&listed), REQUEST_MIRROR));
        assert!(lacks(Some(&listed[..1]), REQUEST_MIRROR));
        assert!(!lacks(None, REQUEST_MIRROR), "an unlisted set says nothing");
    }
}
