//! The cluster connection and the reads every command shares.

use k8s_openapi::api::core::v1::Event;
use kube::api::{DynamicObject, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::ApiResource;
use kube::{Api, Client, Config, ResourceExt};

use super::args::TargetArgs;
use super::error::Error;
use crate::api::Microservice;

/// Events shown with a status: the newest few.
pub const EVENTS_SHOWN: usize = 5;

/// Listed Microservices, and what could not be read as one (`namespace/name: why`).
#[derive(Debug, Default)]
pub struct Listed {
    pub items: Vec<Microservice>,
    pub unreadable: Vec<String>,
}

impl Listed {
    fn read(objects: Vec<DynamicObject>) -> Listed {
        let mut listed = Listed::default();
        for object in objects {
            let at = format!(
                "{}/{}",
                object.namespace().unwrap_or_default(),
                object.name_any()
            );
            match serde_json::to_value(&object).and_then(serde_json::from_value) {
                Ok(ms) => listed.items.push(ms),
                Err(error) => listed.unreadable.push(format!("{at}: {error}")),
            }
        }
        listed
    }
}

/// A client and the namespace the command works in.
pub struct Target {
    pub client: Client,
    pub namespace: String,
}

impl Target {
    /// Reads the kubeconfig as kubectl does: `--kubeconfig`, else `$KUBECONFIG` (a list of
    /// files is merged), else `~/.kube/config`; the context from `--context`, else the
    /// current one; the namespace from `-n`, else the context's, else `default`.
    pub async fn connect(args: &TargetArgs) -> Result<Target, Error> {
        let kubeconfig = match &args.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        }
        .map_err(Error::Kubeconfig)?;
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(Error::Kubeconfig)?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| Error::Client(Box::new(e)))?;
        Ok(Target { client, namespace })
    }

    pub fn microservices(&self) -> Api<Microservice> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The Microservice `name`, or an error that says it is not there.
    pub async fn microservice(&self, name: &str) -> Result<Microservice, Error> {
        self.microservices()
            .get(name)
            .await
            .map_err(|e| self.not_found(name, e, "cannot read"))
    }

    /// Turns a 404 into "not found" (the object) or "no CRD" (the resource type).
    pub fn not_found(&self, name: &str, error: kube::Error, doing: &str) -> Error {
        match &error {
            kube::Error::Api(status) if status.is_not_found() => Error::NotFound {
                name: name.to_string(),
                namespace: self.namespace.clone(),
            },
            kube::Error::Api(status) if status.code == 404 => Error::NoCrd,
            _ => Error::api(format!("{doing} microservice {name}"))(error),
        }
    }

    /// Microservices of the namespace, or of all namespaces. Objects stored under an older,
    /// looser schema that no longer read as a Microservice are set aside, not fatal: one
    /// broken object must not hide every other.
    pub async fn list(&self, all_namespaces: bool) -> Result<Listed, Error> {
        let resource = ApiResource::erase::<Microservice>(&());
        let api: Api<DynamicObject> = if all_namespaces {
            Api::all_with(self.client.clone(), &resource)
        } else {
            Api::namespaced_with(self.client.clone(), &self.namespace, &resource)
        };
        match api.list(&ListParams::default()).await {
            Ok(list) => Ok(Listed::read(list.items)),
            Err(kube::Error::Api(status)) if status.code == 404 => Err(Error::NoCrd),
            Err(e) => Err(Error::api("cannot list microservices")(e)),
        }
    }

    /// Core/v1 events about the Microservice `name` (what the operator records, through
    /// either events API).
    pub async fn events(&self, name: &str) -> Result<Vec<Event>, Error> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = ListParams::default().fields(&format!(
            "involvedObject.name={name},involvedObject.kind=Microservice"
        ));
        api.list(&params)
            .await
            .map(|list| list.items)
            .map_err(Error::api(format!("cannot list the events of {name}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unreadable_object_is_set_aside_and_the_others_listed() {
        let object = |name: &str, image: serde_json::Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "weir.dev/v1alpha1", "kind": "Microservice",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"image": image}
            }))
            .unwrap()
        };
        let listed = Listed::read(vec![
            object("good", json!("app:1")),
            object("broken", json!(42)),
        ]);
        assert_eq!(listed.items.len(), 1);
        assert_eq!(listed.items[0].name_any(), "good");
        assert_eq!(listed.unreadable.len(), 1);
        assert!(
            listed.unreadable[0].starts_with("shop/broken: "),
            "{listed:?}"
        );
    }
}
