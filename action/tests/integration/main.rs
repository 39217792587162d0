//! The scanner's integration tests in one test binary (one link, not one
//! per file): the CLI end to end, the Action as a runner runs it, `--verify`
//! against the X API emulator, and every rule's examples.

mod action;
mod archives;
mod cli;
mod encodings;
mod install;
mod org_sweep;
mod pre_commit;
mod rules_examples;
mod sarif_schema;
mod shallow;
mod support;
mod verify;
mod waivers;
