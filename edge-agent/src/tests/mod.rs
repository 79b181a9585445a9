//! Tests of the agent's parts together, against a real cloud router (`skyport::api`), mock
//! BMCs and the embedded store: discovery passes, serving and sync, tokens and pushes.

mod agent;
mod discover;
mod site;
mod token;
