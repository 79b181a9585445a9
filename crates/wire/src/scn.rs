//! SMD's state change notifications (`pkg/sm/subscriptions.go`): subscriptions as clients send
//! and read them, and the payload a subscriber's URL receives.

use serde::{Deserialize, Serialize};

fn none<T>(v: &Option<T>) -> bool {
    v.is_none()
}

fn empty<T>(v: &[T]) -> bool {
    v.is_empty()
}

/// What a subscription listens for (SMD's trigger fields, shared by its subscription types).
/// Values are kept as submitted: SMD validates them case-insensitively and stores the text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScnTriggers {
    #[serde(rename = "Enabled", default, skip_serializing_if = "none")]
    pub enabled: Option<bool>,
    #[serde(rename = "Roles", default, skip_serializing_if = "empty")]
    pub roles: Vec<String>,
    #[serde(rename = "SubRoles", default, skip_serializing_if = "empty")]
    pub sub_roles: Vec<String>,
    #[serde(rename = "SoftwareStatus", default, skip_serializing_if = "empty")]
    pub software_status: Vec<String>,
    #[serde(rename = "States", default, skip_serializing_if = "empty")]
    pub states: Vec<String>,
}

/// `POST`/`PUT /hsm/v2/Subscriptions/SCN[/{id}]`: SMD's `SCNPostSubscription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScnSubscriptionIn {
    #[serde(rename = "Subscriber", default)]
    pub subscriber: String,
    #[serde(flatten)]
    pub triggers: ScnTriggers,
    #[serde(rename = "Url", default)]
    pub url: String,
}

/// A stored subscription: SMD's `SCNSubscription`, the submitted one with its serial `ID`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScnSubscription {
    #[serde(rename = "ID")]
    pub id: i64,
    #[serde(rename = "Subscriber")]
    pub subscriber: String,
    #[serde(flatten)]
    pub triggers: ScnTriggers,
    #[serde(rename = "Url")]
    pub url: String,
}

impl ScnSubscription {
    pub fn new(id: i64, s: ScnSubscriptionIn) -> Self {
        Self {
            id,
            subscriber: s.subscriber,
            triggers: s.triggers,
            url: s.url,
        }
    }
}

/// `GET /hsm/v2/Subscriptions/SCN`: `null` when there are none, as SMD answers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScnSubscriptionArray {
    #[serde(rename = "SubscriptionList")]
    pub subscription_list: Option<Vec<ScnSubscription>>,
}

/// `PATCH /hsm/v2/Subscriptions/SCN/{id}`: SMD's `SCNPatchSubscription`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScnPatch {
    #[serde(rename = "Op", default)]
    pub op: String,
    #[serde(flatten)]
    pub triggers: ScnTriggers,
}

/// What a subscriber's URL is POSTed: SMD's `SCNPayload`, one change to many components.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ScnPayload {
    #[serde(rename = "Components")]
    pub components: Vec<String>,
    #[serde(rename = "Enabled", default, skip_serializing_if = "none")]
    pub enabled: Option<bool>,
    #[serde(rename = "Flag", default, skip_serializing_if = "String::is_empty")]
    pub flag: String,
    #[serde(rename = "Role", default, skip_serializing_if = "String::is_empty")]
    pub role: String,
    #[serde(rename = "SubRole", default, skip_serializing_if = "String::is_empty")]
    pub sub_role: String,
    #[serde(
        rename = "SoftwareStatus",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub software_status: String,
    #[serde(rename = "State", default, skip_serializing_if = "String::is_empty")]
    pub state: String,
}
