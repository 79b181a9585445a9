//! The power control service's JSON (`/power-control/v1`), field for field and in the key order
//! of upstream's Go structs (OpenCHAMI/power-control `internal/model/transitions.go`,
//! `power-status.go`): what `ochami pcs` and CSM's `cray power` read.

use serde::{Deserialize, Serialize};

/// `POST /transitions` body. `operation` is read in any case; `taskDeadlineMinutes` absent means
/// 5, 0 means do not wait for the state, negative means wait as long as it takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionCreate {
    #[serde(default)]
    pub operation: String,
    #[serde(
        rename = "taskDeadlineMinutes",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub task_deadline_minutes: Option<i64>,
    #[serde(default)]
    pub location: Vec<Location>,
    /// Skyport: set the next boot (`pxe`, `http`) before the operation, so "reimage these
    /// nodes" is one request. Upstream PCS has no such field and ignores it.
    #[serde(
        rename = "bootOverride",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub boot_override: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub xname: String,
    #[serde(
        rename = "deputyKey",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub deputy_key: String,
}

/// `POST /transitions` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionCreated {
    #[serde(rename = "transitionID")]
    pub transition_id: String,
    pub operation: String,
}

/// `GET /transitions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transitions {
    pub transitions: Vec<Transition>,
}

/// One transition; `tasks` only in `GET /transitions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    #[serde(rename = "transitionID")]
    pub transition_id: String,
    pub operation: String,
    #[serde(rename = "createTime")]
    pub create_time: String,
    #[serde(rename = "automaticExpirationTime")]
    pub automatic_expiration_time: String,
    #[serde(rename = "transitionStatus")]
    pub transition_status: String,
    #[serde(rename = "taskCounts")]
    pub task_counts: TaskCounts,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    pub total: usize,
    pub new: usize,
    #[serde(rename = "in-progress")]
    pub in_progress: usize,
    pub failed: usize,
    pub succeeded: usize,
    #[serde(rename = "un-supported")]
    pub unsupported: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub xname: String,
    #[serde(rename = "taskStatus")]
    pub task_status: String,
    #[serde(rename = "taskStatusDescription")]
    pub task_status_description: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// `DELETE /transitions/{id}` answer (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortStatus {
    #[serde(rename = "abortStatus")]
    pub abort_status: String,
}

/// `GET|POST /power-status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerStatusAll {
    pub status: Vec<PowerStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerStatus {
    pub xname: String,
    /// `on`, `off` or `undefined`.
    #[serde(rename = "powerState")]
    pub power_state: String,
    /// `available` or `unavailable`.
    #[serde(rename = "managementState")]
    pub management_state: String,
    pub error: String,
    #[serde(rename = "supportedPowerTransitions")]
    pub supported_power_transitions: Vec<String>,
    #[serde(rename = "lastUpdated")]
    pub last_updated: String,
}

/// `POST /power-status` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerStatusQuery {
    #[serde(default)]
    pub xname: Vec<String>,
    #[serde(rename = "powerStateFilter", default)]
    pub power_state_filter: String,
    #[serde(rename = "managementStateFilter", default)]
    pub management_state_filter: String,
}
