//! SMD's component locks and reservations (`/hsm/v2/locks/...`): an admin locks components
//! (and may then reserve them without expiry), a service reserves unlocked ones for 1–15
//! minutes, and whoever holds a reservation's key (or its deputy key, to check it) may act on
//! the component. Reservations live in their own table keyed by xname (so a component has at
//! most one); `Locked` and `ReservationDisabled` live on the component. Every change that
//! depends on both rewrites the component record in the same atomic batch, so a lock and a
//! reservation racing for one component cannot both win.
//!
//! An expired reservation is gone: it is ignored wherever it is read and replaced by the next
//! reservation (SMD deletes them in a sweep every 30 s and counts them until then).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use skyport_http::{ApiError, QueryParams, parse_bool};
use skyport_model::Xname;
use skyport_store::{Record, Write};
use skyport_wire::Component;
use skyport_wire::locks::{
    LockFailure, LockKey, LockStatus, LockStatusArray, LockUpdateResult, Reservation,
    ReservationResult,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::filters::ComponentFilter;
use crate::query::body_params;
use crate::records::{self, COMPONENTS, RESERVATIONS};
use crate::{Fail, Inventory, retrying};

/// SMD's longest service reservation, in minutes.
pub const MAX_DURATION_MINUTES: i64 = 15;

const NOT_FOUND: &str = "Component not found";
const RESERVED: &str = "Component is Reserved";
const LOCKED: &str = "Component is Locked";
const UNLOCKED: &str = "Component is Unlocked";
const DISABLED: &str = "Component reservations are disabled";
const NEED_RKEY: &str = "Reservation Key required for operation";
const NEED_DKEY: &str = "Deputy Key required for operation";

/// `rigid` (the default): the first failure rejects the request and nothing changes.
/// `flexible`: what can be done is done, the rest listed with reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    #[default]
    Rigid,
    Flexible,
}

/// A lock route's body: which components (SMD's component filter under its own key names),
/// how to process them, and for how long to reserve them.
#[derive(Debug, Clone, Default)]
pub struct LockRequest {
    pub filter: ComponentFilter,
    /// `Reserved` (status only): keep components that are (not) reserved.
    pub reserved: Option<bool>,
    pub model: Model,
    /// Minutes; 0 when not given.
    pub duration: i64,
    /// The component IDs asked for by name, normalised (for status's `NotFound`).
    pub asked: Vec<String>,
}

/// The lock filter's keys (lowercased) that name a component filter parameter differently.
const RENAMED: [(&str, &str); 2] = [
    ("componentids", "id"),
    ("reservationdisabled", "reservation_disabled"),
];

/// The filter errors' texts without the `bad query param: ` SMD puts before them on the
/// listing routes (its lock routes send the bare text).
fn unprefixed(e: ApiError) -> ApiError {
    let detail = e.detail();
    let Some(bare) = detail.strip_prefix("bad query param: ") else {
        return e;
    };
    let bare = ApiError::bad_request(bare.to_string());
    match e {
        ApiError::WithContext { context, .. } => bare.context(context),
        _ => bare,
    }
}

fn int_member(body: &Map<String, Value>, name: &str) -> Result<i64, ApiError> {
    match body.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        None | Some((_, Value::Null)) => Ok(0),
        Some((k, v)) => v.as_i64().ok_or_else(|| {
            ApiError::bad_request(format!("error decoding JSON: {name} must be an integer"))
                .context(format!("{k}: {v}"))
        }),
    }
}

fn model_member(body: &Map<String, Value>) -> Result<Model, ApiError> {
    let v = match body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("ProcessingModel"))
    {
        None | Some((_, Value::Null)) => return Ok(Model::Rigid),
        Some((_, Value::String(s))) => s.to_ascii_lowercase(),
        Some((_, other)) => {
            return Err(ApiError::bad_request("Invalid Processing Model")
                .context(format!("ProcessingModel: {other}")));
        }
    };
    match v.as_str() {
        "" | "rigid" => Ok(Model::Rigid),
        "flexible" => Ok(Model::Flexible),
        _ => Err(ApiError::bad_request("Invalid Processing Model")
            .context(format!("ProcessingModel {v:?}: rigid or flexible"))),
    }
}

fn duration(body: &Map<String, Value>) -> Result<i64, ApiError> {
    let d = int_member(body, "ReservationDuration")?;
    if d > MAX_DURATION_MINUTES {
        return Err(ApiError::bad_request("Invalid Reservation Duration")
            .context(format!("{d} minutes; at most {MAX_DURATION_MINUTES}")));
    }
    Ok(d)
}

impl LockRequest {
    /// A filter body (`ComponentIDs`, `Type`, …, `ProcessingModel`, `ReservationDuration`,
    /// `Reserved`), keys case-insensitive as SMD decodes them.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, ApiError> {
        let model = model_member(body)?;
        let duration = duration(body)?;
        let reserved = match body
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("Reserved"))
        {
            None | Some((_, Value::Null)) => None,
            Some((k, v)) => {
                let first = match v {
                    Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
                    other => other.clone(),
                };
                match first {
                    Value::Null => None,
                    Value::Bool(b) => Some(b),
                    Value::String(s) => Some(parse_bool(&s).ok_or_else(|| {
                        ApiError::bad_request("Argument was not valid").context(format!("{k}: {v}"))
                    })?),
                    _ => {
                        return Err(ApiError::bad_request("Argument was not valid")
                            .context(format!("{k}: {v}")));
                    }
                }
            }
        };
        let mut q = body_params(
            body,
            &[
                "processingmodel",
                "reservationduration",
                "reserved",
                "reservationkeys",
                "deputykeys",
            ],
        )?;
        for (k, _) in q.0.iter_mut() {
            if let Some((_, to)) = RENAMED.iter().find(|(from, _)| from == k) {
                *k = to.to_string();
            }
        }
        let filter = ComponentFilter::parse(&q).map_err(unprefixed)?;
        Ok(LockRequest {
            asked: filter.ids.clone(),
            filter,
            reserved,
            model,
            duration,
        })
    }

    /// `GET /locks/status`'s query: `type`, `state`, `role`, `subrole`, `locked`,
    /// `reserved`, `reservationDisabled` (names case-insensitive, values as SMD reads them).
    pub fn from_query(q: &QueryParams) -> Result<Self, ApiError> {
        let mut kept = Vec::new();
        let mut reserved = None;
        for (k, v) in &q.0 {
            match k.as_str() {
                "type" | "state" | "role" | "subrole" | "locked" => {
                    kept.push((k.clone(), v.clone()))
                }
                "reservationdisabled" => kept.push(("reservation_disabled".into(), v.clone())),
                "reserved" if reserved.is_none() => {
                    reserved = Some(parse_bool(v).ok_or_else(|| {
                        ApiError::bad_request(format!("bad 'Reserved' query parameter: {v}"))
                    })?);
                }
                _ => {}
            }
        }
        let filter = ComponentFilter::parse(&QueryParams(kept))?;
        Ok(LockRequest {
            filter,
            reserved,
            ..Default::default()
        })
    }
}

/// A release, renew or check body's keys: ids normalised, keys lowercased.
pub fn parse_keys(body: &Map<String, Value>, name: &str) -> Result<Vec<LockKey>, ApiError> {
    let raw = match body.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        None | Some((_, Value::Null)) => return Ok(Vec::new()),
        Some((_, v)) => v,
    };
    let keys: Vec<LockKey> = serde_json::from_value(raw.clone()).map_err(|e| {
        ApiError::bad_request(format!("error decoding JSON: {name}: {e}"))
            .context(format!("{name}: a list of {{\"ID\":…,\"Key\":…}}"))
    })?;
    keys.into_iter()
        .map(|k| {
            let id = Xname::parse(&k.id).map_err(|_| {
                ApiError::bad_request("got HMSTypeInvalid instead of valid type")
                    .context(format!("{name} ID {:?}", k.id))
            })?;
            Ok(LockKey {
                id: id.to_string(),
                key: k.key.trim().to_ascii_lowercase(),
            })
        })
        .collect()
}

/// Whole seconds, as SMD prints reservation times.
fn stamp(t: OffsetDateTime) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&fmt).unwrap_or_default()
}

/// Whether `r` still holds at `now` (no expiry, or one in the future). An expiry that cannot
/// be read holds (refusing an action is safer than running over someone's reservation).
fn holds(r: &Reservation, now: OffsetDateTime) -> bool {
    r.expiration_time.is_empty()
        || OffsetDateTime::parse(&r.expiration_time, &Rfc3339).map_or(true, |t| t > now)
}

/// The xname a key was made for (`<xname>:rk:<uuid>`).
fn key_owner(key: &str) -> &str {
    key.split(':').next().unwrap_or_default()
}

/// One component as a lock operation sees it: its record, and its reservation if one holds.
struct Held {
    rec: Record,
    comp: Component,
    reservation: Option<(Reservation, Record)>,
    /// A reservation record that no longer holds (replaced or deleted by the next write).
    stale: Option<Record>,
}

/// How a rigid request fails or a flexible one records a failure.
struct Outcome {
    model: Model,
    failures: Vec<LockFailure>,
}

impl Outcome {
    fn new(model: Model) -> Self {
        Outcome {
            model,
            failures: Vec::new(),
        }
    }

    /// `id` fails for `reason`; in a rigid request that is the answer (`detail`).
    fn fail(&mut self, id: &str, reason: &str, detail: &str) -> Result<(), Fail> {
        match self.model {
            Model::Rigid => Err(Fail::Api(
                ApiError::bad_request(detail.to_string()).context(id.to_string()),
            )),
            Model::Flexible => {
                self.failures.push(LockFailure {
                    id: id.to_string(),
                    reason: reason.to_string(),
                });
                Ok(())
            }
        }
    }
}

/// Which lock operation [`Inventory::update_locks`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockAction {
    Lock,
    Unlock,
    Disable,
    Repair,
}

impl Inventory {
    /// The components `f` selects, each with its reservation; none is SMD's 400.
    async fn held(&self, f: &ComponentFilter, now: OffsetDateTime) -> Result<Vec<Held>, Fail> {
        let comps = self.select_components(f).await?;
        if comps.is_empty() {
            return Err(Fail::Api(ApiError::bad_request(NOT_FOUND)));
        }
        let ids: Vec<String> = comps.iter().map(|(_, c)| c.id.clone()).collect();
        let mut res = records::by_id(self.store.get_many(RESERVATIONS, &ids).await?);
        let mut out = Vec::with_capacity(comps.len());
        for (rec, comp) in comps {
            let (reservation, stale) = match res.remove(&comp.id) {
                Some(r) => {
                    let v: Reservation = records::decode(RESERVATIONS, &r)?;
                    if holds(&v, now) {
                        (Some((v, r)), None)
                    } else {
                        (None, Some(r))
                    }
                }
                None => (None, None),
            };
            out.push(Held {
                rec,
                comp,
                reservation,
                stale,
            });
        }
        Ok(out)
    }

    /// `POST /locks/reservations` (`duration` 0: an admin's reservation of locked components,
    /// never expiring) and `POST /locks/service/reservations` (1–15 minutes, unlocked
    /// components).
    pub async fn reserve(
        &self,
        req: &LockRequest,
        admin: bool,
    ) -> Result<ReservationResult, ApiError> {
        let minutes = if admin { 0 } else { req.duration };
        if !admin && minutes <= 0 {
            return Err(ApiError::bad_request(
                "ReservationDuration must be greater than 0",
            ));
        }
        let attempt = async || {
            let now = OffsetDateTime::now_utc();
            let mut out = Outcome::new(req.model);
            let mut ops = Vec::new();
            let mut made = Vec::new();
            for h in self.held(&req.filter, now).await? {
                let id = h.comp.id.as_str();
                if h.comp.reservation_disabled {
                    out.fail(id, "Disabled", DISABLED)?;
                    continue;
                }
                if admin && !h.comp.locked {
                    out.fail(id, "Unlocked", UNLOCKED)?;
                    continue;
                }
                if !admin && h.comp.locked {
                    out.fail(id, "Locked", LOCKED)?;
                    continue;
                }
                if h.reservation.is_some() {
                    out.fail(id, "Reserved", RESERVED)?;
                    continue;
                }
                let uuid = |kind: &str| -> Result<String, Fail> {
                    let u = skyport_model::random_uuid().map_err(|e| {
                        Fail::Api(ApiError::Internal(format!("no randomness for a key: {e}")))
                    })?;
                    Ok(format!("{id}:{kind}:{u}"))
                };
                let r = Reservation {
                    id: id.to_string(),
                    deputy_key: uuid("dk")?,
                    reservation_key: uuid("rk")?,
                    creation_time: stamp(now),
                    expiration_time: if minutes > 0 {
                        stamp(now + time::Duration::minutes(minutes))
                    } else {
                        String::new()
                    },
                };
                ops.push(Write::Put {
                    table: RESERVATIONS,
                    record: records::reservation(&r)?,
                    prev: h.stale.clone(),
                });
                // Rewritten unchanged: a lock racing this reservation loses its write.
                ops.push(Write::Put {
                    table: COMPONENTS,
                    record: records::component(&h.comp)?,
                    prev: Some(h.rec.clone()),
                });
                made.push(Reservation {
                    creation_time: String::new(),
                    ..r
                });
            }
            if !ops.is_empty() {
                self.store.write(ops).await?;
            }
            Ok::<ReservationResult, Fail>(ReservationResult {
                success: made,
                failure: out.failures,
            })
        };
        retrying!(attempt())
    }

    /// `POST /locks/lock`, `unlock`, `disable` and `repair`. Lock and unlock refuse
    /// components whose reservations are disabled, already in that state, or reserved;
    /// disable releases what is reserved and disables further reservations; repair enables
    /// them again.
    pub async fn update_locks(
        &self,
        req: &LockRequest,
        action: LockAction,
    ) -> Result<LockUpdateResult, ApiError> {
        let attempt = async || {
            let now = OffsetDateTime::now_utc();
            let mut out = Outcome::new(req.model);
            let mut ops = Vec::new();
            let mut done = Vec::new();
            for h in self.held(&req.filter, now).await? {
                let id = h.comp.id.clone();
                let mut c = h.comp.clone();
                match action {
                    LockAction::Lock | LockAction::Unlock => {
                        let lock = action == LockAction::Lock;
                        if c.locked == lock {
                            let (reason, detail) = if lock {
                                ("Locked", LOCKED)
                            } else {
                                ("Unlocked", UNLOCKED)
                            };
                            out.fail(&id, reason, detail)?;
                            continue;
                        }
                        if c.reservation_disabled {
                            out.fail(&id, "Disabled", DISABLED)?;
                            continue;
                        }
                        if h.reservation.is_some() {
                            out.fail(&id, "Reserved", RESERVED)?;
                            continue;
                        }
                        c.locked = lock;
                    }
                    LockAction::Disable => {
                        if let Some((_, r)) = &h.reservation {
                            ops.push(Write::Delete {
                                table: RESERVATIONS,
                                prev: r.clone(),
                            });
                        }
                        c.reservation_disabled = true;
                    }
                    LockAction::Repair => c.reservation_disabled = false,
                }
                if c != h.comp {
                    ops.push(Write::Put {
                        table: COMPONENTS,
                        record: records::component(&c)?,
                        prev: Some(h.rec.clone()),
                    });
                }
                done.push(id);
            }
            if !ops.is_empty() {
                self.store.write(ops).await?;
            }
            Ok::<LockUpdateResult, Fail>(LockUpdateResult::new(done, out.failures))
        };
        retrying!(attempt())
    }

    /// `POST /locks/reservations/remove`: an admin ends the reservations of the selected
    /// components, whatever their keys.
    pub async fn remove_reservations(
        &self,
        req: &LockRequest,
    ) -> Result<LockUpdateResult, ApiError> {
        let attempt = async || {
            let now = OffsetDateTime::now_utc();
            let mut out = Outcome::new(req.model);
            let mut ops = Vec::new();
            let mut done = Vec::new();
            for h in self.held(&req.filter, now).await? {
                let Some((_, r)) = h.reservation else {
                    out.fail(&h.comp.id, "NotFound", NOT_FOUND)?;
                    continue;
                };
                ops.push(Write::Delete {
                    table: RESERVATIONS,
                    prev: r,
                });
                ops.push(Write::Put {
                    table: COMPONENTS,
                    record: records::component(&h.comp)?,
                    prev: Some(h.rec),
                });
                done.push(h.comp.id);
            }
            if !ops.is_empty() {
                self.store.write(ops).await?;
            }
            Ok::<LockUpdateResult, Fail>(LockUpdateResult::new(done, out.failures))
        };
        retrying!(attempt())
    }

    /// The live reservations `keys` name, by component: a key matches a reservation's
    /// reservation key (or, with `deputy`, its deputy key).
    async fn keyed(
        &self,
        keys: &[LockKey],
        deputy: bool,
        now: OffsetDateTime,
    ) -> Result<BTreeMap<String, (Reservation, Record)>, Fail> {
        let owners: Vec<String> = keys.iter().map(|k| key_owner(&k.key).to_string()).collect();
        let mut out = BTreeMap::new();
        for r in self.store.get_many(RESERVATIONS, &owners).await? {
            let v: Reservation = records::decode(RESERVATIONS, &r)?;
            let matched = keys.iter().any(|k| {
                if deputy {
                    k.key == v.deputy_key
                } else {
                    k.key == v.reservation_key
                }
            });
            if matched && holds(&v, now) {
                out.insert(v.id.clone(), (v, r));
            }
        }
        Ok(out)
    }

    /// `POST /locks/reservations/release` (and its `service/` twin): whoever holds the
    /// reservation keys ends those reservations. `renew` (`service/reservations/renew`) instead
    /// moves an expiring reservation's end to `minutes` from now.
    pub async fn release_or_renew(
        &self,
        keys: &[LockKey],
        model: Model,
        renew: Option<i64>,
    ) -> Result<LockUpdateResult, ApiError> {
        if let Some(m) = renew
            && m <= 0
        {
            return Err(ApiError::bad_request(
                "ReservationDuration must be greater than 0",
            ));
        }
        if keys.is_empty() || keys.iter().any(|k| k.key.is_empty()) {
            return match model {
                Model::Rigid => Err(ApiError::bad_request(NEED_RKEY)),
                Model::Flexible => Ok(LockUpdateResult::new(
                    Vec::new(),
                    keys.iter()
                        .map(|k| LockFailure {
                            id: k.id.clone(),
                            reason: "ServerError".into(),
                        })
                        .collect(),
                )),
            };
        }
        let attempt = async || {
            let now = OffsetDateTime::now_utc();
            let found = self.keyed(keys, false, now).await?;
            let mut out = Outcome::new(model);
            let mut ops = Vec::new();
            let mut done = Vec::new();
            for k in keys {
                let owner = key_owner(&k.key);
                let Some((v, r)) = found.get(owner).filter(|(v, _)| v.reservation_key == k.key)
                else {
                    out.fail(&k.id, "NotFound", NOT_FOUND)?;
                    continue;
                };
                match renew {
                    None => ops.push(Write::Delete {
                        table: RESERVATIONS,
                        prev: r.clone(),
                    }),
                    // An admin's reservation does not expire, so it has nothing to renew.
                    Some(_) if v.expiration_time.is_empty() => {
                        out.fail(&k.id, "NotFound", NOT_FOUND)?;
                        continue;
                    }
                    Some(m) => {
                        let renewed = Reservation {
                            expiration_time: stamp(now + time::Duration::minutes(m)),
                            ..v.clone()
                        };
                        ops.push(Write::Put {
                            table: RESERVATIONS,
                            record: records::reservation(&renewed)?,
                            prev: Some(r.clone()),
                        });
                    }
                }
                done.push(v.id.clone());
            }
            if !ops.is_empty() {
                self.store.write(ops).await?;
            }
            Ok::<LockUpdateResult, Fail>(LockUpdateResult::new(done, out.failures))
        };
        retrying!(attempt())
    }

    /// `POST /locks/service/reservations/check`: which deputy keys are valid now.
    pub async fn check_reservations(
        &self,
        keys: &[LockKey],
    ) -> Result<ReservationResult, ApiError> {
        if keys.is_empty() || keys.iter().any(|k| k.key.is_empty()) {
            return Err(ApiError::bad_request(NEED_DKEY));
        }
        let found = match self.keyed(keys, true, OffsetDateTime::now_utc()).await {
            Ok(f) => f,
            Err(Fail::Api(e)) => return Err(e),
            Err(Fail::Race(e)) => return Err(e.into()),
        };
        let mut result = ReservationResult::default();
        for k in keys {
            match found
                .get(key_owner(&k.key))
                .filter(|(v, _)| v.deputy_key == k.key)
            {
                Some((v, _)) => result.success.push(Reservation {
                    reservation_key: String::new(),
                    ..v.clone()
                }),
                None => result.failure.push(LockFailure {
                    id: k.id.clone(),
                    reason: "NotFound".into(),
                }),
            }
        }
        Ok(result)
    }

    /// `POST`/`GET /locks/status`: each selected component's lock, reservation and whether
    /// reservations are disabled.
    pub async fn lock_status(&self, req: &LockRequest) -> Result<LockStatusArray, ApiError> {
        let held = match self.held(&req.filter, OffsetDateTime::now_utc()).await {
            Ok(h) => h,
            Err(Fail::Api(e)) => return Err(e),
            Err(Fail::Race(e)) => return Err(e.into()),
        };
        let mut components = Vec::new();
        for h in held {
            let reserved = h.reservation.is_some();
            if req.reserved.is_some_and(|want| want != reserved) {
                continue;
            }
            let (creation_time, expiration_time) = h
                .reservation
                .map(|(v, _)| (v.creation_time, v.expiration_time))
                .unwrap_or_default();
            components.push(LockStatus {
                id: h.comp.id,
                locked: h.comp.locked,
                reserved,
                creation_time,
                expiration_time,
                reservation_disabled: h.comp.reservation_disabled,
            });
        }
        if components.is_empty() {
            return Err(ApiError::bad_request(NOT_FOUND));
        }
        let not_found = req
            .asked
            .iter()
            .filter(|id| !components.iter().any(|c| c.id == **id))
            .cloned()
            .collect();
        Ok(LockStatusArray {
            components,
            not_found,
        })
    }

    /// For the power service: which of `targets` (xname, deputy key or `""`) someone else
    /// holds. A component nobody has reserved may be acted on by anyone; a reserved one only
    /// by whoever shows its reservation's deputy key (as PCS checks with SMD). One read for
    /// them all; xnames that are not valid are left to the caller's own check.
    pub async fn reserved_by_others(
        &self,
        targets: &[(String, String)],
    ) -> Result<Vec<String>, ApiError> {
        let ids: Vec<String> = targets
            .iter()
            .filter_map(|(x, _)| Xname::parse(x).ok())
            .map(|x| x.to_string())
            .collect();
        let now = OffsetDateTime::now_utc();
        let mut held = BTreeMap::new();
        for r in self.store.get_many(RESERVATIONS, &ids).await? {
            let v: Reservation = records::decode(RESERVATIONS, &r)?;
            if holds(&v, now) {
                held.insert(v.id.clone(), v.deputy_key);
            }
        }
        Ok(targets
            .iter()
            .filter_map(|(x, key)| {
                let id = Xname::parse(x).ok()?.to_string();
                let dk = held.get(&id)?;
                (*dk != key.trim().to_ascii_lowercase()).then_some(id)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> Result<LockRequest, ApiError> {
        LockRequest::parse(v.as_object().unwrap())
    }

    #[test]
    fn a_lock_body_is_a_component_filter_under_smd_names() {
        let r = req(json!({"ComponentIDs":["X1C0S0B0N0"],"Type":["Node"],
                           "ProcessingModel":"Flexible","ReservationDuration":5,
                           "ReservationDisabled":["false"]}))
        .unwrap();
        assert_eq!(r.filter.ids, ["x1c0s0b0n0"]);
        assert_eq!(r.asked, ["x1c0s0b0n0"]);
        assert_eq!(r.model, Model::Flexible);
        assert_eq!(r.duration, 5);
        assert_eq!(r.filter.reservation_disabled, Some(false));
        let e = req(json!({"ComponentIDs":["bogus"]})).unwrap_err();
        assert_eq!(e.detail(), "Argument was not a valid xname ID");
        let e = req(json!({"ProcessingModel":"sloppy"})).unwrap_err();
        assert_eq!(e.detail(), "Invalid Processing Model");
        let e = req(json!({"ReservationDuration":16})).unwrap_err();
        assert_eq!(e.detail(), "Invalid Reservation Duration");
        let e = req(json!({"Reserved":["maybe"]})).unwrap_err();
        assert_eq!(e.detail(), "Argument was not valid");
        assert_eq!(
            req(json!({"Reserved":["true"]})).unwrap().reserved,
            Some(true)
        );
    }

    #[test]
    fn status_query_takes_smd_get_parameters_only() {
        let r = LockRequest::from_query(&QueryParams::parse(
            "type=Node&reservationDisabled=true&id=x1c0s0b0n0&reserved=false",
        ))
        .unwrap();
        assert!(r.filter.ids.is_empty(), "GET status has no id filter");
        assert_eq!(r.filter.reservation_disabled, Some(true));
        assert_eq!(r.reserved, Some(false));
        let e = LockRequest::from_query(&QueryParams::parse("reserved=maybe")).unwrap_err();
        assert_eq!(e.detail(), "bad 'Reserved' query parameter: maybe");
    }

    #[test]
    fn keys_are_normalised_and_ids_checked() {
        let b = json!({"ReservationKeys":[{"ID":"X1C0S0B0N0","Key":"X1C0S0B0N0:RK:AB"}]});
        let k = parse_keys(b.as_object().unwrap(), "ReservationKeys").unwrap();
        assert_eq!(k[0].id, "x1c0s0b0n0");
        assert_eq!(k[0].key, "x1c0s0b0n0:rk:ab");
        assert_eq!(key_owner(&k[0].key), "x1c0s0b0n0");
        let b = json!({"DeputyKeys":[{"ID":"nope","Key":"k"}]});
        let e = parse_keys(b.as_object().unwrap(), "DeputyKeys").unwrap_err();
        assert_eq!(e.detail(), "got HMSTypeInvalid instead of valid type");
    }

    #[test]
    fn expiry_is_read_back_as_written() {
        let now = OffsetDateTime::now_utc();
        let mut r = Reservation {
            expiration_time: stamp(now + time::Duration::minutes(1)),
            ..Default::default()
        };
        assert!(holds(&r, now));
        r.expiration_time = stamp(now - time::Duration::seconds(2));
        assert!(!holds(&r, now));
        r.expiration_time = String::new();
        assert!(holds(&r, now), "an admin's reservation does not expire");
    }
}
