//! Locust Kubernetes Operator: runs distributed Locust load tests described by
//! `LocustTest` custom resources.
//!
//! Layout:
//! - [`api`]: the API types alone (v2 stored, v1 deprecated, shared status);
//! - [`conversion`]: pure v1 ↔ v2 conversion (lossless both ways);
//! - [`validation`]: the admission rules (each mirrored as a CEL rule in the
//!   CRD), the schema checks and the decoding behind `validate`;
//! - [`crd`]: the CustomResourceDefinition assembled from the types and rules;
//! - [`config`]: operator configuration (flags and environment);
//! - [`dns`]: the syntax of Kubernetes names (DNS-1123 labels and subdomains);
//! - [`units`]: the duration and quantity parsers;
//! - [`migration`]: where a test written for the Go operator behaves differently here
//!   (the migration check of `validate`);
//! - [`role`]: the two kinds of Locust pods (master, worker);
//! - [`resources`]: pure builders from (LocustTest, config) to Jobs and Service;
//! - [`controller`]: the reconciler (read, build, apply, derive status);
//! - [`webhook`]: the HTTPS conversion and validating webhook server;
//! - [`health`] and [`metrics`]: readiness with the plain-HTTP probes, and the
//!   Prometheus metrics with their endpoint;
//! - [`server`]: the one HTTP/1.1 serving loop (plain TCP or TLS) under the
//!   webhook, health and metrics servers;
//! - [`rbac`]: the permissions the operator needs, declared next to the code;
//! - [`schedule`]: the schedule arithmetic of `LocustSchedule` (cron
//!   expressions, time zones, missed starts), pure and clock-injected;
//! - [`schedule_controller`]: the LocustSchedule controller (a pure decision
//!   core, its reconcile and watches), started with [`controller`];
//! - [`yaml`]: every YAML read and write (the CLI, tests, fuzz targets).

pub mod api;
pub mod config;
pub mod controller;
pub mod conversion;
pub mod crd;
pub mod dns;
pub mod health;
pub mod heap;
pub mod leader;
pub mod metrics;
pub mod metrics_auth;
pub mod metrics_tls;
pub mod migration;
pub mod rbac;
pub mod resources;
pub mod role;
pub mod schedule;
pub mod schedule_controller;
pub mod server;
pub mod stats;
pub mod test_metrics;
pub mod thresholds;
pub mod units;
pub mod validation;
pub mod webhook;
pub mod yaml;
