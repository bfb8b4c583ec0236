//! What stops a Microservice from being served as its spec asks, found by the apply stage
//! and reported by the status as a Degraded reason and a sentence. A new problem is a
//! variant here with its words; the apply stage finds it.

use crate::api::conditions::reason;

#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A child's name is taken by an object Weir does not own.
    NameConflict { kind: &'static str, name: String },
    /// The API server refused a child as built from the spec.
    Refused { kind: &'static str, message: String },
    /// A route parent names Service `parent`, not the Microservice's own: a Microservice
    /// touches nothing outside its own objects.
    ForeignParent { parent: String, own: String },
    /// `traffic.gatewayAPI` is set but the cluster does not serve HTTPRoutes.
    GatewayApiMissing,
}

impl Problem {
    /// The reason of the Degraded condition.
    pub fn reason(&self) -> &'static str {
        match self {
            Problem::NameConflict { .. } => reason::NAME_CONFLICT,
            Problem::Refused { .. } => reason::APPLY_FAILED,
            Problem::ForeignParent { .. } => reason::FOREIGN_PARENT,
            Problem::GatewayApiMissing => reason::GATEWAY_API_MISSING,
        }
    }

    /// A sentence for a person: what is wrong and what to do.
    pub fn message(&self) -> String {
        match self {
            Problem::NameConflict { kind, name } => format!(
                "{kind} {name} already exists and is not owned by this Microservice; Weir \
                 will not adopt or change it. Rename or delete it."
            ),
            Problem::Refused { kind, message } => {
                format!("The API server refused the {kind} built from this spec: {message}")
            }
            Problem::ForeignParent { parent, own } => format!(
                "rollout.traffic.gatewayAPI names Service {parent} as a parent: a Microservice \
                 may only route through its own Service, {own}."
            ),
            Problem::GatewayApiMissing => "rollout.traffic.gatewayAPI is set, but this cluster \
                                           does not serve HTTPRoutes \
                                           (gateway.networking.k8s.io/v1). Install the Gateway \
                                           API CRDs, then restart Weir."
                .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_has_its_own_reason_and_says_what_to_do() {
        let problems = [
            Problem::NameConflict {
                kind: "Service",
                name: "pay".into(),
            },
            Problem::Refused {
                kind: "Deployment",
                message: "spec.x: Invalid value".into(),
            },
            Problem::ForeignParent {
                parent: "other".into(),
                own: "pay".into(),
            },
            Problem::GatewayApiMissing,
        ];
        let reasons: Vec<_> = problems.iter().map(Problem::reason).collect();
        assert_eq!(
            reasons,
            [
                "NameConflict",
                "ApplyFailed",
                "ForeignParent",
                "GatewayAPIMissing"
            ]
        );
        assert!(problems[0].message().contains("Service pay already exists"));
        assert!(problems[2].message().contains("Service other as a parent"));
        assert!(problems[2].message().ends_with("its own Service, pay."));
        assert!(
            problems[3]
                .message()
                .contains("Install the Gateway API CRDs")
        );
    }
}
