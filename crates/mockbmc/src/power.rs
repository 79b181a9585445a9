//! The mock's systems' changing state: power (`ComputerSystem.Reset`) and the one-time boot
//! override (`PATCH {"Boot": ...}`), kept per system path and laid over the tree's documents.
//!
//! What it emulates: a reset type or boot target the system does not list is refused with 400
//! and a Redfish message; a reset reaches its state after [`Faults::power_delay`], reporting
//! `PoweringOn`/`PoweringOff` meanwhile; a host can ignore graceful requests
//! ([`Faults::ignore_graceful`]); an override `Once` is used by the next power-on and then
//! reads `Disabled`, as on real BMCs. What it does not: tasks (`202` with a task monitor),
//! ETag preconditions, or the BIOS taking its time to honour the override.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use http::StatusCode;
use serde_json::{Value, json};

use crate::{Faults, Stats, Tree};

#[derive(Debug, Clone)]
struct State {
    power: &'static str,
    /// A state being reached, and when it is.
    pending: Option<(Instant, &'static str)>,
    boot_target: String,
    boot_enabled: String,
    boot_mode: Option<String>,
}

impl State {
    fn of(doc: &Value) -> Self {
        let power = match doc.get("PowerState").and_then(Value::as_str) {
            Some("Off") => "Off",
            _ => "On",
        };
        let boot = doc.get("Boot");
        let field = |k: &str| boot.and_then(|b| b.get(k)).and_then(Value::as_str);
        State {
            power,
            pending: None,
            boot_target: field("BootSourceOverrideTarget")
                .unwrap_or("None")
                .to_string(),
            boot_enabled: field("BootSourceOverrideEnabled")
                .unwrap_or("Disabled")
                .to_string(),
            boot_mode: field("BootSourceOverrideMode").map(str::to_string),
        }
    }

    fn settle(&mut self) {
        if let Some((at, to)) = self.pending
            && Instant::now() >= at
        {
            self.power = to;
            self.pending = None;
        }
    }

    fn reported(&mut self) -> &'static str {
        self.settle();
        match self.pending {
            Some((_, "On")) => "PoweringOn",
            Some(_) => "PoweringOff",
            None => self.power,
        }
    }
}

type Refusal = (StatusCode, String);

/// Every system's state, created from the tree on first use.
#[derive(Debug, Default)]
pub struct Systems(Mutex<HashMap<String, State>>);

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn is_system(doc: &Value) -> bool {
    doc.get("Actions")
        .and_then(|a| a.get("#ComputerSystem.Reset"))
        .is_some()
}

/// The system whose reset action is posted to `path`.
fn reset_owner<'a>(tree: &'a Tree, path: &str) -> Option<(&'a str, &'a Value)> {
    tree.resources.iter().find_map(|(p, doc)| {
        let action = doc.get("Actions")?.get("#ComputerSystem.Reset")?;
        let target = action.get("target").and_then(Value::as_str);
        let std = format!("{p}/Actions/ComputerSystem.Reset");
        (target.map(crate::normalize).as_deref() == Some(path) || std == path)
            .then_some((p.as_str(), doc))
    })
}

impl Systems {
    fn with<T>(&self, path: &str, doc: &Value, f: impl FnOnce(&mut State) -> T) -> T {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let s = all
            .entry(path.to_string())
            .or_insert_with(|| State::of(doc));
        f(s)
    }

    /// Lays the system's current state over its document, once something changed it (until
    /// then the tree's document is served as it is, hostile values included).
    pub fn overlay(&self, path: &str, doc: &mut Value) {
        let current = {
            let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
            all.get_mut(path).map(|s| {
                (
                    s.reported(),
                    s.boot_target.clone(),
                    s.boot_enabled.clone(),
                    s.boot_mode.clone(),
                )
            })
        };
        let Some((power, target, enabled, mode)) = current else {
            return;
        };
        let Some(o) = doc.as_object_mut() else {
            return;
        };
        o.insert("PowerState".into(), json!(power));
        let boot = o.entry("Boot").or_insert_with(|| json!({}));
        if let Some(b) = boot.as_object_mut() {
            b.insert("BootSourceOverrideTarget".into(), json!(target));
            b.insert("BootSourceOverrideEnabled".into(), json!(enabled));
            if let Some(m) = mode {
                b.insert("BootSourceOverrideMode".into(), json!(m));
            }
        }
    }

    /// `POST …/Actions/ComputerSystem.Reset`.
    pub fn reset(
        &self,
        tree: &Tree,
        path: &str,
        body: &Value,
        faults: &Faults,
        stats: &Stats,
    ) -> Result<(), Refusal> {
        let Some((sys, doc)) = reset_owner(tree, path) else {
            return Err((StatusCode::NOT_FOUND, "resource not found".into()));
        };
        let Some(t) = body.get("ResetType").and_then(Value::as_str) else {
            return Err((
                StatusCode::BAD_REQUEST,
                "The action ComputerSystem.Reset requires the parameter ResetType.".into(),
            ));
        };
        let allowed = strings(
            doc.get("Actions")
                .and_then(|a| a.get("#ComputerSystem.Reset"))
                .and_then(|a| a.get("ResetType@Redfish.AllowableValues")),
        );
        if !allowed.is_empty() && !allowed.contains(&t) {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("The value {t} for the parameter ResetType is not supported."),
            ));
        }
        let delay = faults.power_delay;
        let line = self.with(sys, doc, |s| {
            s.settle();
            let now = s.pending.map_or(s.power, |(_, to)| to);
            let to = match t {
                "On" | "ForceOn" => "On",
                "ForceOff" => "Off",
                "GracefulShutdown" if !faults.ignore_graceful => "Off",
                "PushPowerButton" if now == "On" => "Off",
                "PushPowerButton" => "On",
                "ForceRestart" | "PowerCycle" => "On",
                "GracefulRestart" if !faults.ignore_graceful && now == "On" => "On",
                _ => now,
            };
            let restart = matches!(t, "ForceRestart" | "PowerCycle")
                || (t == "GracefulRestart" && !faults.ignore_graceful && now == "On");
            let boots = to == "On" && (now == "Off" || restart);
            let mut line = format!("{sys} {t}");
            if boots && s.boot_enabled != "Disabled" {
                line.push_str(&format!(" boot={}", s.boot_target));
                if s.boot_enabled == "Once" {
                    s.boot_enabled = "Disabled".into();
                    s.boot_target = "None".into();
                }
            }
            if delay.is_zero() {
                s.power = to;
                s.pending = None;
            } else if to != now || restart {
                if restart {
                    s.power = "Off";
                }
                s.pending = Some((Instant::now() + delay, to));
            }
            line
        });
        stats
            .resets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(line);
        Ok(())
    }

    /// `PATCH` of a system: only `Boot`'s override fields are writable.
    pub fn patch(&self, tree: &Tree, path: &str, body: &Value) -> Result<(), Refusal> {
        let Some(doc) = tree.get(path).filter(|d| is_system(d)) else {
            return Err((
                StatusCode::METHOD_NOT_ALLOWED,
                "only systems can be patched".into(),
            ));
        };
        let Some(o) = body.as_object() else {
            return Err((StatusCode::BAD_REQUEST, "body is not an object".into()));
        };
        if let Some(k) = o.keys().find(|k| *k != "Boot") {
            return Err((
                StatusCode::BAD_REQUEST,
                format!("The property {k} is a read only property and cannot be assigned a value."),
            ));
        }
        let boot = o.get("Boot").and_then(Value::as_object).ok_or((
            StatusCode::BAD_REQUEST,
            "Boot must be an object".to_string(),
        ))?;
        let allowed = strings(
            doc.get("Boot")
                .and_then(|b| b.get("BootSourceOverrideTarget@Redfish.AllowableValues")),
        );
        let field = |k: &str, ok: &[&str]| -> Result<Option<String>, Refusal> {
            match boot.get(k) {
                None => Ok(None),
                Some(Value::String(v)) if ok.is_empty() || ok.contains(&v.as_str()) => {
                    Ok(Some(v.clone()))
                }
                Some(v) => Err((
                    StatusCode::BAD_REQUEST,
                    format!(
                        "The value {v} for the property {k} is not in the list of acceptable values."
                    ),
                )),
            }
        };
        let target = field("BootSourceOverrideTarget", &allowed)?;
        let enabled = field(
            "BootSourceOverrideEnabled",
            &["Once", "Continuous", "Disabled"],
        )?;
        let mode = field("BootSourceOverrideMode", &["UEFI", "Legacy"])?;
        self.with(path, doc, |s| {
            if let Some(t) = target {
                s.boot_target = t;
            }
            if let Some(e) = enabled {
                s.boot_enabled = e;
            }
            if let Some(m) = mode {
                s.boot_mode = Some(m);
            }
        });
        Ok(())
    }
}
