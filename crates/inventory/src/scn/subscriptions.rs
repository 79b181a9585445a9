//! `Subscriptions/SCN[/{id}]`: SMD's subscriptions, IDs serial from 1 and never reused, one
//! per Subscriber + Url, values kept as submitted and matched case-insensitively.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use skyport_http::ApiError;
use skyport_model::{Role, State, SubRole};
use skyport_store::{Record, StoreError, Table, Write};
use skyport_wire::scn::{ScnPatch, ScnSubscription, ScnSubscriptionIn, ScnTriggers};

use crate::records;
use crate::{Fail, Inventory, retrying};

pub const SUBSCRIPTIONS: Table = Table("ScnSubscriptions");
pub const COUNTERS: Table = Table("Counters");
const COUNTER_ID: &str = "ScnSubscriptions";
const URL_KEY: &str = "scn-url";
/// Subscriptions kept at most (each is matched against every notification).
pub const MAX_SUBSCRIPTIONS: usize = 1000;
/// Longest Subscriber + Url: the pair is a unique key, and DynamoDB keys are at most 1 KiB
/// (SMD's column holds 255 characters).
const MAX_URL: usize = 1000;

const NOT_FOUND: &str = "Subscription not found";
const MISSING_TRIGGER_POST: &str = "Missing trigger. Must subscribe to atleast one Enabled, Role, SubRole, SoftwareStatus, or State trigger.";
const MISSING_TRIGGER_PATCH: &str = "Missing trigger. Subscriptions must have atleast one Enabled, Role, SubRole, SoftwareStatus, or State trigger.";

#[derive(Debug, Default, Serialize, Deserialize)]
struct Counter {
    next: i64,
}

use skyport_wire::de::{Shape, go_keys};

fn decode<T: serde::de::DeserializeOwned>(
    body: &[u8],
    names: &'static [(&'static str, Shape)],
) -> Result<T, ApiError> {
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("error decoding JSON {e}"));
    let v: Value = serde_json::from_slice(body).map_err(bad)?;
    serde_json::from_value(go_keys(v, Shape::Struct(names))).map_err(bad)
}

const SUB_KEYS: &[(&str, Shape)] = &[
    ("Subscriber", Shape::Opaque),
    ("Enabled", Shape::Opaque),
    ("Roles", Shape::Opaque),
    ("SubRoles", Shape::Opaque),
    ("SoftwareStatus", Shape::Opaque),
    ("States", Shape::Opaque),
    ("Url", Shape::Opaque),
];
const PATCH_KEYS: &[(&str, Shape)] = &[
    ("Op", Shape::Opaque),
    ("Enabled", Shape::Opaque),
    ("Roles", Shape::Opaque),
    ("SubRoles", Shape::Opaque),
    ("SoftwareStatus", Shape::Opaque),
    ("States", Shape::Opaque),
];

/// A POST or PUT body.
pub fn parse_subscription(body: &[u8]) -> Result<ScnSubscriptionIn, ApiError> {
    decode(body, SUB_KEYS)
}

/// A PATCH body.
pub fn parse_patch(body: &[u8]) -> Result<ScnPatch, ApiError> {
    decode(body, PATCH_KEYS)
}

/// SMD's checks of the trigger values, in its order; whether any trigger is set.
fn triggers(t: &ScnTriggers) -> Result<bool, ApiError> {
    let mut found = t.enabled == Some(true);
    for r in &t.roles {
        found = true;
        r.parse::<Role>()
            .map_err(|_| ApiError::bad_request(format!("Invalid role '{r}'")))?;
    }
    for r in &t.sub_roles {
        found = true;
        r.parse::<SubRole>()
            .map_err(|_| ApiError::bad_request(format!("Invalid subRole '{r}'")))?;
    }
    for s in &t.software_status {
        found = true;
        if s.is_empty() {
            return Err(ApiError::bad_request(
                "SoftwareStatus can not be an empty string",
            ));
        }
    }
    for s in &t.states {
        found = true;
        s.parse::<State>()
            .map_err(|_| ApiError::bad_request(format!("Invalid state '{s}'")))?;
    }
    Ok(found)
}

/// SMD's checks of a POST or PUT body, plus Skyport's of the URL it will POST to.
fn check(s: &ScnSubscriptionIn) -> Result<(), ApiError> {
    if s.subscriber.is_empty() {
        return Err(ApiError::bad_request("Missing name of subscriber"));
    }
    if s.url.is_empty() {
        return Err(ApiError::bad_request("Missing url"));
    }
    let url_ok = (s.url.starts_with("http://") || s.url.starts_with("https://"))
        && s.url.len() + s.subscriber.len() <= MAX_URL
        && !s.url.chars().any(|c| c.is_control() || c.is_whitespace())
        && s.url
            .split("://")
            .nth(1)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !url_ok {
        return Err(ApiError::bad_request(format!("Invalid url - {}", s.url))
            .context("Url must be an http:// or https:// URL the service can POST to"));
    }
    if !triggers(&s.triggers)? {
        return Err(ApiError::bad_request(MISSING_TRIGGER_POST));
    }
    Ok(())
}

/// SMD's path id: a positive integer, else `Invalid id - <raw>`.
fn parse_id(raw: &str) -> Result<i64, ApiError> {
    match raw.parse::<i64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(ApiError::bad_request(format!("Invalid id - {raw}"))),
    }
}

fn record(s: &ScnSubscription) -> Result<Record, ApiError> {
    let body = serde_json::to_string(s)
        .map_err(|e| ApiError::Internal(format!("encoding subscription: {e}")))?;
    Ok(Record::new(s.id.to_string(), body)
        .with_unique(URL_KEY, format!("{}{}", s.subscriber, s.url)))
}

/// `add`, `remove` or `replace` applied to `cur`, as SMD's `PatchSCNSubscriptionTx`.
fn apply_patch(cur: &mut ScnTriggers, op: &str, p: &ScnTriggers) {
    let lists = [
        (&mut cur.states, &p.states),
        (&mut cur.roles, &p.roles),
        (&mut cur.sub_roles, &p.sub_roles),
        (&mut cur.software_status, &p.software_status),
    ];
    match op {
        "add" => {
            for (have, add) in lists {
                for v in add {
                    if !have.contains(v) {
                        have.push(v.clone());
                    }
                }
            }
            if p.enabled == Some(true) && cur.enabled == Some(false) {
                cur.enabled = Some(true);
            }
        }
        "remove" => {
            for (have, drop) in lists {
                for v in drop {
                    if let Some(i) = have.iter().position(|h| h == v) {
                        have.remove(i);
                    }
                }
            }
            if p.enabled == Some(true) && cur.enabled == Some(true) {
                cur.enabled = Some(false);
            }
        }
        _ => {
            for (have, new) in lists {
                if !new.is_empty() {
                    *have = new.clone();
                }
            }
            if p.enabled.is_some() {
                cur.enabled = p.enabled;
            }
        }
    }
}

impl Inventory {
    /// Checks a path id as SMD does (`Invalid id - <raw>`).
    pub fn scn_id(&self, raw: &str) -> Result<i64, ApiError> {
        parse_id(raw)
    }

    /// Every subscription, by ID.
    pub async fn scn_subscriptions(&self) -> Result<Vec<ScnSubscription>, ApiError> {
        let mut all: Vec<ScnSubscription> = self
            .select(
                SUBSCRIPTIONS,
                crate::Candidates::All,
                |_: &ScnSubscription| true,
            )
            .await?;
        all.sort_by_key(|s| s.id);
        Ok(all)
    }

    async fn scn_record(&self, id: i64) -> Result<(Record, ScnSubscription), Fail> {
        let r = self
            .store
            .get(SUBSCRIPTIONS, &id.to_string())
            .await?
            .ok_or_else(|| ApiError::not_found(NOT_FOUND))?;
        let s = records::decode(SUBSCRIPTIONS, &r)?;
        Ok((r, s))
    }

    pub async fn scn_subscription(&self, raw_id: &str) -> Result<ScnSubscription, ApiError> {
        match self.scn_record(parse_id(raw_id)?).await {
            Ok((_, s)) => Ok(s),
            Err(Fail::Api(e)) => Err(e),
            Err(Fail::Race(e)) => Err(e.into()),
        }
    }

    /// `POST /Subscriptions/SCN`: stored with the next ID. A second subscription with the same
    /// Subscriber and Url is SMD's `Subscribe failed`.
    pub async fn post_scn(&self, s: ScnSubscriptionIn) -> Result<ScnSubscription, ApiError> {
        check(&s)?;
        let attempt = async || {
            let counter = self.store.get(COUNTERS, COUNTER_ID).await?;
            let next = match &counter {
                Some(r) => records::decode::<Counter>(COUNTERS, r)?.next,
                None => 1,
            };
            if self
                .store
                .list(
                    SUBSCRIPTIONS,
                    None,
                    skyport_store::PageRequest::first(MAX_SUBSCRIPTIONS + 1),
                )
                .await?
                .records
                .len()
                >= MAX_SUBSCRIPTIONS
            {
                return Err(Fail::Api(
                    ApiError::bad_request("Subscribe failed")
                        .context(format!("at most {MAX_SUBSCRIPTIONS} subscriptions")),
                ));
            }
            let sub = ScnSubscription::new(next, s.clone());
            let body = serde_json::to_string(&Counter { next: next + 1 })
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            let ops = vec![
                Write::Put {
                    table: COUNTERS,
                    record: Record::new(COUNTER_ID, body),
                    prev: counter,
                },
                Write::Put {
                    table: SUBSCRIPTIONS,
                    record: record(&sub)?,
                    prev: None,
                },
            ];
            match self.store.write(ops).await {
                Ok(()) => Ok(sub),
                Err(StoreError::Duplicate { .. }) => Err(Fail::Api(
                    ApiError::bad_request("Subscribe failed")
                        .context("a subscription with this Subscriber and Url exists"),
                )),
                Err(e) => Err(e.into()),
            }
        };
        retrying!(attempt())
    }

    /// `PUT /Subscriptions/SCN/{id}`: replaces the subscription whole.
    pub async fn put_scn(&self, raw_id: &str, s: ScnSubscriptionIn) -> Result<(), ApiError> {
        let id = parse_id(raw_id)?;
        check(&s)?;
        let attempt = async || {
            let (prev, _) = self.scn_record(id).await?;
            let sub = ScnSubscription::new(id, s.clone());
            match self
                .store
                .write(vec![Write::Put {
                    table: SUBSCRIPTIONS,
                    record: record(&sub)?,
                    prev: Some(prev),
                }])
                .await
            {
                Ok(()) => Ok(()),
                Err(StoreError::Duplicate { .. }) => Err(Fail::Api(
                    ApiError::bad_request("Subscription update failed")
                        .context("another subscription has this Subscriber and Url"),
                )),
                Err(e) => Err(e.into()),
            }
        };
        retrying!(attempt())
    }

    /// `PATCH /Subscriptions/SCN/{id}`: `{"Op": "add" | "remove" | "replace", ...}`.
    pub async fn patch_scn(&self, raw_id: &str, p: ScnPatch) -> Result<(), ApiError> {
        let id = parse_id(raw_id)?;
        if p.op.is_empty() {
            return Err(ApiError::bad_request("Missing Patch Op"));
        }
        let op = p.op.to_ascii_lowercase();
        if !["add", "remove", "replace"].contains(&op.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Invalid Patch Op - {}",
                p.op
            )));
        }
        if !triggers(&p.triggers)? {
            return Err(ApiError::bad_request(MISSING_TRIGGER_PATCH));
        }
        let attempt = async || {
            let (prev, mut sub) = self.scn_record(id).await?;
            apply_patch(&mut sub.triggers, &op, &p.triggers);
            self.store
                .write(vec![Write::Put {
                    table: SUBSCRIPTIONS,
                    record: record(&sub)?,
                    prev: Some(prev),
                }])
                .await
                .map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// `DELETE /Subscriptions/SCN/{id}`.
    pub async fn delete_scn(&self, raw_id: &str) -> Result<(), ApiError> {
        let id = parse_id(raw_id)?;
        let attempt = async || {
            let (prev, _) = self.scn_record(id).await?;
            self.store
                .write(vec![Write::Delete {
                    table: SUBSCRIPTIONS,
                    prev,
                }])
                .await
                .map_err(Fail::from)
        };
        retrying!(attempt())
    }

    /// `DELETE /Subscriptions/SCN`: how many (none is not an error, as SMD).
    pub async fn delete_all_scn(&self) -> Result<usize, ApiError> {
        let attempt = async || {
            let all = self.store.list_all(SUBSCRIPTIONS, None).await?;
            skyport_store::delete_in_batches(self.store.as_ref(), SUBSCRIPTIONS, &all, 50)
                .await
                .map_err(Fail::from)
        };
        retrying!(attempt())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn sub() -> ScnTriggers {
        ScnTriggers {
            enabled: Some(false),
            roles: vec!["Compute".into()],
            states: vec!["On".into(), "Off".into()],
            ..Default::default()
        }
    }

    fn patch(v: Value) -> ScnTriggers {
        parse_patch(v.to_string().as_bytes()).unwrap().triggers
    }

    #[test]
    fn patches_as_smd() {
        let mut s = sub();
        apply_patch(
            &mut s,
            "add",
            &patch(serde_json::json!({"Op":"add","States":["On","Ready"],"Enabled":true})),
        );
        assert_eq!(s.states, ["On", "Off", "Ready"]);
        assert_eq!(s.enabled, Some(true));
        apply_patch(
            &mut s,
            "remove",
            &patch(serde_json::json!({"Op":"remove","States":["Off"],"Enabled":true})),
        );
        assert_eq!(s.states, ["On", "Ready"]);
        assert_eq!(s.enabled, Some(false));
        apply_patch(
            &mut s,
            "replace",
            &patch(serde_json::json!({"Op":"replace","Roles":["Service"],"States":[]})),
        );
        assert_eq!(s.roles, ["Service"]);
        assert_eq!(s.states, ["On", "Ready"], "an empty list replaces nothing");
    }

    #[test]
    fn keys_in_any_case_as_gos_decoder() {
        let s = parse_subscription(br#"{"subscriber":"a","URL":"http://h/x","states":["on"]}"#)
            .unwrap();
        assert_eq!((s.subscriber.as_str(), s.url.as_str()), ("a", "http://h/x"));
        assert_eq!(s.triggers.states, ["on"]);
        assert!(parse_subscription(b"{").is_err());
    }

    #[test]
    fn smds_checks_in_its_order() {
        let t = |v: Value| {
            let s = parse_subscription(v.to_string().as_bytes()).unwrap();
            check(&s).map_err(|e| e.detail())
        };
        use serde_json::json;
        assert_eq!(
            t(json!({"Url":"http://h"})),
            Err("Missing name of subscriber".into())
        );
        assert_eq!(t(json!({"Subscriber":"a"})), Err("Missing url".into()));
        assert_eq!(
            t(json!({"Subscriber":"a","Url":"ftp://h","States":["On"]})),
            Err("Invalid url - ftp://h".into())
        );
        assert_eq!(
            t(json!({"Subscriber":"a","Url":"http://h","Enabled":false})),
            Err(MISSING_TRIGGER_POST.into())
        );
        assert_eq!(
            t(json!({"Subscriber":"a","Url":"http://h","Roles":["Compute","Nope"]})),
            Err("Invalid role 'Nope'".into())
        );
        assert_eq!(
            t(json!({"Subscriber":"a","Url":"http://h","SoftwareStatus":[""]})),
            Err("SoftwareStatus can not be an empty string".into())
        );
        assert_eq!(
            t(json!({"Subscriber":"a","Url":"http://h","States":["ready"]})),
            Ok(())
        );
        assert_eq!(parse_id("0").unwrap_err().detail(), "Invalid id - 0");
        assert_eq!(parse_id("x").unwrap_err().detail(), "Invalid id - x");
    }
}
