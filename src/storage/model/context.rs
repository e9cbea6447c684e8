//! What a task is: [`TaskType`], [`TaskContext`] and [`ComplexityLevel`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of work an episode records. Serialized, displayed and stored in snake case
/// (`code_generation`, `debugging`, ...).
///
/// ```
/// use memory_storage_turso::storage::TaskType;
///
/// assert_eq!(TaskType::CodeGeneration.to_string(), "code_generation");
/// assert_eq!("debugging".parse::<TaskType>().unwrap(), TaskType::Debugging);
/// assert_eq!(serde_json::to_string(&TaskType::Other).unwrap(), r#""other""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskType {
    /// Writing new code or features.
    CodeGeneration,
    /// Finding and fixing bugs.
    Debugging,
    /// Restructuring existing code.
    Refactoring,
    /// Writing or running tests.
    Testing,
    /// Analysing code, data or behaviour.
    Analysis,
    /// Writing documentation.
    Documentation,
    /// Anything else.
    Other,
}

impl TaskType {
    /// Every task type, in declaration order.
    pub const ALL: [TaskType; 7] = [
        TaskType::CodeGeneration,
        TaskType::Debugging,
        TaskType::Refactoring,
        TaskType::Testing,
        TaskType::Analysis,
        TaskType::Documentation,
        TaskType::Other,
    ];

    /// The snake-case name, as serialized and stored in the `task_type` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskType::CodeGeneration => "code_generation",
            TaskType::Debugging => "debugging",
            TaskType::Refactoring => "refactoring",
            TaskType::Testing => "testing",
            TaskType::Analysis => "analysis",
            TaskType::Documentation => "documentation",
            TaskType::Other => "other",
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`TaskType`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown task type {0:?}: expected one of code_generation, debugging, refactoring, testing, \
     analysis, documentation or other"
)]
pub struct UnknownTaskType(pub String);

impl FromStr for TaskType {
    type Err = UnknownTaskType;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        TaskType::ALL
            .into_iter()
            .find(|task_type| task_type.as_str() == name)
            .ok_or_else(|| UnknownTaskType(name.to_owned()))
    }
}

/// How hard a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComplexityLevel {
    /// A single, straightforward step.
    Simple,
    /// Several steps or considerations (the default).
    #[default]
    Moderate,
    /// Many steps, dependencies and edge cases.
    Complex,
}

/// Where a task happens: language, framework, domain and tags. Episodes are queried by `domain` and
/// `language`, which the schema keeps in their own indexed columns.
///
/// The default is a moderate task in the `general` domain, with no language, framework or tags.
///
/// ```
/// use memory_storage_turso::storage::{ComplexityLevel, TaskContext};
///
/// let context = TaskContext {
///     language: Some("rust".into()),
///     domain: "web-api".into(),
///     ..TaskContext::default()
/// };
/// assert_eq!(context.complexity, ComplexityLevel::Moderate);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TaskContext {
    /// Programming language, such as `rust`.
    pub language: Option<String>,
    /// Framework or main library, such as `tokio`.
    pub framework: Option<String>,
    /// How hard the task is.
    pub complexity: ComplexityLevel,
    /// Domain or area, such as `web-api`.
    pub domain: String,
    /// Free-form tags.
    pub tags: Vec<String>,
}

impl Default for TaskContext {
    fn default() -> Self {
        TaskContext {
            language: None,
            framework: None,
            complexity: ComplexityLevel::Moderate,
            domain: "general".to_owned(),
            tags: Vec::new(),
        }
    }
}
