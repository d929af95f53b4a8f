//! Every YAML read and write of the test tooling goes through the operator's
//! helpers ([`locust_operator::yaml`]), so that the tests read manifests the
//! way the operator's CLI does (see `docs/architecture.md`, section "YAML").

pub use locust_operator::yaml::{Error, SerializeError, describe, documents, from_str, to_string};
