//! TLS for the database storage, set up only when the server agrees to it.
//!
//! Building a TLS connector loads the system's certificate store, about 50 ms of CPU: paid
//! on every `popsweep ask` or `tell` (a process each), it would triple their cost against
//! a server without TLS, where libpq's default `sslmode=prefer` ends up unencrypted
//! anyway. This connector is built when the server has answered that it speaks TLS.

use postgres::tls::{MakeTlsConnect, TlsConnect};
use postgres_native_tls::TlsStream;
use std::future::Future;
use std::pin::Pin;
use tokio::io::{AsyncRead, AsyncWrite};

/// Makes a [`LazyTls`] per connection: the server's name, and a CA of one's own.
#[derive(Clone)]
pub struct MakeLazyTls {
    pub root: Option<native_tls::Certificate>,
}

pub struct LazyTls {
    domain: String,
    root: Option<native_tls::Certificate>,
}

impl<S> MakeTlsConnect<S> for MakeLazyTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = LazyTls;
    type Error = native_tls::Error;

    fn make_tls_connect(&mut self, domain: &str) -> Result<LazyTls, native_tls::Error> {
        Ok(LazyTls {
            domain: domain.to_string(),
            root: self.root.clone(),
        })
    }
}

impl<S> TlsConnect<S> for LazyTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = native_tls::Error;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream<S>, native_tls::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let mut builder = native_tls::TlsConnector::builder();
        if let Some(root) = self.root {
            builder.add_root_certificate(root);
        }
        match builder.build() {
            Ok(connector) => {
                postgres_native_tls::TlsConnector::new(connector, &self.domain).connect(stream)
            }
            Err(e) => Box::pin(async move { Err(e) }),
        }
    }
}
