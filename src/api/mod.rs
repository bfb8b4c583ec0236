//! The `Microservice` custom resource (`weir.dev/v1alpha1`): the one object a team writes.
//!
//! Doc comments on these types become the CRD's OpenAPI descriptions, so they are what
//! `kubectl explain microservice.spec` prints.

pub mod conditions;
mod metric_template;
mod microservice;
mod migration;
mod rollout;
mod status;
mod window;

pub use metric_template::*;
pub use microservice::*;
pub use migration::*;
pub use rollout::*;
pub use status::*;
pub use window::*;
