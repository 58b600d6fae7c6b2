//! One error type for the whole crate. Every variant carries enough context
//! (a path, a line, a field) for a user to find what is wrong without a debugger.

use std::path::PathBuf;

/// Everything that can go wrong in Cairn, with the context needed to fix it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A JSON document did not parse or did not have the expected shape.
    #[error("{what}: invalid JSON: {source}")]
    Json {
        /// What was being parsed (usually a path).
        what: String,
        /// The parser's error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The model files are missing something or disagree with each other.
    #[error("model {path}: {message}")]
    Model {
        /// The model directory or file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The tokenizer could not be loaded or failed on an input.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// An index file is missing, corrupt or of an unsupported version.
    #[error("index {what}: {message}")]
    Index {
        /// The index file or directory.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// Input data (a dump, a stdin line) is malformed.
    #[error("{location}: {message}")]
    Input {
        /// Where: file and line/position, or "stdin line N".
        location: String,
        /// What is wrong there.
        message: String,
    },
    /// A lookup by id found nothing.
    #[error("{0}")]
    NotFound(String),
    /// An external command (pip) failed.
    #[error("{0}")]
    External(String),
    /// The GPU backend is unavailable or failed: no adapter, a refused device,
    /// a validation error or a lost device. Callers on `auto` fall back to the CPU.
    #[error("GPU: {0}")]
    Gpu(String),
}

/// Result with Cairn's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// Builds a [`Error::Model`] for `path`.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model { path: path.into(), message: message.into() }
    }

    /// Builds an [`Error::Index`] for `what`.
    pub fn index(what: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Index { what: what.into(), message: message.into() }
    }
}
