//! The site's end of the command channel: poll the cloud for the site's open tasks
//! (`GET /edge/v1/jobs`, one indexed read per poll), journal each in the agent's store before
//! anything is done, run them staggered ([`Executor`]), and send the results back
//! (`POST /edge/v1/jobs/results`) until the cloud took them.
//!
//! The journal (`EdgeJobs`, one record per task) is what makes a job survive the agent and the
//! cloud: a task is written `queued` when it arrives, `started` before its first BMC call, and
//! `done` with its result, which stays queued for the cloud until acknowledged (the cloud
//! ignores a result it has, so a resend is harmless). When the agent starts, a task left
//! `started` was interrupted: a repeatable one (on, off, boot override, status) runs again; a
//! restart does not (a second reset would reboot a node that came back), and ends `failed`
//! saying so. A task the cloud no longer lists when its turn comes was cancelled or expired
//! there and is not run; one past its job's deadline is not run either, cloud or not.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use skyport_power::{Assignments, Job, Results, TaskResult, TaskState};
use skyport_store::{Record, Store, StoreError, Table, Write};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::cloud::{CALL_TIMEOUT, CloudClient, CloudError, problem_detail};
use crate::hardware::exec::{Executor, Gate, Outcome};

pub const EDGE_JOBS: Table = Table("EdgeJobs");
/// Results sent in one report.
const REPORT_BATCH: usize = 1000;
/// Journal entries are kept this long after their job was created (the cloud keeps jobs a day),
/// so a task listed again by a poll that raced its result is recognised and not run twice.
const KEEP_S: i64 = 26 * 3600;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error("jobs journal: {0}")]
    Store(#[from] StoreError),
    #[error("jobs journal record {id} is unreadable: {reason}")]
    Corrupt { id: String, reason: String },
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("{url}: HTTP {status}: {detail}")]
    Refused {
        url: String,
        status: u16,
        detail: String,
    },
    #[error("{url}: not a job list: {reason}")]
    Garbage { url: String, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Phase {
    Queued,
    Started,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    job: Job,
    xname: String,
    phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<TaskResult>,
    /// The cloud has this entry's latest news (its `running`, or its result).
    #[serde(default)]
    reported: bool,
}

fn id_of(job: &str, xname: &str) -> String {
    format!("{job}/{xname}")
}

/// The journal over the agent's store.
#[derive(Clone)]
pub struct Journal {
    store: Arc<dyn Store>,
}

impl Journal {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    fn decode(r: &Record) -> Result<Entry, JobsError> {
        serde_json::from_str(&r.body).map_err(|e| JobsError::Corrupt {
            id: r.id.clone(),
            reason: e.to_string(),
        })
    }

    fn record(e: &Entry) -> Result<Record, JobsError> {
        let id = id_of(&e.job.id, &e.xname);
        let body = serde_json::to_string(e).map_err(|err| JobsError::Corrupt {
            id: id.clone(),
            reason: err.to_string(),
        })?;
        Ok(Record::new(id, body))
    }

    async fn all(&self) -> Result<Vec<(Record, Entry)>, JobsError> {
        self.store
            .list_all(EDGE_JOBS, None)
            .await?
            .into_iter()
            .map(|r| Self::decode(&r).map(|e| (r, e)))
            .collect()
    }

    /// Replaces one entry with `change` applied. The task and the report loop both write
    /// entries (the loop marks what it sent), so a lost race re-reads and applies again.
    async fn update(
        &self,
        job: &str,
        xname: &str,
        change: impl Fn(&mut Entry),
    ) -> Result<Option<Entry>, JobsError> {
        let mut attempt = 0;
        loop {
            let Some(r) = self.store.get(EDGE_JOBS, &id_of(job, xname)).await? else {
                return Ok(None);
            };
            let mut e = Self::decode(&r)?;
            change(&mut e);
            let w = Write::Put {
                table: EDGE_JOBS,
                record: Self::record(&e)?,
                prev: Some(r),
            };
            match self.store.write(vec![w]).await {
                Ok(()) => return Ok(Some(e)),
                Err(StoreError::Conflict { .. }) if attempt < 8 => attempt += 1,
                Err(err) => return Err(err.into()),
            }
        }
    }

    /// Journals tasks the cloud listed that the journal does not have; how many were new.
    async fn admit(&self, a: &Assignments) -> Result<usize, JobsError> {
        let mut ops = Vec::new();
        for asg in &a.jobs {
            let ids: Vec<String> = asg.xnames.iter().map(|x| id_of(&asg.job.id, x)).collect();
            let have: HashSet<String> = self
                .store
                .get_many(EDGE_JOBS, &ids)
                .await?
                .into_iter()
                .map(|r| r.id)
                .collect();
            for x in &asg.xnames {
                if have.contains(&id_of(&asg.job.id, x)) {
                    continue;
                }
                ops.push(Write::Put {
                    table: EDGE_JOBS,
                    record: Self::record(&Entry {
                        job: asg.job.clone(),
                        xname: x.clone(),
                        phase: Phase::Queued,
                        result: None,
                        reported: true,
                    })?,
                    prev: None,
                });
            }
        }
        let n = ops.len();
        if n > 0 {
            self.store.write(ops).await?;
        }
        Ok(n)
    }

    /// After a restart: tasks left `started` run again if that is harmless, else end failed.
    pub async fn recover(&self) -> Result<(usize, usize), JobsError> {
        let (mut again, mut failed) = (0, 0);
        for (r, mut e) in self.all().await? {
            if e.phase != Phase::Started {
                continue;
            }
            if e.job.action.repeatable() {
                e.phase = Phase::Queued;
                again += 1;
            } else {
                e.phase = Phase::Done;
                e.reported = false;
                e.result = Some(TaskResult {
                    job: e.job.id.clone(),
                    xname: e.xname.clone(),
                    state: TaskState::Failed,
                    detail: String::new(),
                    error: format!(
                        "the agent stopped while this {} was under way; it is not repeated \
                         (a second one could reboot a node that came back): check the node",
                        e.job.action
                    ),
                    power: None,
                });
                failed += 1;
            }
            self.store
                .write(vec![Write::Put {
                    table: EDGE_JOBS,
                    record: Self::record(&e)?,
                    prev: Some(r),
                }])
                .await?;
        }
        Ok((again, failed))
    }

    /// Results and `running` news the cloud does not have yet.
    async fn unreported(&self, limit: usize) -> Result<Vec<(Record, Entry)>, JobsError> {
        Ok(self
            .all()
            .await?
            .into_iter()
            .filter(|(_, e)| !e.reported)
            .take(limit)
            .collect())
    }

    /// Deletes entries of old jobs whose news the cloud has.
    async fn sweep(&self) -> Result<usize, JobsError> {
        let now = skyport_model::now();
        let old: Vec<Record> = self
            .all()
            .await?
            .into_iter()
            .filter(|(_, e)| e.reported && e.phase == Phase::Done && e.job.created + KEEP_S < now)
            .map(|(r, _)| r)
            .collect();
        Ok(skyport_store::delete_in_batches(self.store.as_ref(), EDGE_JOBS, &old, 500).await?)
    }

    /// How many tasks wait to run or be reported.
    pub async fn depth(&self) -> Result<usize, JobsError> {
        Ok(self
            .all()
            .await?
            .iter()
            .filter(|(_, e)| e.phase != Phase::Done || !e.reported)
            .count())
    }
}

/// The journal's side of each task: refuses cancelled and late ones, writes `started` before
/// the first BMC call and the result after the last.
struct JournalGate {
    journal: Journal,
    job: Job,
    /// What the cloud listed as open at its last answered poll, and when that poll was.
    open: Arc<Mutex<Option<BTreeSet<String>>>>,
    wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl Gate for JournalGate {
    async fn start(&self, xname: &str) -> Option<Outcome> {
        if skyport_model::now() > self.job.start_by {
            return Some(Outcome::new(
                xname,
                TaskState::Expired,
                "not started before the job's deadline",
            ));
        }
        let listed = self
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|o| o.contains(&id_of(&self.job.id, xname)));
        if listed == Some(false) {
            return Some(Outcome::new(
                xname,
                TaskState::Aborted,
                "cancelled or expired in the cloud before it started",
            ));
        }
        let started = self
            .journal
            .update(&self.job.id, xname, |e| {
                e.phase = Phase::Started;
                e.reported = false;
            })
            .await;
        match started {
            Ok(Some(_)) => {
                // The cloud hears of the start at once, before it could expire the task.
                self.wake.notify_one();
                None
            }
            Ok(None) => Some(Outcome::new(
                xname,
                TaskState::Aborted,
                "no longer journaled",
            )),
            Err(e) => {
                // Not run: a task whose start cannot be journaled could run twice.
                tracing::error!(xname, job = %self.job.id, error = %e, "task not started");
                Some(Outcome {
                    error: e.to_string(),
                    ..Outcome::new(xname, TaskState::Failed, "")
                })
            }
        }
    }

    async fn done(&self, o: Outcome) {
        let result = TaskResult {
            job: self.job.id.clone(),
            xname: o.xname.clone(),
            state: o.state,
            detail: o.detail.clone(),
            error: o.error.clone(),
            power: o.power,
        };
        let r = self
            .journal
            .update(&self.job.id, &o.xname, |e| {
                e.phase = Phase::Done;
                e.result = Some(result.clone());
                e.reported = false;
            })
            .await;
        if let Err(e) = r {
            tracing::error!(xname = %o.xname, job = %self.job.id, error = %e, "result not journaled");
        }
        tracing::info!(xname = %o.xname, job = %self.job.id, state = o.state.as_str(),
            detail = %o.detail, error = %o.error, "task done");
        self.wake.notify_one();
    }
}

/// The polling, running and reporting loop of a site's agent.
pub struct JobsLoop {
    pub cloud: CloudClient,
    pub journal: Journal,
    pub exec: Executor,
    pub poll: Duration,
    pub depth: Arc<AtomicU64>,
}

impl JobsLoop {
    async fn poll_once(&self) -> Result<Assignments, JobsError> {
        let url = self.cloud.url("/edge/v1/jobs");
        let resp = self
            .cloud
            .execute(&url, |h| h.get(&url).timeout(CALL_TIMEOUT))
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(JobsError::Refused {
                url,
                status: status.as_u16(),
                detail: problem_detail(resp).await,
            });
        }
        let body = resp.bytes().await.map_err(|e| JobsError::Garbage {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        serde_json::from_slice(&body).map_err(|e| JobsError::Garbage {
            url,
            reason: e.to_string(),
        })
    }

    /// Sends what the cloud does not have yet; how many entries it took.
    async fn report_once(&self) -> Result<usize, JobsError> {
        let pending = self.journal.unreported(REPORT_BATCH).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let results: Vec<TaskResult> = pending
            .iter()
            .map(|(_, e)| match &e.result {
                Some(r) => r.clone(),
                None => TaskResult {
                    job: e.job.id.clone(),
                    xname: e.xname.clone(),
                    state: TaskState::Running,
                    detail: String::new(),
                    error: String::new(),
                    power: None,
                },
            })
            .collect();
        let url = self.cloud.url("/edge/v1/jobs/results");
        let body = Results { results };
        let resp = self
            .cloud
            .execute(&url, |h| h.post(&url).json(&body).timeout(CALL_TIMEOUT))
            .await?;
        let status = resp.status();
        if !status.is_success() {
            return Err(JobsError::Refused {
                url,
                status: status.as_u16(),
                detail: problem_detail(resp).await,
            });
        }
        // Marks exactly what was sent: an entry that moved meanwhile is sent again.
        let mut ops = Vec::new();
        for (r, mut e) in pending {
            e.reported = true;
            ops.push(Write::Put {
                table: EDGE_JOBS,
                record: Journal::record(&e)?,
                prev: Some(r),
            });
        }
        let n = ops.len();
        for op in ops {
            match self.journal.store.write(vec![op]).await {
                Ok(()) | Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// Runs until `cancel`: recovers the journal, then polls, runs and reports.
    pub async fn run(&self, cancel: CancellationToken) -> Result<(), JobsError> {
        let (again, failed) = self.journal.recover().await?;
        if again + failed > 0 {
            tracing::warn!(again, failed, "tasks interrupted by a stop of the agent");
        }
        let open = Arc::new(Mutex::new(None::<BTreeSet<String>>));
        let wake = Arc::new(Notify::new());
        let mut running: HashSet<String> = HashSet::new();
        let mut jobs: JoinSet<String> = JoinSet::new();
        let mut run_of: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut failures = 0u32;
        let mut sweeps = 0u32;
        loop {
            // What finished or started is reported before the next poll, so the cloud never
            // decides about a task from news older than the agent's.
            match self.report_once().await {
                Ok(n) if n > 0 => tracing::debug!(results = n, "job results reported"),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "job results not reported yet"),
            }
            match self.poll_once().await {
                Ok(a) => {
                    failures = 0;
                    let listed = a
                        .jobs
                        .iter()
                        .flat_map(|j| j.xnames.iter().map(|x| id_of(&j.job.id, x)))
                        .collect();
                    match self.journal.admit(&a).await {
                        Ok(n) if n > 0 => tracing::info!(tasks = n, "jobs received"),
                        Ok(_) => {}
                        Err(e) => tracing::error!(error = %e, "jobs not journaled"),
                    }
                    *open.lock().unwrap_or_else(|p| p.into_inner()) = Some(listed);
                }
                Err(e) => {
                    failures += 1;
                    // An outage logs its first failure and then every 64th.
                    if failures == 1 || failures.is_multiple_of(64) {
                        tracing::warn!(error = %e, failures, "polling the cloud for jobs");
                    }
                }
            }
            // Start what is queued and not yet running, one staggered run per job.
            match self.journal.all().await {
                Ok(all) => {
                    let mut by_job: BTreeMap<String, (Job, Vec<String>)> = BTreeMap::new();
                    for (_, e) in all {
                        if e.phase == Phase::Queued && !running.contains(&e.job.id) {
                            by_job
                                .entry(e.job.id.clone())
                                .or_insert_with(|| (e.job.clone(), Vec::new()))
                                .1
                                .push(e.xname);
                        }
                    }
                    for (id, (job, xnames)) in by_job {
                        running.insert(id.clone());
                        let gate = Arc::new(JournalGate {
                            journal: self.journal.clone(),
                            job: job.clone(),
                            open: open.clone(),
                            wake: wake.clone(),
                        });
                        let (exec, cancel) = (self.exec.clone(), cancel.clone());
                        let key = id.clone();
                        let handle = jobs.spawn(async move {
                            let settle = Duration::from_secs(job.settle_s);
                            exec.staggered(job.action, xnames, settle, gate, &cancel)
                                .await;
                            id
                        });
                        run_of.insert(handle.id(), key);
                    }
                }
                Err(e) => tracing::error!(error = %e, "reading the jobs journal"),
            }
            while let Some(done) = jobs.try_join_next_with_id() {
                // A run that panicked frees its job too: what it left queued runs again.
                let task = match done {
                    Ok((task, _)) => task,
                    Err(e) => {
                        tracing::error!(error = %e, "a job run ended abnormally");
                        e.id()
                    }
                };
                if let Some(job) = run_of.remove(&task) {
                    running.remove(&job);
                }
            }
            if let Ok(d) = self.journal.depth().await {
                self.depth.store(d as u64, Ordering::Relaxed);
            }
            sweeps += 1;
            if sweeps.is_multiple_of(1000)
                && let Err(e) = self.journal.sweep().await
            {
                tracing::warn!(error = %e, "sweeping the jobs journal");
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(self.poll) => {}
                _ = wake.notified() => {}
            }
        }
        // What finished is reported once more on the way out; the rest stays journaled.
        if let Err(e) = self.report_once().await {
            tracing::debug!(error = %e, "job results left for the next start");
        }
        jobs.abort_all();
        Ok(())
    }
}
