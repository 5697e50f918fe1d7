//! hap-console: the analysts' web front door to HAP. Sign-in with OpenID Connect, sessions in sealed
//! cookies, group-to-namespace mapping, and every action asked of the API server
//! (SubjectAccessReview) before the console's own ServiceAccount carries it out.
#![forbid(unsafe_code)]

pub mod access;
pub mod identity;
pub mod oidc;
pub mod pages;
pub mod serve;
pub mod session;
pub mod settings;
pub mod tenants;
pub mod web;
pub mod workspaces;
