//! [`ProcessTask`]: the next processing attempt of a received webhook — what a
//! [`Task::Process`](super::Task::Process) carries.

use serde::{Deserialize, Serialize};

use crate::id::InboxId;

/// The next processing attempt of one [`Inbox`](crate::inbox::Inbox) entry. Only the id
/// travels: the body stays in the inbox, stored once.
///
/// ```
/// use fastapihooks_core::{InboxId, backend::{ProcessTask, Task}};
/// let task = Task::from(ProcessTask::new(InboxId::new()).with_attempts(1));
/// let json = serde_json::to_string(&task).unwrap();
/// assert!(json.starts_with(r#"{"type":"process","inbox_id":"inb_"#), "{json}");
/// assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), task);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessTask {
    inbox_id: InboxId,
    #[serde(default)]
    attempts: u32,
}

impl ProcessTask {
    /// The first attempt (of a run) of entry `inbox_id`.
    pub fn new(inbox_id: InboxId) -> Self {
        Self {
            inbox_id,
            attempts: 0,
        }
    }

    /// The same entry with `attempts` attempts of this run already made.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The entry to process.
    pub fn inbox_id(&self) -> &InboxId {
        &self.inbox_id
    }

    /// Attempts of this run already made (a replay starts a new run at 0): what the retry
    /// policy counts.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl From<ProcessTask> for super::Task {
    fn from(task: ProcessTask) -> Self {
        super::Task::Process(task)
    }
}
