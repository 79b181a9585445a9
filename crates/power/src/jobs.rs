//! Jobs: what an admin asked to be done to hardware, addressed to the sites that own it, and
//! what each site's agent reported back. The cloud never reaches a BMC; an agent picks up its
//! site's open tasks with its site token, runs them with the credentials only it holds, and
//! sends results (through its outbox) that this module applies.
//!
//! | table | id | lookups | uniques |
//! |---|---|---|---|
//! | `Jobs` | job id (a UUID, PCS's `transitionID`) | | |
//! | `JobTasks` | `<job>/<xname>` | `job`; `open` = the site (`-` for none) while not final | `busy` = xname while not final (power and boot jobs) |
//! | `PowerStatus` | xname | | |
//!
//! One record per task, so agents of different sites (and results of different nodes) never
//! contend for one item, and the `busy` unique key makes "no two operations on one node" an
//! atomic property of the create itself. A task moves `pending → running → final` and never
//! back: a result for a final task is ignored, so an agent that resends after a lost answer
//! changes nothing. A task not started by its job's `start_by` expires (on the agent's next
//! poll, and in every view at once); jobs are deleted a day after creation, as PCS does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use skyport_model::Xname;
use skyport_model::power::{BootTarget, Operation, PowerState};
use skyport_sites::Ownership;
use skyport_store::{IndexKey, Record, Store, StoreError, Table, Write};

use crate::error::JobError;

pub const JOBS: Table = Table("Jobs");
pub const JOB_TASKS: Table = Table("JobTasks");
pub const POWER_STATUS: Table = Table("PowerStatus");

/// Jobs are deleted this long after creation (PCS keeps transitions 24 hours).
pub const KEEP_S: i64 = 24 * 3600;
/// Most targets in one job: a whole large site, and a bounded batch of writes.
pub const MAX_TARGETS: usize = 10_000;
/// Most results in one report from an agent.
pub const MAX_RESULTS: usize = 10_000;
/// How long a job's tasks may wait for their site's agent before they expire, unless asked.
pub const DEFAULT_START_WITHIN_S: i64 = 3600;
/// How long each task waits for the state it asked for unless asked (PCS's default 5 minutes).
pub const DEFAULT_SETTLE_S: u64 = 300;
/// The longest wait a task gets, also for PCS's "as long as it takes" (-1).
pub const MAX_SETTLE_S: u64 = 3600;
/// How long after its job's deadline a pending task is expired in the cloud. The agent starts
/// nothing after the deadline and reports a start at once, so by then a task the agent did
/// start reads `running`: the cloud never frees a node an agent is acting on.
pub const EXPIRY_GRACE_S: i64 = 120;
/// Longest text kept from an agent's detail or error.
const MAX_TEXT: usize = 500;
/// Write races a job operation recomputes before it gives up (a 503).
const MAX_ATTEMPTS: u32 = 8;

const JOB_KEY: &str = "job";
const OPEN_KEY: &str = "open";
const BUSY_KEY: &str = "busy";
/// The `open` value of tasks no site owns: agents serving the whole installation take them.
const NO_SITE: &str = "-";

/// What a job does to each of its targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// A PCS operation, after setting the next boot when `boot` says so.
    Power {
        operation: Operation,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        boot: Option<BootTarget>,
    },
    /// Only the one-time boot override.
    Boot { target: BootTarget },
    /// Read power state and boot override.
    Status,
    /// Crawl the BMC named by the target again and send what it reports to the inventory
    /// (SMD's `Inventory/Discover`): the target is a RedfishEndpoint, not a node.
    Discover,
    /// An action this build does not know (a newer cloud's, read by an older agent): the agent
    /// reports its tasks unsupported instead of failing to read its whole job list. Never
    /// created: [`Jobs::create`] refuses it.
    #[serde(other)]
    Unknown,
}

impl Action {
    /// Whether the job holds its nodes (no second job on them while it runs). Reading status
    /// holds nothing.
    pub fn holds_nodes(self) -> bool {
        !matches!(self, Action::Status | Action::Discover | Action::Unknown)
    }

    /// Whether running it again after an interruption is harmless.
    pub fn repeatable(self) -> bool {
        match self {
            Action::Power { operation, .. } => operation.repeatable(),
            Action::Boot { .. } | Action::Status | Action::Discover | Action::Unknown => true,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Power {
                operation,
                boot: None,
            } => write!(f, "power {operation}"),
            Action::Power {
                operation,
                boot: Some(b),
            } => write!(f, "power {operation} (boot {})", b.as_str()),
            Action::Boot { target } => write!(f, "boot override {}", target.as_str()),
            Action::Status => f.write_str("power status"),
            Action::Discover => f.write_str("discover"),
            Action::Unknown => f.write_str("unknown action"),
        }
    }
}

/// Where one target of a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Running,
    Succeeded,
    Failed,
    /// The BMC offers no way to do it.
    Unsupported,
    /// Not started before the job's deadline (its site's agent was away).
    Expired,
    /// Cancelled before it started.
    Aborted,
}

impl TaskState {
    pub fn is_final(self) -> bool {
        !matches!(self, TaskState::Pending | TaskState::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Pending => "pending",
            TaskState::Running => "running",
            TaskState::Succeeded => "succeeded",
            TaskState::Failed => "failed",
            TaskState::Unsupported => "unsupported",
            TaskState::Expired => "expired",
            TaskState::Aborted => "aborted",
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub action: Action,
    /// Unix seconds.
    pub created: i64,
    /// Tasks not started by then expire.
    pub start_by: i64,
    /// How long each task waits for its state, in seconds (0: not at all).
    pub settle_s: u64,
    #[serde(default)]
    pub aborted: bool,
    /// Who asked (the token's subject).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
}

/// One target of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub job: String,
    pub xname: String,
    /// The site whose agent runs it; `None` for xnames no site owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// The power state the BMC reported last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerState>,
    /// Unix seconds of the last change.
    pub updated: i64,
}

/// A job's overall state, from its tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Done,
    Failed,
    Expired,
    Aborted,
}

/// A job with its tasks as they are now (pending tasks past the deadline read as expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    #[serde(flatten)]
    pub job: Job,
    pub state: JobState,
    pub tasks: Vec<Task>,
}

impl JobView {
    fn new(job: Job, mut tasks: Vec<Task>, now: i64, grace_s: i64) -> Self {
        for t in &mut tasks {
            if t.state == TaskState::Pending && now > job.start_by + grace_s {
                t.state = TaskState::Expired;
                t.detail = expired_detail();
            }
        }
        tasks.sort_by(|a, b| a.xname.cmp(&b.xname));
        let state = if tasks.iter().all(|t| t.state == TaskState::Pending) {
            JobState::Pending
        } else if tasks.iter().any(|t| !t.state.is_final()) {
            JobState::Running
        } else if job.aborted {
            JobState::Aborted
        } else if tasks.iter().all(|t| t.state == TaskState::Succeeded) {
            JobState::Done
        } else if tasks.iter().all(|t| t.state == TaskState::Expired) {
            JobState::Expired
        } else {
            JobState::Failed
        };
        JobView { job, state, tasks }
    }

    /// Tasks in each state.
    pub fn counts(&self) -> BTreeMap<TaskState, usize> {
        let mut m = BTreeMap::new();
        for t in &self.tasks {
            *m.entry(t.state).or_default() += 1;
        }
        m
    }
}

fn expired_detail() -> String {
    "not started before the job's deadline: the site's agent did not pick it up".into()
}

/// What an agent reports for one task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    pub job: String,
    pub xname: String,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerState>,
}

/// An agent's report: `POST /edge/v1/jobs/results`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Results {
    pub results: Vec<TaskResult>,
}

/// What a report changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    /// Results that moved a task.
    pub applied: usize,
    /// Results for tasks already final, or no longer stored: sent before, or too late.
    pub ignored: usize,
    /// The power states reported, by xname (for the inventory and the status table).
    #[serde(skip)]
    pub power: Vec<(String, PowerState)>,
}

/// A job's open tasks for one site, as its agent gets them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub job: Job,
    pub xnames: Vec<String>,
}

/// `GET /edge/v1/jobs` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignments {
    pub jobs: Vec<Assignment>,
}

/// The last power state a BMC reported for a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRecord {
    pub xname: String,
    pub power: PowerState,
    /// Unix seconds.
    pub updated: i64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// How a job is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub action: Action,
    pub xnames: Vec<String>,
    /// Seconds the tasks may wait for their agent.
    pub start_within_s: i64,
    pub settle_s: u64,
    pub created_by: String,
}

fn task_id(job: &str, xname: &str) -> String {
    format!("{job}/{xname}")
}

fn site_key(site: Option<&str>) -> String {
    site.unwrap_or(NO_SITE).to_string()
}

fn clip(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

fn encode<T: Serialize>(table: Table, id: &str, v: &T) -> Result<String, JobError> {
    serde_json::to_string(v).map_err(|e| JobError::Corrupt {
        table: table.name(),
        id: id.to_string(),
        reason: e.to_string(),
    })
}

fn decode<T: serde::de::DeserializeOwned>(table: Table, r: &Record) -> Result<T, JobError> {
    serde_json::from_str(&r.body).map_err(|e| JobError::Corrupt {
        table: table.name(),
        id: r.id.clone(),
        reason: e.to_string(),
    })
}

fn task_record(t: &Task, holds: bool) -> Result<Record, JobError> {
    let id = task_id(&t.job, &t.xname);
    let mut r = Record::new(id.clone(), encode(JOB_TASKS, &id, t)?).with_lookup(JOB_KEY, &t.job);
    if !t.state.is_final() {
        r = r.with_lookup(OPEN_KEY, site_key(t.site.as_deref()));
        if holds {
            r = r.with_unique(BUSY_KEY, &t.xname);
        }
    }
    Ok(r)
}

fn job_record(j: &Job) -> Result<Record, JobError> {
    Ok(Record::new(j.id.clone(), encode(JOBS, &j.id, j)?))
}

/// A random (version 4) UUID, PCS's transition id format.
fn new_id() -> Result<String, JobError> {
    skyport_model::random_uuid().map_err(|e| JobError::Internal(format!("no randomness: {e}")))
}

/// Runs `attempt` again while it loses write races, with jittered backoff.
async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, JobError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, JobError>>,
{
    let backoff = skyport_model::Backoff::new(Duration::from_millis(2), Duration::from_millis(200));
    let mut n = 0;
    loop {
        match attempt().await {
            Err(JobError::Store(e @ StoreError::Conflict { .. })) if n + 1 < MAX_ATTEMPTS => {
                n += 1;
                tracing::debug!(attempt = n, error = %e, "job write race lost; recomputing");
                tokio::time::sleep(backoff.jittered(n)).await;
            }
            other => return other,
        }
    }
}

/// The jobs service over a store.
#[derive(Clone)]
pub struct Jobs {
    store: Arc<dyn Store>,
    grace_s: i64,
}

impl Jobs {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            grace_s: EXPIRY_GRACE_S,
        }
    }

    /// Another grace than [`EXPIRY_GRACE_S`] after a deadline (tests set 0).
    pub fn with_expiry_grace(mut self, seconds: i64) -> Self {
        self.grace_s = seconds.max(0);
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Stores a job with one pending task per target, each addressed to the site owning it.
    /// Fails whole: a bad xname is a 400 naming it, a node another open job holds a 409 naming
    /// that job.
    pub async fn create(&self, new: NewJob) -> Result<JobView, JobError> {
        if new.xnames.is_empty() {
            return Err(JobError::Invalid(
                "no targets: name at least one xname".into(),
            ));
        }
        if new.action == Action::Unknown {
            return Err(JobError::Invalid(
                "unknown action kind: use power, boot, status or discover".into(),
            ));
        }
        if new.xnames.len() > MAX_TARGETS {
            return Err(JobError::Invalid(format!(
                "{} targets: at most {MAX_TARGETS} in one request",
                new.xnames.len()
            )));
        }
        let mut xnames = BTreeSet::new();
        for x in &new.xnames {
            let parsed = Xname::parse(x)
                .map_err(|e| JobError::Invalid(format!("invalid xname {x:?}: {e}")))?;
            xnames.insert(parsed.to_string());
        }
        let owners = Ownership::load(self.store.as_ref()).await?;
        let now = skyport_model::now();
        let job = Job {
            id: new_id()?,
            action: new.action,
            created: now,
            start_by: now + new.start_within_s.clamp(0, KEEP_S),
            settle_s: new.settle_s.min(MAX_SETTLE_S),
            aborted: false,
            created_by: new.created_by,
        };
        let holds = job.action.holds_nodes();
        let mut tasks = Vec::with_capacity(xnames.len());
        let mut ops = vec![Write::Put {
            table: JOBS,
            record: job_record(&job)?,
            prev: None,
        }];
        for x in xnames {
            let t = Task {
                job: job.id.clone(),
                site: owners.site_of(&x).map(str::to_string),
                xname: x,
                state: TaskState::Pending,
                detail: String::new(),
                error: String::new(),
                power: None,
                updated: now,
            };
            ops.push(Write::Put {
                table: JOB_TASKS,
                record: task_record(&t, holds)?,
                prev: None,
            });
            tasks.push(t);
        }
        let busy = |e: StoreError| match e {
            StoreError::Duplicate { key, owner } if key.name == BUSY_KEY => JobError::Busy {
                job: owner
                    .split_once('/')
                    .and_then(|(_, id)| id.rsplit_once('/'))
                    .map_or(owner.clone(), |(job, _)| job.to_string()),
                xname: key.value,
            },
            e => JobError::Store(e),
        };
        match self.store.write(ops.clone()).await.map_err(busy) {
            // The holder may be a task past its deadline that no agent polled for since: it is
            // expired now, and the job is tried once more.
            Err(JobError::Busy { job, .. }) if self.expire_stale(&job).await? => {
                self.store.write(ops).await.map_err(busy)?;
            }
            other => other?,
        }
        tracing::info!(job = %job.id, action = %job.action, targets = tasks.len(), "job created");
        Ok(JobView::new(job, tasks, now, self.grace_s))
    }

    async fn tasks_of(&self, id: &str) -> Result<Vec<(Record, Task)>, JobError> {
        let key = IndexKey::new(JOB_KEY, id);
        self.store
            .list_all(JOB_TASKS, Some(&key))
            .await?
            .into_iter()
            .map(|r| decode(JOB_TASKS, &r).map(|t| (r, t)))
            .collect()
    }

    async fn job(&self, id: &str) -> Result<(Record, Job), JobError> {
        let r = self.store.get(JOBS, id).await?.ok_or(JobError::NotFound)?;
        let j = decode(JOBS, &r)?;
        Ok((r, j))
    }

    pub async fn get(&self, id: &str) -> Result<JobView, JobError> {
        let (_, job) = self.job(id).await?;
        let tasks = self
            .tasks_of(id)
            .await?
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        Ok(JobView::new(job, tasks, skyport_model::now(), self.grace_s))
    }

    /// Every job kept, newest first; jobs older than [`KEEP_S`] are deleted on the way.
    pub async fn list(&self) -> Result<Vec<JobView>, JobError> {
        let now = skyport_model::now();
        let mut tasks: BTreeMap<String, Vec<(Record, Task)>> = BTreeMap::new();
        for r in self.store.list_all(JOB_TASKS, None).await? {
            let t: Task = decode(JOB_TASKS, &r)?;
            tasks.entry(t.job.clone()).or_default().push((r, t));
        }
        let mut out = Vec::new();
        for r in self.store.list_all(JOBS, None).await? {
            let job: Job = decode(JOBS, &r)?;
            let mine = tasks.remove(&job.id).unwrap_or_default();
            if job.created + KEEP_S < now {
                self.forget(r, mine).await;
                continue;
            }
            out.push(JobView::new(
                job,
                mine.into_iter().map(|(_, t)| t).collect(),
                now,
                self.grace_s,
            ));
        }
        out.sort_by(|a, b| (b.job.created, &b.job.id).cmp(&(a.job.created, &a.job.id)));
        Ok(out)
    }

    /// Deletes an old job; a failure is logged and retried by the next listing.
    async fn forget(&self, job: Record, tasks: Vec<(Record, Task)>) {
        let id = job.id.clone();
        let mut recs: Vec<Record> = tasks.into_iter().map(|(r, _)| r).collect();
        recs.push(job);
        let mut ops: Vec<Write> = Vec::new();
        for r in recs {
            let table = if r.id == id { JOBS } else { JOB_TASKS };
            ops.push(Write::Delete { table, prev: r });
        }
        if let Err(e) = self.store.write(ops).await {
            tracing::warn!(job = %id, error = %e, "could not delete an expired job");
        }
    }

    /// Cancels what has not started: the job is marked aborted and its pending tasks end
    /// `aborted`; tasks an agent is running finish (a BMC call in flight cannot be recalled).
    pub async fn abort(&self, id: &str) -> Result<JobView, JobError> {
        retrying(|| async {
            let (jr, mut job) = self.job(id).await?;
            let tasks = self.tasks_of(id).await?;
            let now = skyport_model::now();
            let view = JobView::new(
                job.clone(),
                tasks.iter().map(|(_, t)| t.clone()).collect(),
                now,
                self.grace_s,
            );
            if view.tasks.iter().all(|t| t.state.is_final()) {
                // What only reads as expired is written so, freeing its nodes.
                self.expire_stale(id).await?;
                return Err(JobError::Finished);
            }
            let holds = job.action.holds_nodes();
            job.aborted = true;
            let mut ops = vec![Write::Put {
                table: JOBS,
                record: job_record(&job)?,
                prev: Some(jr),
            }];
            for (r, mut t) in tasks {
                if t.state == TaskState::Pending {
                    t.state = TaskState::Aborted;
                    t.detail = "cancelled before it started".into();
                    t.updated = now;
                    ops.push(Write::Put {
                        table: JOB_TASKS,
                        record: task_record(&t, holds)?,
                        prev: Some(r),
                    });
                }
            }
            self.store.write(ops).await?;
            self.get(id).await
        })
        .await
    }

    /// Writes out the expiry of job `id`'s pending tasks past their deadline (and its grace);
    /// whether any was.
    async fn expire_stale(&self, id: &str) -> Result<bool, JobError> {
        let (_, job) = match self.job(id).await {
            Ok(j) => j,
            Err(JobError::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        let now = skyport_model::now();
        if now <= job.start_by + self.grace_s {
            return Ok(false);
        }
        let holds = job.action.holds_nodes();
        let mut ops = Vec::new();
        for (r, mut t) in self.tasks_of(id).await? {
            if t.state == TaskState::Pending {
                t.state = TaskState::Expired;
                t.detail = expired_detail();
                t.updated = now;
                ops.push(Write::Put {
                    table: JOB_TASKS,
                    record: task_record(&t, holds)?,
                    prev: Some(r),
                });
            }
        }
        if ops.is_empty() {
            return Ok(false);
        }
        self.store.write(ops).await?;
        Ok(true)
    }

    /// The open tasks of `site`'s agent (`None`: tasks no site owns), by job. Pending tasks past
    /// their job's deadline are expired here, and not handed out.
    pub async fn assigned(&self, site: Option<&str>) -> Result<Assignments, JobError> {
        let key = IndexKey::new(OPEN_KEY, site_key(site));
        let mut by_job: BTreeMap<String, Vec<(Record, Task)>> = BTreeMap::new();
        for r in self.store.list_all(JOB_TASKS, Some(&key)).await? {
            let t: Task = decode(JOB_TASKS, &r)?;
            by_job.entry(t.job.clone()).or_default().push((r, t));
        }
        if by_job.is_empty() {
            return Ok(Assignments::default());
        }
        let ids: Vec<String> = by_job.keys().cloned().collect();
        let jobs: BTreeMap<String, Job> = self
            .store
            .get_many(JOBS, &ids)
            .await?
            .iter()
            .map(|r| decode::<Job>(JOBS, r).map(|j| (j.id.clone(), j)))
            .collect::<Result<_, _>>()?;
        let now = skyport_model::now();
        let mut out = Assignments::default();
        let mut expire = Vec::new();
        for (id, tasks) in by_job {
            let Some(job) = jobs.get(&id) else {
                continue;
            };
            let mut xnames = Vec::new();
            for (r, t) in tasks {
                if t.state == TaskState::Pending && now > job.start_by + self.grace_s {
                    expire.push((r, t, job.action.holds_nodes()));
                } else if !(job.aborted && t.state == TaskState::Pending) {
                    xnames.push(t.xname);
                }
            }
            if !xnames.is_empty() {
                out.jobs.push(Assignment {
                    job: job.clone(),
                    xnames,
                });
            }
        }
        if !expire.is_empty() {
            let mut ops = Vec::new();
            for (r, mut t, holds) in expire {
                t.state = TaskState::Expired;
                t.detail = expired_detail();
                t.updated = now;
                ops.push(Write::Put {
                    table: JOB_TASKS,
                    record: task_record(&t, holds)?,
                    prev: Some(r),
                });
            }
            // A lost race means someone else moved these tasks; the next poll sees that.
            if let Err(e) = self.store.write(ops).await {
                tracing::debug!(site = site.unwrap_or(NO_SITE), error = %e, "expiring tasks");
            }
        }
        out.jobs
            .sort_by(|a, b| (a.job.created, &a.job.id).cmp(&(b.job.created, &b.job.id)));
        Ok(out)
    }

    /// Applies an agent's results. `site` is the token's site: a result for another site's
    /// task refuses the whole report (blind); `None` (an admin, or an agent of the whole
    /// installation) may report for any task.
    pub async fn record(
        &self,
        site: Option<&str>,
        results: &[TaskResult],
    ) -> Result<Recorded, JobError> {
        if results.len() > MAX_RESULTS {
            return Err(JobError::Invalid(format!(
                "{} results: at most {MAX_RESULTS} in one report",
                results.len()
            )));
        }
        if let Some(r) = results.iter().find(|r| r.state == TaskState::Pending) {
            return Err(JobError::Invalid(format!(
                "{}/{}: a result cannot make a task pending",
                r.job, r.xname
            )));
        }
        // The last result sent for a task wins within one report.
        let mut latest: BTreeMap<String, &TaskResult> = BTreeMap::new();
        for r in results {
            latest.insert(task_id(&r.job, &r.xname), r);
        }
        let ids: Vec<String> = latest.keys().cloned().collect();
        let recorded = retrying(|| async {
            let stored = self.store.get_many(JOB_TASKS, &ids).await?;
            let job_ids: BTreeSet<String> = latest.values().map(|r| r.job.clone()).collect();
            let job_ids: Vec<String> = job_ids.into_iter().collect();
            let holds: BTreeMap<String, bool> = self
                .store
                .get_many(JOBS, &job_ids)
                .await?
                .iter()
                .map(|r| decode::<Job>(JOBS, r).map(|j| (j.id, j.action.holds_nodes())))
                .collect::<Result<_, _>>()?;
            let now = skyport_model::now();
            let mut rec = Recorded::default();
            let mut ops = Vec::new();
            for r in stored {
                let mut t: Task = decode(JOB_TASKS, &r)?;
                if let Some(s) = site
                    && t.site.as_deref() != Some(s)
                {
                    tracing::warn!(site = s, job = %t.job, xname = %t.xname, owner = ?t.site,
                        "a site's agent reported for another site's task");
                    return Err(JobError::Refused);
                }
                let Some(res) = latest.get(&r.id) else {
                    continue;
                };
                // Forward only: pending → running → final; a final task never moves again.
                let moves = match t.state {
                    TaskState::Pending => true,
                    TaskState::Running => res.state != TaskState::Running,
                    _ => false,
                };
                // Only news counts as the node's state: a resent or late result is old.
                if moves && let Some(p) = res.power {
                    rec.power.retain(|(x, _)| *x != t.xname);
                    rec.power.push((t.xname.clone(), p));
                }
                if !moves {
                    rec.ignored += 1;
                    continue;
                }
                t.state = res.state;
                t.detail = clip(&res.detail);
                t.error = clip(&res.error);
                t.power = res.power.or(t.power);
                t.updated = now;
                rec.applied += 1;
                ops.push(Write::Put {
                    table: JOB_TASKS,
                    record: task_record(&t, holds.get(&t.job).copied().unwrap_or(true))?,
                    prev: Some(r),
                });
            }
            rec.ignored += ids.len() - rec.applied - rec.ignored;
            if !ops.is_empty() {
                self.store.write(ops).await?;
            }
            Ok(rec)
        })
        .await?;
        self.remember_power(&recorded.power, results).await;
        Ok(recorded)
    }

    /// Keeps the last reported power state per node (a fact about now: last writer wins).
    async fn remember_power(&self, power: &[(String, PowerState)], results: &[TaskResult]) {
        if power.is_empty() {
            return;
        }
        let now = skyport_model::now();
        let mut ops = Vec::new();
        for (x, p) in power {
            let error = results
                .iter()
                .rev()
                .find(|r| &r.xname == x)
                .map(|r| clip(&r.error))
                .unwrap_or_default();
            let s = StatusRecord {
                xname: x.clone(),
                power: *p,
                updated: now,
                error,
            };
            match encode(POWER_STATUS, x, &s) {
                Ok(body) => ops.push(Write::Upsert {
                    table: POWER_STATUS,
                    record: Record::new(x.clone(), body),
                }),
                Err(e) => tracing::warn!(xname = %x, error = %e, "power status not kept"),
            }
        }
        if let Err(e) = self.store.write(ops).await {
            tracing::warn!(error = %e, "power status not kept");
        }
    }

    /// The last reported power state of `xnames` (all kept, when `None`).
    pub async fn power_status(
        &self,
        xnames: Option<&[String]>,
    ) -> Result<Vec<StatusRecord>, JobError> {
        let recs = match xnames {
            Some(x) => self.store.get_many(POWER_STATUS, x).await?,
            None => self.store.list_all(POWER_STATUS, None).await?,
        };
        recs.iter().map(|r| decode(POWER_STATUS, r)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn ids_are_version_4_uuids() {
        let id = new_id().unwrap();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_id().unwrap());
    }

    #[test]
    fn an_action_of_a_newer_cloud_reads_as_unknown() {
        let a: Assignments = serde_json::from_value(serde_json::json!({"jobs": [
            {"job": {"id": "j", "action": {"kind": "firmware", "image": "x"}, "created": 1,
                     "start_by": 2, "settle_s": 0}, "xnames": ["x1c0s0b0"]},
            {"job": {"id": "k", "action": {"kind": "discover"}, "created": 1,
                     "start_by": 2, "settle_s": 0}, "xnames": ["x1c0s1b0"]},
        ]}))
        .unwrap();
        assert_eq!(a.jobs[0].job.action, Action::Unknown);
        assert_eq!(a.jobs[1].job.action, Action::Discover);
    }

    #[tokio::test]
    async fn an_unknown_action_is_never_created() {
        let dir = tempfile::tempdir().unwrap();
        let store = skyport_store_sqlite::SqliteStore::open(dir.path().join("t.db")).unwrap();
        let jobs = Jobs::new(Arc::new(store));
        let e = jobs
            .create(NewJob {
                action: Action::Unknown,
                xnames: vec!["x1c0s0b0n0".into()],
                start_within_s: 60,
                settle_s: 0,
                created_by: String::new(),
            })
            .await
            .unwrap_err();
        assert!(matches!(e, JobError::Invalid(_)), "{e}");
    }

    #[test]
    fn a_job_reads_as_its_tasks_say() {
        let job = Job {
            id: "j".into(),
            action: Action::Status,
            created: 100,
            start_by: 200,
            settle_s: 0,
            aborted: false,
            created_by: String::new(),
        };
        let task = |x: &str, state| Task {
            job: "j".into(),
            xname: x.into(),
            site: None,
            state,
            detail: String::new(),
            error: String::new(),
            power: None,
            updated: 100,
        };
        let v = JobView::new(job.clone(), vec![task("a", TaskState::Pending)], 150, 0);
        assert_eq!(v.state, JobState::Pending);
        let v = JobView::new(job.clone(), vec![task("a", TaskState::Pending)], 201, 0);
        assert_eq!(
            (v.state, v.tasks[0].state),
            (JobState::Expired, TaskState::Expired)
        );
        let v = JobView::new(
            job.clone(),
            vec![
                task("a", TaskState::Succeeded),
                task("b", TaskState::Running),
            ],
            150,
            0,
        );
        assert_eq!(v.state, JobState::Running);
        let v = JobView::new(
            job,
            vec![
                task("a", TaskState::Succeeded),
                task("b", TaskState::Failed),
            ],
            150,
            0,
        );
        assert_eq!(v.state, JobState::Failed);
    }
}
