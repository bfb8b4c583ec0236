//! Pure builders: from a Microservice to the objects Weir wants on the cluster. Nothing here
//! talks to the API server, so everything here is tested without one.

pub mod labels;
