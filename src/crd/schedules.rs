//! `spec.schedules[]`: timers out of the web process, as CronJobs of the
//! app's own image, so a job runs once per schedule instead of once per
//! replica (or not at all when the replica that kept the timer is gone).
//! The CronJobs are built by [`crate::build::cronjob`].

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::KubeSchema;
use kube::core::Rule;
use serde::{Deserialize, Serialize};

/// Longest CronJob name: its Jobs add 11 characters to it, and a Job's name
/// (a label value on its pods) may have 63. The CronJob is
/// `<app>-<schedule>`, so app and schedule name together have at most 51.
pub const MAX_CRONJOB_NAME_LENGTH: usize = 52;

/// The CRD rule (on the whole object: it needs `metadata.name`) that keeps
/// every `<app>-<schedule>` within [`MAX_CRONJOB_NAME_LENGTH`].
pub fn name_length_rule() -> Rule {
    let limit = MAX_CRONJOB_NAME_LENGTH - 1;
    Rule::new(format!(
        "!has(self.spec.schedules) || self.spec.schedules.all(s, self.metadata.name.size() + s.name.size() <= {limit})"
    ))
    .message(format!(
        "metadata.name and a schedules[].name together must be at most {limit} characters: the CronJob is named <app>-<schedule> and its Jobs add 11 more, within the 63 of a label value; shorten the schedule's name"
    ).as_str())
}

/// One scheduled job of the app.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Name of the schedule, a DNS label; the CronJob is `<app>-<name>`.
    #[schemars(
        length(min = 1, max = 30),
        regex(pattern = r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    )]
    pub name: String,

    /// When to run, in cron syntax (minute hour day-of-month month day-of-week, or @hourly, @daily, ...), e.g. `*/15 * * * *`. The time zone goes in timeZone, not in here.
    #[schemars(length(min = 1, max = 100))]
    #[x_kube(
        validation = Rule::new(r"self.startsWith('@') || self.trim().matches('^\\S+(\\s+\\S+){4}$')").message("schedules[].schedule must have five fields (minute hour day-of-month month day-of-week), e.g. '*/15 * * * *', or be a macro such as @hourly or @daily"),
        validation = Rule::new("!self.contains('TZ=')").message("schedules[].schedule must not set CRON_TZ or TZ: put the time zone in schedules[].timeZone")
    )]
    pub schedule: String,

    /// Time zone of the schedule (an IANA name such as Europe/Berlin); unset uses the kube-controller-manager's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64))]
    pub time_zone: Option<String>,

    /// Command of the job's container; unset runs the app's command (spec.command, or the image's entrypoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,

    /// Arguments of the job's command; unset takes the app's args, unless `command` is set here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,

    /// What to do when a run is due while the last one still runs: Forbid (the default: skip this run), Replace (stop the old run) or Allow (run both).
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,

    /// Stop scheduling new runs (runs in progress go on).
    #[serde(default)]
    pub suspend: bool,

    /// A run that could not start within this many seconds of its time is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("schedules[].startingDeadlineSeconds must be at least 1"))]
    pub starting_deadline_seconds: Option<i64>,

    /// A run is stopped (and fails) after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 1").message("schedules[].activeDeadlineSeconds must be at least 1"))]
    pub active_deadline_seconds: Option<i64>,

    /// Retries of a failed run before it counts as failed. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0 && self <= 10").message("schedules[].backoffLimit must be between 0 and 10"))]
    pub backoff_limit: Option<i32>,

    /// Resources of the job's container; unset takes the app's (spec.resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Box<ResourceRequirements>>,
}

/// Default of [`ScheduleSpec::backoff_limit`]: one retry, then the run failed.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 1;

/// A CronJob's concurrency policy.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, schemars::JsonSchema,
)]
pub enum ConcurrencyPolicy {
    /// Skip a run while the previous one runs.
    #[default]
    Forbid,
    /// Stop the previous run and start the new one.
    Replace,
    /// Let runs overlap.
    Allow,
}

impl ConcurrencyPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forbid => "Forbid",
            Self::Replace => "Replace",
            Self::Allow => "Allow",
        }
    }
}
