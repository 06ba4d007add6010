//! Connections to PostgreSQL: the URL (libpq's, with the parameters the client lacks taken
//! out, and the password hidden in messages), TLS, and which errors a reconnect may cure.

use super::pg_tls::MakeLazyTls;
use crate::error::{Error, Result};
use postgres::error::SqlState;
use postgres::Client;
use std::time::Duration;

/// `url` without the query parameter `name`, and its value (percent-decoded): libpq's
/// parameters that the client library does not take.
fn take_query_param(url: &str, name: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), None);
    };
    let mut value = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.split_once('=') {
            Some((key, v)) if key == name => {
                value = Some(percent_decode(v));
                false
            }
            _ => true,
        })
        .collect();
    match kept.is_empty() {
        true => (base.to_string(), value),
        false => (format!("{base}?{}", kept.join("&")), value),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `url` names a PostgreSQL database rather than a directory.
pub fn is_url(text: &str) -> bool {
    text.starts_with("postgresql://") || text.starts_with("postgres://")
}

/// `url` with its password replaced by `***`, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{scheme}://{name}:***@{host}{tail}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// Connects, with a 10 s timeout unless the URL sets one; refusals say what went wrong in
/// the user's terms (host unreachable, credentials, database name).
///
/// TLS as libpq's `sslmode` asks (`prefer` by default: encrypted when the server offers
/// it; `require`; `disable`), through the system's TLS library, with the server's
/// certificate always verified against the system's roots and, with libpq's
/// `sslrootcert=PATH`, a CA of one's own (a private server's self-signed one).
pub(super) fn connect(url: &str) -> Result<Client> {
    let (rest, root_cert) = take_query_param(url, "sslrootcert");
    let mut config: postgres::Config = rest
        .parse()
        .map_err(|e| url_error(url, &format!("not a PostgreSQL URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    let root = match root_cert {
        None => None,
        Some(path) => {
            let pem = std::fs::read(&path)
                .map_err(|e| url_error(url, &format!("sslrootcert {path}: {e}")))?;
            Some(native_tls::Certificate::from_pem(&pem).map_err(|e| {
                url_error(
                    url,
                    &format!("sslrootcert {path}: not a PEM certificate: {e}"),
                )
            })?)
        }
    };
    config.connect(MakeLazyTls { root }).map_err(|e| {
        let why = match e.code() {
            Some(c) if *c == SqlState::INVALID_PASSWORD => {
                "authentication failed: wrong user name or password".to_string()
            }
            Some(c) if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                format!("not allowed to connect: {}", describe(&e))
            }
            Some(c) if *c == SqlState::INVALID_CATALOG_NAME => {
                format!("{} (create it first)", describe(&e))
            }
            _ => format!("cannot connect: {}", describe(&e)),
        };
        url_error(url, &why)
    })
}

/// Whether an error may go away by reconnecting: the connection or server went away, the
/// server is starting or shutting down, or a transaction lost a serialisation race.
pub(super) fn is_transient(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("57P")
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        }
        // No SQL state: an I/O error or a timeout on the socket.
        None => {
            std::error::Error::source(e)
                .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some())
                || e.to_string().contains("timed out")
        }
    }
}

/// The server's message where there is one (more specific than the client's summary).
pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.message().to_string(),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

pub(super) fn url_error(url: &str, message: &str) -> Error {
    Error::Config {
        file: redact(url),
        line: None,
        field: "--storage".into(),
        message: message.into(),
    }
}

pub(super) fn retry_patience() -> Duration {
    let seconds = std::env::var("POPSWEEP_DB_RETRY_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(600);
    Duration::from_secs(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgresql://ann:secret@db:5432/sweeps"),
            "postgresql://ann:***@db:5432/sweeps"
        );
        assert_eq!(
            redact("postgresql://ann@db/sweeps"),
            "postgresql://ann@db/sweeps"
        );
        assert_eq!(redact("postgres://db?x=a:b@c"), "postgres://db?x=a:b@c");
        assert!(is_url("postgres://x") && !is_url("runs/a"));
    }

    #[test]
    fn libpq_parameters_the_client_lacks_are_taken_out_of_the_url() {
        let (rest, cert) = take_query_param(
            "postgresql://h/db?sslmode=require&sslrootcert=%2Ftmp%2Fca.crt",
            "sslrootcert",
        );
        assert_eq!(rest, "postgresql://h/db?sslmode=require");
        assert_eq!(cert.as_deref(), Some("/tmp/ca.crt"));
        let (rest, cert) = take_query_param("postgresql://h/db?sslrootcert=ca.pem", "sslrootcert");
        assert_eq!(
            (rest.as_str(), cert.as_deref()),
            ("postgresql://h/db", Some("ca.pem"))
        );
        assert_eq!(
            take_query_param("postgresql://h/db", "x"),
            ("postgresql://h/db".into(), None)
        );
    }
}
