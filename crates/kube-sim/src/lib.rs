//! kube-sim: a simulated Kubernetes control plane that an unmodified kubectl and kube-rs can drive.
//!
//! It is a real HTTP server speaking the Kubernetes API (discovery, OpenAPI, CRUD, watch, patches
//! including server-side apply, status subresources, RBAC) backed by an in-memory store, plus simulated
//! controllers (scheduler, kubelet, endpoints, workloads, garbage collector) that make pods "run".
//! No container ever runs. See `docs/kube-sim.md` for what it covers and where it differs from a real
//! apiserver.
#![forbid(unsafe_code)]

pub mod admission;
pub mod api;
pub mod auth;
pub mod clock;
pub mod control;
pub mod controllers;
pub mod core;
pub mod crdcheck;
pub mod errors;
pub mod events_view;
pub mod faults;
pub mod impersonation;
pub mod jsonpath;
pub mod lifecycle;
pub mod quantity;
pub mod rbac;
pub mod registry;
pub mod selectors;
pub mod sim;
pub mod store;
pub mod tables;
pub mod tls;

pub use crate::core::{Controller, PodFault, Timings};
pub use faults::{Matcher, RequestRecord};
pub use sim::{CrdValidation, Sim, SimConfig};
