//! stateless-operator: keeps the application tier of a Kubernetes cluster stateless.
//!
//! The layout follows the reconcile pipeline and the ways findings reach users:
//! - [`crd`]: the `StatelessApp` API types (no logic).
//! - [`build`]: pure builders, one per child kind; spec in, whole object out.
//! - [`rules`]: the pure statelessness rule engine, shared by the controller,
//!   the admission webhook, `lint` and `audit`.
//! - [`lint`]: reading manifests from files/stdin and rendering findings.
//! - [`controller`]: observe → validate → build → apply → status.
//! - [`webhook`]: validating admission on top of [`rules`].
//! - [`identity`]: the operator's own API username (the webhook's one exemption).
//! - [`signing_keys`]: the pure JWT signing key set of `identity.jwt` and its rotation.
//! - [`watch`]: the list+watch streams of both, each with its own backoff.
//! - [`cli`]: the `stateless-operator` subcommands.

pub mod build;
pub mod cli;
pub mod client;
pub mod controller;
pub mod crd;
pub mod http;
pub mod identity;
pub mod lint;
pub mod metrics;
pub mod rules;
pub mod signing_keys;
pub mod watch;
pub mod webhook;
