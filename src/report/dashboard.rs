//! `popsweep dashboard`: the report's page, live. A small read-only HTTP server
//! (tiny_http: synchronous, a few dependencies, no async runtime) with three routes — the
//! page, its data as `data.json` (which the page polls every second), and an empty
//! favicon — and nothing else: no file is served by path, so no path can reach outside the
//! study. Anything but GET or HEAD is refused, and so is a path with `..`, a
//! percent-escape, a backslash or a doubled slash, before any routing.

use crate::error::{Error, Result};
use serde_json::Value;
use tiny_http::{Header, Method, Request, Response, Server};

/// Where the dashboard's data comes from: called for every `data.json` request, it
/// returns the page data (with `live` set) of the study as it stands.
pub type Snapshot<'a> = dyn FnMut() -> Result<Value> + 'a;

pub struct Dashboard {
    server: Server,
    url: String,
}

impl Dashboard {
    /// Binds `host:port` (port 0: any free one).
    pub fn bind(host: &str, port: u16) -> Result<Dashboard> {
        let server = Server::http((host, port))
            .map_err(|e| Error::Run(format!("dashboard: cannot listen on {host}:{port}: {e}")))?;
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| Error::Run("dashboard: not an IP listener".into()))?;
        let url = format!("http://{addr}/");
        Ok(Dashboard { server, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Answers requests until the process is stopped (Ctrl-C). A request that fails
    /// (the study unreadable for a moment, a client gone) is answered or dropped, and
    /// the server goes on.
    pub fn serve(&self, snapshot: &mut Snapshot<'_>) -> Result<()> {
        // A study that cannot be read for a moment (a database restart) shows its last
        // good state, marked stale with the reason, rather than an error page.
        let mut last_good: Option<Value> = None;
        let mut current = || match snapshot() {
            Ok(data) => {
                last_good = Some(data.clone());
                Ok(data)
            }
            Err(e) => match &last_good {
                Some(good) => {
                    let mut stale = good.clone();
                    stale["stale"] = e.to_string().into();
                    Ok(stale)
                }
                None => Err(e),
            },
        };
        for request in self.server.incoming_requests() {
            let (status, kind, body) = answer(&request, &mut current);
            let head = request.method() == &Method::Head;
            let mut response =
                Response::from_data(if head { Vec::new() } else { body }).with_status_code(status);
            for (name, value) in [
                ("Content-Type", kind),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                ("Content-Security-Policy", CSP),
            ] {
                response.add_header(Header::from_bytes(name, value).expect("a valid header"));
            }
            if status == 405 {
                response.add_header(Header::from_bytes("Allow", "GET, HEAD").expect("valid"));
            }
            let _ = request.respond(response);
        }
        Ok(())
    }
}

/// The page may run its inline script and styles, show data: images, and fetch from its
/// own server; nothing else.
pub const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                       img-src data: blob:; connect-src 'self'";

/// Status, content type and body for `request`.
fn answer(
    request: &Request,
    snapshot: &mut impl FnMut() -> Result<Value>,
) -> (u16, &'static str, Vec<u8>) {
    const TEXT: &str = "text/plain; charset=utf-8";
    if !matches!(request.method(), Method::Get | Method::Head) {
        return (405, TEXT, b"read-only: only GET and HEAD\n".to_vec());
    }
    let path = request.url().split(['?', '#']).next().unwrap_or("");
    if !path.starts_with('/')
        || path.contains("..")
        || path.contains('%')
        || path.contains('\\')
        || path.contains("//")
    {
        return (400, TEXT, b"bad path\n".to_vec());
    }
    match path {
        "/" | "/index.html" => match snapshot() {
            Ok(data) => (
                200,
                "text/html; charset=utf-8",
                super::html::page(&data).into_bytes(),
            ),
            Err(e) => (
                503,
                TEXT,
                format!("the study cannot be read now: {e}\n").into_bytes(),
            ),
        },
        "/data.json" => match snapshot() {
            Ok(data) => (200, "application/json", data.to_string().into_bytes()),
            Err(e) => (
                503,
                TEXT,
                format!("the study cannot be read now: {e}\n").into_bytes(),
            ),
        },
        "/favicon.ico" => (204, TEXT, Vec::new()),
        _ => (404, TEXT, b"not found\n".to_vec()),
    }
}
