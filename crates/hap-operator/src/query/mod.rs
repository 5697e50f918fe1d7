//! HapQuery's steps of the pipeline (see docs/architecture.md): `resolve`, the builders in
//! `build::query`, `children` (read from the caches and planned), `status`, and `reconcile`, which
//! runs them with the steps every resource shares (`plan`, `apply`, `events`).

pub mod children;
pub mod reconcile;
pub mod resolve;
pub mod status;
