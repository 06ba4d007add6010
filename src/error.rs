//! One error type for everything a user can get wrong or the machine can refuse.
//!
//! Every variant says *what* and *where*: the file, the field (as a dotted path such as
//! `parameters.lr.min`) and the line when one is known. The CLI prints the message as one
//! line and exits with [`Error::exit_code`]; nothing a user supplies can cause a panic.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A sweep file, data file or search space that is wrong as given.
    #[error("{file}{}: {field}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Config {
        file: String,
        line: Option<usize>,
        field: String,
        message: String,
    },
    /// A file that could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A data file whose contents are malformed.
    #[error("{file}: {location}: {message}")]
    Data {
        file: String,
        location: String,
        message: String,
    },
    /// Training ran but produced nothing usable (e.g. every trial diverged).
    #[error("{0}")]
    Run(String),
    /// The accelerator failed or is missing (a driver error, no device, no kernels).
    #[error("GPU: {0}")]
    Device(String),
    /// Stopped by Ctrl-C or SIGTERM; the message says how to continue.
    #[error("{0}")]
    Interrupted(String),
}

impl Error {
    /// 2 for bad input (the convention of clap and most Unix tools), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config { .. } | Error::Data { .. } => 2,
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => 2,
            Error::Io { .. } | Error::Run(_) | Error::Device(_) => 1,
            // 128 + SIGINT, as a shell reports a command stopped by Ctrl-C.
            Error::Interrupted(_) => 130,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
