//! Minimal HTTP(S) GET for health endpoints (etcd `/health`, the
//! controller-manager's and scheduler's `/healthz`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::network::ClusterNet;

/// The status code and body of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub status: u16,
    pub body: String,
}

/// A TLS client configuration trusting only `ca_pem`.
pub(crate) fn tls_config(ca_pem: &str) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.context("parsing the CA certificate")?)
            .context("adding the CA certificate")?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `GET path` over plain HTTP, to `addr` in the cluster's network namespace.
pub(crate) async fn http_get(
    net: &ClusterNet,
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<Response> {
    tokio::time::timeout(timeout, async {
        let stream = net.connect(addr).await?;
        exchange(stream, addr, path).await
    })
    .await
    .with_context(|| format!("GET http://{addr}{path} timed out"))?
}

/// `GET path` over HTTPS, to `addr` in the cluster's network namespace,
/// verifying the server against `tls`'s roots for the server's IP address.
pub(crate) async fn https_get(
    net: &ClusterNet,
    addr: SocketAddr,
    path: &str,
    tls: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> Result<Response> {
    tokio::time::timeout(timeout, async {
        let stream = net.connect(addr).await?;
        let name = ServerName::IpAddress(addr.ip().into());
        let stream = tokio_rustls::TlsConnector::from(tls)
            .connect(name, stream)
            .await
            .with_context(|| format!("TLS handshake with {addr}"))?;
        exchange(stream, addr, path).await
    })
    .await
    .with_context(|| format!("GET https://{addr}{path} timed out"))?
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    addr: SocketAddr,
    path: &str,
) -> Result<Response> {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: */*\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify; keep what was read.
    if let Err(error) = stream.take(1 << 20).read_to_end(&mut raw).await
        && raw.is_empty()
    {
        return Err(error).context("reading the response");
    }
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        bail!("malformed HTTP response: {status_line:?}");
    };
    if !version.starts_with("HTTP/") {
        bail!("malformed HTTP response: {status_line:?}");
    }
    let status = code
        .parse()
        .with_context(|| format!("malformed status in {status_line:?}"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response { status, body })
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size_line, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        if size == 0 || after.len() < size {
            break;
        }
        out.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let r = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert_eq!(
            r,
            Response {
                status: 200,
                body: "ok".into()
            }
        );
        let r = parse_response(
            b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.body, "abcde");
        assert!(parse_response(b"garbage").is_err());
    }

    #[tokio::test]
    async fn http_get_against_a_listener_in_a_network_namespace() {
        let spawner = super::super::process::Spawner::new("t").unwrap();
        let net = ClusterNet::new(spawner.handle());
        let listener = net.listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        // Not on the host's loopback: the namespace is a network of its own.
        assert!(std::net::TcpStream::connect(addr).is_err());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /health HTTP/1.1\r\n"));
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n{\"health\":\"true\"}")
                .await
                .unwrap();
        });
        let r = http_get(&net, addr, "/health", Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body.contains("\"health\":\"true\""));
        server.await.unwrap();
    }
}
