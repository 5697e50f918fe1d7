//! kube-sim's conformance suite: one test per behaviour the simulated apiserver promises, each checked
//! against what a real apiserver does (its wording, codes and semantics), with kube-rs and with real
//! kubectl binaries as clients.
#![forbid(unsafe_code)]

#[path = "../common/mod.rs"]
mod common;

mod controllers;
mod crds;
mod deletion;
mod discovery;
mod faults;
mod kubectl;
mod metadata;
mod patches;
mod rbac;
mod reads;
mod resources;
mod serve;
mod status;
mod watch;
