//! The four ways a message leaves: unix datagram, UDP, TCP, and TLS over TCP
//! (RFC 5425, with rustls: nothing links OpenSSL).

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket, UnixDatagram};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::rfc5424::octet_frame;
use crate::config::SyslogTarget;

/// What a TLS connection needs: the client configuration (trust anchors,
/// client certificate) and the name the server's certificate must carry.
#[derive(Clone)]
pub(crate) struct TlsClient {
    pub connector: TlsConnector,
    pub name: ServerName<'static>,
}

impl TlsClient {
    /// `server_name`, else the host of `address` (a DNS name or an IP).
    pub(crate) fn new(
        config: rustls::ClientConfig,
        server_name: Option<&str>,
        address: &str,
    ) -> Result<Self, String> {
        let host = server_name.map_or_else(|| host_of(address), str::to_owned);
        let name = ServerName::try_from(host.clone())
            .map_err(|e| format!("{host:?} cannot be checked in a certificate: {e}"))?;
        Ok(TlsClient {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

/// The host of `host:port` (without the brackets of an IPv6 address).
fn host_of(address: &str) -> String {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

pub(crate) enum Conn {
    Unix(UnixDatagram),
    Udp(UdpSocket),
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    pub(crate) async fn connect(
        target: &SyslogTarget,
        tls: Option<&TlsClient>,
    ) -> io::Result<Conn> {
        match target {
            SyslogTarget::Unix(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
                Ok(Conn::Unix(s))
            }
            SyslogTarget::Udp(address) => {
                let addr = resolve(address).await?;
                let local = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = UdpSocket::bind(local).await?;
                s.connect(addr).await?;
                Ok(Conn::Udp(s))
            }
            SyslogTarget::Tcp(address) => Ok(Conn::Tcp(tcp(address).await?)),
            SyslogTarget::Tls(address) => {
                let tls = tls.ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "no TLS client configuration")
                })?;
                let s = tcp(address).await?;
                let s = tls
                    .connector
                    .connect(tls.name.clone(), s)
                    .await
                    .map_err(|e| io::Error::new(e.kind(), format!("{address}: TLS: {e}")))?;
                Ok(Conn::Tls(Box::new(s)))
            }
        }
    }

    /// One message: one datagram, or one octet-counted frame on the stream.
    pub(crate) async fn send(&mut self, msg: &str) -> io::Result<()> {
        let whole = |n: usize| {
            if n == msg.len() {
                Ok(())
            } else {
                Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "datagram truncated",
                ))
            }
        };
        match self {
            Conn::Unix(s) => whole(s.send(msg.as_bytes()).await?),
            Conn::Udp(s) => whole(s.send(msg.as_bytes()).await?),
            Conn::Tcp(s) => {
                // A receiver that closed its side would swallow what we write
                // next; notice it first and reconnect instead.
                if peer_closed(s)? {
                    return Err(closed());
                }
                s.write_all(&octet_frame(msg)).await
            }
            Conn::Tls(s) => {
                if tls_peer_closed(s).await? {
                    return Err(closed());
                }
                s.write_all(&octet_frame(msg)).await?;
                // rustls holds what it encrypted until flushed.
                s.flush().await
            }
        }
    }
}

async fn tcp(address: &str) -> io::Result<TcpStream> {
    let addr = resolve(address).await?;
    let s = TcpStream::connect(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("{addr}: {e}")))?;
    s.set_nodelay(true)?;
    Ok(s)
}

fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "the syslog server closed the connection",
    )
}

fn peer_closed(s: &TcpStream) -> io::Result<bool> {
    let mut buf = [0u8; 256];
    match s.try_read(&mut buf) {
        Ok(0) => Ok(true),
        // Servers do not talk on this protocol; ignore what one says.
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// As [`peer_closed`], through TLS: what the server sends (session tickets,
/// its close_notify) is read by rustls, without waiting. A zero timeout
/// polls the read once before it gives up.
async fn tls_peer_closed(s: &mut TlsStream<TcpStream>) -> io::Result<bool> {
    let mut buf = [0u8; 4096];
    // Bounded: a server that keeps talking cannot hold the sink here.
    for _ in 0..16 {
        match tokio::time::timeout(Duration::ZERO, s.read(&mut buf)).await {
            Err(_pending) => return Ok(false),
            Ok(Ok(0)) => return Ok(true),
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(true),
            Ok(Err(e)) => return Err(e),
        }
    }
    Ok(false)
}

async fn resolve(address: &str) -> io::Result<std::net::SocketAddr> {
    tokio::net::lookup_host(address)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("{address}: {e}")))?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{address}: no address found"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_to_check_is_server_name_or_the_address_host() {
        assert_eq!(host_of("logs.example.org:6514"), "logs.example.org");
        assert_eq!(host_of("127.0.0.1:6514"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6514"), "::1");
    }
}
