//! Jobs as PCS shows them: a power job is a transition, its tasks PCS's tasks; the last power
//! state agents reported is PCS's power status. Pure: the routes read, this module words.

use skyport_http::ApiError;
use skyport_model::power::{Operation, PowerState};
use skyport_wire::pcs::{PowerStatus, Task, TaskCounts, Transition};

use crate::jobs::{Action, JobState, JobView, KEEP_S, StatusRecord, TaskState};

/// Unix seconds as RFC 3339 (UTC), PCS's `time.Time` text.
pub fn rfc3339(secs: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_default()
}

fn task_status(s: TaskState) -> &'static str {
    match s {
        TaskState::Pending => "new",
        TaskState::Running => "in-progress",
        TaskState::Succeeded => "succeeded",
        TaskState::Unsupported => "unsupported",
        TaskState::Failed | TaskState::Expired | TaskState::Aborted => "failed",
    }
}

/// The transition of a power job (`None` for other jobs); `full` adds its tasks.
pub fn transition(v: &JobView, full: bool) -> Option<Transition> {
    let Action::Power { operation, .. } = v.job.action else {
        return None;
    };
    let mut counts = TaskCounts::default();
    let mut tasks = Vec::new();
    for t in &v.tasks {
        let status = task_status(t.state);
        counts.total += 1;
        match status {
            "new" => counts.new += 1,
            "in-progress" => counts.in_progress += 1,
            "succeeded" => counts.succeeded += 1,
            "unsupported" => counts.unsupported += 1,
            _ => counts.failed += 1,
        }
        if full {
            let description = match t.state {
                TaskState::Pending => "Waiting for the site's agent".to_string(),
                TaskState::Running => "Sending Command".to_string(),
                TaskState::Succeeded => match t.power {
                    Some(p) => format!("Transition confirmed, {}", p.as_str().to_lowercase()),
                    None => "Transition confirmed".to_string(),
                },
                TaskState::Unsupported => "Unsupported transition".to_string(),
                TaskState::Failed | TaskState::Expired | TaskState::Aborted => {
                    "Failed to achieve transition".to_string()
                }
            };
            let error = match t.state {
                TaskState::Failed | TaskState::Unsupported if !t.error.is_empty() => {
                    t.error.clone()
                }
                TaskState::Failed
                | TaskState::Unsupported
                | TaskState::Expired
                | TaskState::Aborted => t.detail.clone(),
                _ => String::new(),
            };
            tasks.push(Task {
                xname: t.xname.clone(),
                task_status: status.into(),
                task_status_description: description,
                error,
            });
        }
    }
    let transition_status = match v.state {
        JobState::Pending if v.job.aborted => "abort-signaled",
        JobState::Pending => "new",
        JobState::Running if v.job.aborted => "abort-signaled",
        JobState::Running => "in-progress",
        JobState::Aborted => "aborted",
        JobState::Done | JobState::Failed | JobState::Expired => "completed",
    };
    Some(Transition {
        transition_id: v.job.id.clone(),
        operation: operation.as_str().into(),
        create_time: rfc3339(v.job.created),
        automatic_expiration_time: rfc3339(v.job.created + KEEP_S),
        transition_status: transition_status.into(),
        task_counts: counts,
        tasks,
    })
}

/// PCS's status filters, checked with PCS's error texts.
#[derive(Debug, Default)]
pub struct Filter {
    power: Option<&'static str>,
    management: Option<&'static str>,
}

impl Filter {
    pub fn new(power: &str, management: &str) -> Result<Self, ApiError> {
        let power = match power.to_ascii_lowercase().as_str() {
            "" => None,
            // PCS counts a node on its way off as on, and on its way on as off.
            "on" | "poweringoff" => Some("on"),
            "off" | "poweringon" => Some("off"),
            "undefined" => Some("undefined"),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid powerStateFilter type: {power}"
                )));
            }
        };
        let management = match management.to_ascii_lowercase().as_str() {
            "" => None,
            "available" => Some("available"),
            "unavailable" => Some("unavailable"),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid ManagementStateFilter type: {management}"
                )));
            }
        };
        Ok(Filter { power, management })
    }
}

fn pcs_power(p: PowerState) -> &'static str {
    match p {
        PowerState::On | PowerState::PoweringOff => "on",
        PowerState::Off | PowerState::PoweringOn => "off",
        PowerState::Paused | PowerState::Unknown => "undefined",
    }
}

/// The status of `asked` (of everything reported, when empty), filtered.
pub fn power_status(asked: &[String], recs: &[StatusRecord], f: &Filter) -> Vec<PowerStatus> {
    let all: Vec<String> = if asked.is_empty() {
        recs.iter().map(|r| r.xname.clone()).collect()
    } else {
        asked.to_vec()
    };
    let supported: Vec<String> = Operation::ALL
        .iter()
        .map(|o| o.as_str().to_string())
        .collect();
    all.into_iter()
        .map(|x| match recs.iter().find(|r| r.xname == x) {
            Some(r) => PowerStatus {
                power_state: pcs_power(r.power).into(),
                management_state: if r.error.is_empty() {
                    "available"
                } else {
                    "unavailable"
                }
                .into(),
                error: r.error.clone(),
                supported_power_transitions: supported.clone(),
                last_updated: rfc3339(r.updated),
                xname: x,
            },
            None => PowerStatus {
                power_state: "undefined".into(),
                management_state: "unavailable".into(),
                error: "no power state reported by the site's agent yet \
                        (skyport power status --refresh asks for one)"
                    .into(),
                supported_power_transitions: Vec::new(),
                last_updated: String::new(),
                xname: x,
            },
        })
        .filter(|s| f.power.is_none_or(|p| p == s.power_state))
        .filter(|s| f.management.is_none_or(|m| m == s.management_state))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_259_600), "2026-12-03T01:00:00Z");
    }

    #[test]
    fn filters_take_pcs_words_and_refuse_others() {
        assert!(Filter::new("POWERINGON", "Available").is_ok());
        let e = Filter::new("sideways", "").unwrap_err();
        assert_eq!(e.to_string(), "invalid powerStateFilter type: sideways");
    }
}
