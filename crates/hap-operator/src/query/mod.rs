//! HapQuery's steps of the pipeline (see docs/architecture.md). So far: resolve; its builders are in
//! `build::query`, and `render` prints what they build.

pub mod resolve;
