//! Every integration test of the operator, the chart, the CRD and the X API
//! emulator, in one test binary: each file is a module, so the suite links
//! once instead of once per file (fewer, smaller artifacts on a CI disk).
//! Each test still starts its own control plane.

mod chart;
mod chart_alerts;
mod chart_rbac;
mod chart_upgrade;
mod chart_values;
mod control_plane;
mod crd;
mod deploy;
mod operator_binary;
mod operator_caches;
mod operator_conflicts;
mod operator_faults;
mod operator_kill;
mod operator_leader;
mod operator_lost_answers;
mod operator_rotation;
mod operator_security;
mod operator_sharing;
mod operator_sync;
mod operator_verification;
mod third_party_client;
mod workflows;
mod x_api_emulator;
mod x_api_tls;
