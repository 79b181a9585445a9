//! Acting on one system through its BMC: reading its power state and boot override, posting
//! `ComputerSystem.Reset` with a reset type the BMC lists (the vendor module picks it,
//! [`Vendor::reset_type`]), and setting the one-time boot override.
//!
//! PCS's operations (on, off, soft-off, force-off, soft-restart, hard-restart, init) are
//! composed here from reset calls and state reads, each wait bounded by [`Timing`]. An operation
//! that finds the system already where it should end makes no call, so "on" sent twice powers a
//! node on once; one that cannot reach its state in time fails with the state it saw last. A
//! BMC that lists no way to do something is told nothing: the operation fails as unsupported.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::client::{BmcClient, FetchError};
use crate::fields;
use crate::model::System;
use crate::res::str_path;
use crate::vendor::Vendor;
pub use skyport_model::power::{BootTarget, Operation, PowerState};

/// Redfish's `ResetType` values Skyport sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResetType {
    On,
    ForceOn,
    ForceOff,
    GracefulShutdown,
    GracefulRestart,
    ForceRestart,
    PushPowerButton,
    PowerCycle,
}

impl ResetType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResetType::On => "On",
            ResetType::ForceOn => "ForceOn",
            ResetType::ForceOff => "ForceOff",
            ResetType::GracefulShutdown => "GracefulShutdown",
            ResetType::GracefulRestart => "GracefulRestart",
            ResetType::ForceRestart => "ForceRestart",
            ResetType::PushPowerButton => "PushPowerButton",
            ResetType::PowerCycle => "PowerCycle",
        }
    }
}

/// What is needed to act on one system, as a crawl found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemRef {
    /// `/redfish/v1/Systems/1`.
    pub path: String,
    /// Where resets are posted.
    pub reset_target: String,
    /// The reset types the system lists; empty when it did not say.
    #[serde(default)]
    pub reset_types: Vec<String>,
    /// The boot override targets it lists; empty when it did not say.
    #[serde(default)]
    pub boot_targets: Vec<String>,
}

impl SystemRef {
    pub fn of(s: &System) -> Self {
        Self {
            reset_target: s
                .reset_target
                .clone()
                .unwrap_or_else(|| format!("{}/Actions/ComputerSystem.Reset", s.path)),
            path: s.path.clone(),
            reset_types: s.reset_types.clone(),
            boot_targets: s.boot_targets.clone(),
        }
    }
}

/// How long an operation waits for the state it asked for.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How long a graceful shutdown gets before `off` forces it (and `soft-off` fails).
    pub graceful: Duration,
    /// How long the system gets to reach the state a call asked for; zero does not wait (PCS's
    /// `taskDeadlineMinutes: 0`), and the outcome's state is then what was read before.
    pub settle: Duration,
    /// How often the state is read while waiting.
    pub poll: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            graceful: Duration::from_secs(60),
            settle: Duration::from_secs(300),
            poll: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error("{system}: the BMC lists no reset type for {what} (it lists: {allowed})")]
    Unsupported {
        system: String,
        what: &'static str,
        allowed: String,
    },
    #[error("{system}: still {last} {waited}s after {call}, not {want}")]
    Timeout {
        system: String,
        call: &'static str,
        want: PowerState,
        last: PowerState,
        waited: u64,
    },
    #[error("{system}: is {state}; a soft restart needs it on")]
    NotOn { system: String, state: PowerState },
    #[error("{system}: the BMC does not list boot override {target} (it lists: {allowed})")]
    BootUnsupported {
        system: String,
        target: &'static str,
        allowed: String,
    },
    #[error("{system}: the boot override reads back as {got:?}, not {want}")]
    BootNotSet {
        system: String,
        want: &'static str,
        got: Option<String>,
    },
}

/// A system's one-time boot override as the BMC reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootOverride {
    pub target: Option<String>,
    pub enabled: Option<String>,
    pub mode: Option<String>,
}

/// What a system reports now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub state: PowerState,
    pub boot: BootOverride,
}

/// What an operation did: the reset types it posted, in order, and the state it ended in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub state: PowerState,
    pub calls: Vec<ResetType>,
}

/// Reads the system's power state and boot override (one GET).
pub async fn status(c: &BmcClient, system: &str) -> Result<Status, PowerError> {
    let v = c.get(system, &fields::SYSTEM_POWER).await?;
    Ok(Status {
        state: PowerState::parse(v.get("PowerState").and_then(Value::as_str)),
        boot: BootOverride {
            target: str_path(&v, &["Boot", "BootSourceOverrideTarget"]),
            enabled: str_path(&v, &["Boot", "BootSourceOverrideEnabled"]),
            mode: str_path(&v, &["Boot", "BootSourceOverrideMode"]),
        },
    })
}

struct Run<'a> {
    c: &'a BmcClient,
    sys: &'a SystemRef,
    vendor: &'a dyn Vendor,
    t: &'a Timing,
    calls: Vec<ResetType>,
    state: PowerState,
}

impl Run<'_> {
    fn pick(&self, want: ResetType, what: &'static str) -> Result<ResetType, PowerError> {
        self.vendor
            .reset_type(want, &self.sys.reset_types)
            .ok_or_else(|| PowerError::Unsupported {
                system: self.sys.path.clone(),
                what,
                allowed: listed(&self.sys.reset_types),
            })
    }

    async fn post(&mut self, t: ResetType) -> Result<(), PowerError> {
        self.c
            .send(
                reqwest::Method::POST,
                &self.sys.reset_target,
                &json!({"ResetType": t.as_str()}),
            )
            .await?;
        self.calls.push(t);
        Ok(())
    }

    /// Posts `t` and waits up to `limit` for `want`.
    async fn call(
        &mut self,
        t: ResetType,
        want: PowerState,
        limit: Duration,
    ) -> Result<(), PowerError> {
        self.post(t).await?;
        self.wait(t.as_str(), want, limit).await
    }

    async fn wait(
        &mut self,
        call: &'static str,
        want: PowerState,
        limit: Duration,
    ) -> Result<(), PowerError> {
        if limit.is_zero() {
            return Ok(());
        }
        let start = Instant::now();
        loop {
            // BMCs often fail a read while the host resets: a failed read is "not there yet"
            // until the limit, and only then the error.
            match status(self.c, &self.sys.path).await {
                Ok(s) => self.state = s.state,
                Err(e) if start.elapsed() >= limit => return Err(e),
                Err(e) => {
                    tracing::debug!(system = %self.sys.path, error = %e, "state read failed while waiting");
                    self.state = PowerState::Unknown;
                }
            }
            if self.state == want {
                return Ok(());
            }
            if start.elapsed() >= limit {
                return Err(PowerError::Timeout {
                    system: self.sys.path.clone(),
                    call,
                    want,
                    last: self.state,
                    waited: start.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(self.t.poll.min(limit.saturating_sub(start.elapsed()))).await;
        }
    }

    /// How long an intermediate state (off, in the middle of a restart or an init) is waited
    /// for: never zero, since the next call depends on it; `settle: 0` skips only the last wait.
    fn between(&self) -> Duration {
        if self.t.settle.is_zero() {
            Timing::default().settle
        } else {
            self.t.settle
        }
    }

    /// Graceful shutdown if the BMC offers one, forced once it has had its time; `last` says
    /// whether off is where the operation ends (else it is waited for whatever `settle` says).
    async fn off_then(&mut self, last: bool) -> Result<(), PowerError> {
        let limit = if last { self.t.settle } else { self.between() };
        if let Some(g) = self
            .vendor
            .reset_type(ResetType::GracefulShutdown, &self.sys.reset_types)
        {
            self.post(g).await?;
            match self
                .wait(g.as_str(), PowerState::Off, self.t.graceful)
                .await
            {
                Err(PowerError::Timeout { .. }) => {}
                other => return other,
            }
        }
        let f = self.pick(ResetType::ForceOff, "force-off")?;
        self.call(f, PowerState::Off, limit).await
    }

    async fn off(&mut self) -> Result<(), PowerError> {
        self.off_then(true).await
    }

    async fn on(&mut self) -> Result<(), PowerError> {
        let on = self.pick(ResetType::On, "on")?;
        self.call(on, PowerState::On, self.t.settle).await
    }
}

fn is_on(s: PowerState) -> bool {
    matches!(s, PowerState::On | PowerState::PoweringOn)
}

fn is_off(s: PowerState) -> bool {
    matches!(s, PowerState::Off | PowerState::PoweringOff)
}

/// Runs `op` on the system: reads its state, makes the calls it takes, waits for each. A
/// restart in one call (`ForceRestart`, `GracefulRestart`) is confirmed only as far as the
/// system reads `On` afterwards (a BMC may still read `On` before the host went down): the
/// boot itself is the flight recorder's to see.
pub async fn run(
    c: &BmcClient,
    sys: &SystemRef,
    vendor: &dyn Vendor,
    op: Operation,
    t: &Timing,
) -> Result<Outcome, PowerError> {
    let mut r = Run {
        c,
        sys,
        vendor,
        t,
        calls: Vec::new(),
        state: status(c, &sys.path).await?.state,
    };
    match op {
        Operation::On if is_on(r.state) => r.wait("On", PowerState::On, t.settle).await?,
        Operation::On => r.on().await?,
        Operation::Off | Operation::SoftOff | Operation::ForceOff if is_off(r.state) => {
            r.wait("Off", PowerState::Off, t.settle).await?
        }
        Operation::Off => r.off().await?,
        Operation::SoftOff => {
            let g = r.pick(ResetType::GracefulShutdown, "soft-off")?;
            r.call(g, PowerState::Off, t.graceful).await?
        }
        Operation::ForceOff => {
            let f = r.pick(ResetType::ForceOff, "force-off")?;
            r.call(f, PowerState::Off, t.settle).await?
        }
        Operation::SoftRestart => {
            if r.state != PowerState::On {
                return Err(PowerError::NotOn {
                    system: sys.path.clone(),
                    state: r.state,
                });
            }
            let g = r.pick(ResetType::GracefulRestart, "soft-restart")?;
            r.call(g, PowerState::On, t.settle).await?
        }
        Operation::HardRestart => {
            let one = vendor.reset_type(ResetType::ForceRestart, &sys.reset_types);
            match one {
                Some(f) if r.state == PowerState::On => r.call(f, PowerState::On, t.settle).await?,
                _ => {
                    if !is_off(r.state) {
                        let f = r.pick(ResetType::ForceOff, "hard-restart")?;
                        let limit = r.between();
                        r.call(f, PowerState::Off, limit).await?;
                    }
                    r.on().await?
                }
            }
        }
        Operation::Init => {
            if !is_off(r.state) {
                r.off_then(false).await?;
            }
            r.on().await?
        }
    }
    Ok(Outcome {
        state: r.state,
        calls: r.calls,
    })
}

/// Sets the next boot (once) to `target`, or clears the override, and reads it back.
pub async fn set_boot(
    c: &BmcClient,
    sys: &SystemRef,
    vendor: &dyn Vendor,
    target: BootTarget,
) -> Result<BootOverride, PowerError> {
    let name = target.redfish_name();
    if target != BootTarget::None
        && !sys.boot_targets.is_empty()
        && !sys.boot_targets.iter().any(|t| t == name)
    {
        return Err(PowerError::BootUnsupported {
            system: sys.path.clone(),
            target: name,
            allowed: listed(&sys.boot_targets),
        });
    }
    c.send(
        reqwest::Method::PATCH,
        &sys.path,
        &vendor.boot_override(target),
    )
    .await?;
    let got = status(c, &sys.path).await?.boot;
    let set = match target {
        BootTarget::None => {
            got.enabled.as_deref() == Some("Disabled") || got.target.as_deref() == Some("None")
        }
        _ => got.target.as_deref() == Some(name),
    };
    if !set {
        return Err(PowerError::BootNotSet {
            system: sys.path.clone(),
            want: name,
            got: got.target,
        });
    }
    Ok(got)
}

fn listed(v: &[String]) -> String {
    if v.is_empty() {
        "nothing".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::vendor::generic::Generic;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn operations_read_in_any_case_and_answer_in_pcs_case() {
        for op in Operation::ALL {
            assert_eq!(Operation::parse(&op.as_str().to_lowercase()), Some(op));
            assert_eq!(
                serde_json::to_value(op).unwrap(),
                Value::String(op.as_str().into())
            );
        }
        assert_eq!(Operation::parse("hard-reset"), None);
        assert!(!Operation::HardRestart.repeatable() && Operation::Off.repeatable());
    }

    #[test]
    fn reset_types_come_from_what_the_bmc_lists() {
        let g = Generic;
        // Unlisted: sent as asked (the BMC did not say what it takes).
        assert_eq!(g.reset_type(ResetType::On, &[]), Some(ResetType::On));
        let sushy = strs(&[
            "On",
            "ForceOff",
            "GracefulShutdown",
            "GracefulRestart",
            "ForceRestart",
            "Nmi",
            "ForceOn",
        ]);
        assert_eq!(
            g.reset_type(ResetType::PowerCycle, &sushy),
            None,
            "never a type the BMC did not list"
        );
        let only_force_on = strs(&["ForceOn", "ForceOff", "PushPowerButton"]);
        assert_eq!(
            g.reset_type(ResetType::On, &only_force_on),
            Some(ResetType::ForceOn)
        );
        assert_eq!(
            g.reset_type(ResetType::GracefulShutdown, &only_force_on),
            Some(ResetType::PushPowerButton)
        );
        assert_eq!(
            g.reset_type(ResetType::GracefulRestart, &only_force_on),
            None
        );
    }

    #[test]
    fn power_states_are_read_leniently() {
        assert_eq!(PowerState::parse(Some("on")), PowerState::On);
        assert_eq!(
            PowerState::parse(Some("PoweringOff")),
            PowerState::PoweringOff
        );
        assert_eq!(PowerState::parse(Some("Sleeping")), PowerState::Unknown);
        assert_eq!(PowerState::parse(None), PowerState::Unknown);
    }
}
